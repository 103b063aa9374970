"""The simulated vLLM engine without HTTP: engine arguments, KV-cache sizing, the latency model, scheduling."""

from __future__ import annotations

import asyncio

import pytest

from pytest_aksai.sim._addons.vllm._server import (
    EngineConfig,
    EngineConfigError,
    GpuPerf,
    ServedModel,
    SimEngine,
    kv_cache_blocks,
)
from pytest_aksai.sim._addons.vllm._server._engine import EngineOverloadedError, EngineRequest, Output
from pytest_aksai.sim._addons.vllm._server._metrics import VllmMetrics, build_1_2_5_buckets
from pytest_aksai.sim._addons.vllm._server._text import generate, tokenize

PHI4 = ServedModel(
    "phi-4-mini-instruct", "microsoft/Phi-4-mini-instruct", 131072, 7_680_000_000, 131072, 3.84e9
)
MISTRAL = ServedModel("mistral-7b-instruct-v0.3", "mistralai/Mistral-7B-Instruct-v0.3", 32768, 14_500_000_000,
                      131072, 7.25e9)  # fmt: skip
T4 = GpuPerf("Tesla T4", 1, 16, 320, 65)
A100X2 = GpuPerf("A100 80GB", 2, 80, 2039, 312)


def test_lab_vllm_map_parses() -> None:
    lab = {"gpu-memory-utilization": 0.92, "max-model-len": 8192, "max-num-seqs": 64, "dtype": "float16",
           "enable-chunked-prefill": True, "swap-space": 4}  # fmt: skip
    config = EngineConfig.from_vllm_map(lab, default_max_model_len=32768)
    assert (config.max_model_len, config.max_num_seqs, config.gpu_memory_utilization) == (8192, 64, 0.92)
    assert config.enable_chunked_prefill is True
    assert config.extra == {"swap-space": 4}
    assert EngineConfig.from_vllm_map({"max_num_seqs": 8}, default_max_model_len=4096).max_num_seqs == 8
    assert EngineConfig.from_vllm_map({}, default_max_model_len=4096).max_model_len == 4096


@pytest.mark.parametrize(
    ("vllm_map", "names"),
    [
        ({"max-model-len": "4k"}, ["max-model-len", "'4k'", "integer"]),
        ({"max-num-seqs": 0}, ["max-num-seqs", "0", ">= 1"]),
        ({"gpu-memory-utilization": 1.5}, ["gpu-memory-utilization", "1.5", "(0, 1]"]),
        ({"gpu-memory-utilization": "90%"}, ["gpu-memory-utilization", "'90%'"]),
        ({"dtype": "fp8"}, ["dtype", "'fp8'", "float16", "bfloat16"]),
        ({"block-size": 10}, ["block-size", "10", "16"]),
        ({"enable-prefix-caching": "yes"}, ["enable-prefix-caching", "'yes'", "true or false"]),
    ],
)
def test_bad_engine_arguments_name_the_flag_value_and_fix(
    vllm_map: dict[str, object], names: list[str]
) -> None:
    with pytest.raises(EngineConfigError) as caught:
        EngineConfig.from_vllm_map(vllm_map, default_max_model_len=4096)
    for name in names:
        assert name in str(caught.value)


