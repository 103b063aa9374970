"""The client against the simulated vLLM server, which speaks the real wire format and counts real tokens."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from pytest_aksai.load import LoadPlan, LoadTargetError, ValidityLimits, run_load
from pytest_aksai.load._plan import Endpoint
from pytest_aksai.sim._addons.vllm._server import EngineConfig, GpuPerf, ModelServer, ServedModel
from pytest_aksai.sim._faults import ActiveFaults

PHI4 = ServedModel(
    "phi-4-mini-instruct", "microsoft/Phi-4-mini-instruct", 131072, 7_680_000_000, 131072, 3.84e9
)
ENGINE = EngineConfig.from_vllm_map({"max-model-len": 4096, "max-num-seqs": 64}, default_max_model_len=4096)
A10 = GpuPerf("NVIDIA A10", 1, 24, 600, 125)
# The server shares this process, so its CPU counts as the client's: only the timing checks apply here.
SHARED_PROCESS = ValidityLimits(max_client_cpu_fraction=2.0, max_loop_lag_p99_ms=1e9)


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sim-vllm", daemon=True)
    thread.start()
    server = ModelServer(PHI4, ENGINE, A10, ActiveFaults(()), speedup=10.0)
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=30)
    yield server.url + "/v1"
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.close()


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_prompt_length_is_calibrated_on_the_servers_count(sim_url: str, endpoint: Endpoint) -> None:
    plan = LoadPlan(url=sim_url, model=PHI4.served_name, concurrency=4, duration_s=60, requests=8, prompt_tokens=300,
                    max_tokens=32, endpoint=endpoint, limits=SHARED_PROCESS)  # fmt: skip
    result = run_load(plan)
    assert result.errors == 0, result.errors_by_class
    assert result.prompt_tokens / result.requests == pytest.approx(300, abs=3)
    # The sim stops at its own end-of-sequence (24–120 tokens) or max_tokens; usage says which.
    assert 0 < result.output_tokens <= 8 * 32
    assert result.ttft.count == 8
    assert result.itl.count > 0


def test_the_wrong_model_name_is_refused_with_the_servers_answer(sim_url: str) -> None:
    with pytest.raises(LoadTargetError, match=r"HTTP 404.*--model"):
        run_load(LoadPlan(url=sim_url, model="no-such-model", concurrency=1, duration_s=1))