def test_kv_cache_budget_follows_vram_utilization_and_weights() -> None:
    config = EngineConfig(max_model_len=4096, gpu_memory_utilization=0.9)
    blocks = kv_cache_blocks(PHI4, config, T4)
    # (16 GiB × 0.9 − 7.68 GB − 1 GiB) / (16 tokens × 128 KiB)
    assert blocks == int((16 * 0.9 * 2**30 - 7_680_000_000 - 2**30) // (16 * 131072)) == 3198
    assert kv_cache_blocks(PHI4, EngineConfig(max_model_len=4096, gpu_memory_utilization=0.95), T4) > blocks


def test_engine_start_failures_use_vllms_messages() -> None:
    with pytest.raises(EngineConfigError, match="No available memory for the cache blocks"):
        kv_cache_blocks(MISTRAL, EngineConfig(max_model_len=4096), T4)
    with pytest.raises(EngineConfigError, match=r"max seq len \(131072\) is larger than the maximum number"):
        kv_cache_blocks(PHI4, EngineConfig(max_model_len=131072), T4)
    with pytest.raises(EngineConfigError, match=r"User-specified max_model_len \(40000\) is greater"):
        kv_cache_blocks(MISTRAL, EngineConfig(max_model_len=40000), A100X2)
    with pytest.raises(EngineConfigError, match="tensor-parallel-size: 4 is larger than the 2 GPU"):
        kv_cache_blocks(MISTRAL, EngineConfig(max_model_len=4096, tensor_parallel_size=4), A100X2)


def _engine(model: ServedModel, gpu: GpuPerf, config: EngineConfig, speedup: float = 1.0) -> SimEngine:
    return SimEngine(model, config, gpu, VllmMetrics(lambda: model.served_name, config.max_model_len, legacy=False),
                     speedup=speedup)  # fmt: skip


def test_roofline_decode_is_bandwidth_bound_and_prefill_compute_bound() -> None:
    config = EngineConfig(max_model_len=4096)
    engine = _engine(PHI4, T4, config)
    decode = engine.step_seconds(prefill_tokens=0, decode_seqs=1, kv_tokens=100)
    # weights + KV read at 75% of 320 GB/s, plus 2 ms of overhead
    assert decode == pytest.approx(0.002 + (7_680_000_000 + 100 * 131072) / (320e9 * 0.75))
    prefill = engine.step_seconds(prefill_tokens=2000, decode_seqs=0, kv_tokens=2000)
    assert prefill == pytest.approx(0.002 + 2 * 3.84e9 * 2000 / (65e12 * 0.5))
    batch = engine.step_seconds(prefill_tokens=0, decode_seqs=32, kv_tokens=32 * 500)
    assert decode < batch < 2 * decode  # a batch shares the weight read
    fast = _engine(PHI4, T4, config, speedup=10).step_seconds(prefill_tokens=0, decode_seqs=1, kv_tokens=100)
    assert fast == pytest.approx(decode / 10)
    split = _engine(MISTRAL, A100X2, EngineConfig(max_model_len=4096, tensor_parallel_size=2))
    single = _engine(MISTRAL, A100X2, EngineConfig(max_model_len=4096))
    one = {"prefill_tokens": 0, "decode_seqs": 1, "kv_tokens": 10}
    assert split.step_seconds(**one) < single.step_seconds(**one)


def test_latency_follows_model_size_and_gpu() -> None:
    """The latency model, not wall-clock measurements: a bigger model or a slower GPU is slower per step."""
    a10 = GpuPerf("NVIDIA A10", 1, 24, 600, 125)
    config = EngineConfig(max_model_len=4096)
    decode = {"prefill_tokens": 0, "decode_seqs": 1, "kv_tokens": 1500}
    prefill = {"prefill_tokens": 1500, "decode_seqs": 0, "kv_tokens": 1500}
    phi_a10, phi_t4, mistral_a10 = (
        _engine(PHI4, a10, config),
        _engine(PHI4, T4, config),
        _engine(MISTRAL, a10, config),
    )
    for step in (decode, prefill):
        assert mistral_a10.step_seconds(**step) > 1.4 * phi_a10.step_seconds(**step)
        assert phi_t4.step_seconds(**step) > 1.4 * phi_a10.step_seconds(**step)
    # Decode reads all weights each step: 7.68 GB / (600 GB/s × 0.75) + 2 ms ≈ 19 ms per token on an A10.
    assert phi_a10.step_seconds(**decode) == pytest.approx(0.019, abs=0.001)


def test_tokenizer_rate_and_round_trip() -> None:
    prose = ("Platform teams run large language models on Kubernetes with KAITO, which provisions GPU nodes, "
             "downloads the weights and starts vLLM. KEDA scales the deployment from zero when requests arrive, "
             "and scales it back when the queue is empty.")  # fmt: skip
    ratio = len(tokenize(prose)) / len(prose.split())
    assert 1.2 <= ratio <= 1.6, ratio
    assert "".join(tokenize(prose)) == prose
    planned = generate("anything", seed=7, served_name="m").tokens
    assert tokenize("".join(planned)) == list(planned)
    assert generate("anything", seed=8, served_name="m").tokens != planned


async def _drain(seq: EngineRequest) -> list[Output]:
    outputs: list[Output] = []
    while True:
        out = await asyncio.wait_for(seq.outputs.get(), 10)
        assert isinstance(out, Output)
        outputs.append(out)
        if out.finish_reason is not None:
            return outputs


def test_full_kv_cache_preempts_the_newest_and_both_still_finish() -> None:
    # 1 GiB of KV at 976,128 bytes per token: 68 blocks of 16 tokens. Two 500-token prompts fit (2 × 32 blocks),
    # but not their growth to 700 tokens each.
    model = ServedModel("tiny", "org/Tiny", 2048, 1 << 30, 976_128, 5e8)
    gpu = GpuPerf("Small GPU", 1, 4, 10_000, 1000)
    config = EngineConfig(max_model_len=1024, max_num_seqs=8, gpu_memory_utilization=0.75)

    async def scenario() -> tuple[list[list[Output]], SimEngine]:
        engine = _engine(model, gpu, config, speedup=50)
        engine.start()
        planned = ["x"] * 1000
        seqs = [engine.submit(prompt_tokens=500, max_tokens=200, planned=planned, stop=[]) for _ in range(2)]
        outputs = await asyncio.gather(*[_drain(s) for s in seqs])
        await engine.stop()
        return outputs, engine

    outputs, engine = asyncio.run(scenario())
    assert [len(o) for o in outputs] == [200, 200]
    assert all(o[-1].finish_reason == "length" for o in outputs)
    assert "".join(out.delta for out in outputs[1]) == "x" * 200
    assert engine.free_blocks == engine.total_blocks == 68
    preemptions = engine.metrics.registry.get_sample_value(
        "vllm:num_preemptions_total", {"model_name": "tiny", "engine": "0"})  # fmt: skip
    assert preemptions is not None
    assert preemptions >= 1


def test_waiting_queue_is_bounded_by_max_num_seqs() -> None:
    async def scenario() -> int:
        engine = _engine(PHI4, T4, EngineConfig(max_model_len=4096, max_num_seqs=2))
        for _ in range(4):
            engine.submit(prompt_tokens=5, max_tokens=5, planned=["a"], stop=[])
        with pytest.raises(EngineOverloadedError, match="4 requests are waiting and max-num-seqs is 2"):
            engine.submit(prompt_tokens=5, max_tokens=5, planned=["a"], stop=[])
        return len(engine.waiting)

    # Before the engine runs, 2 requests fill the free batch slots and 2 more may wait: the fifth is refused.
    assert asyncio.run(scenario()) == 4


def test_token_buckets_are_vllms_1_2_5_series() -> None:
    assert build_1_2_5_buckets(4096) == [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000]
