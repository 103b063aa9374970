"""The simulated vLLM server, driven over HTTP like a real one: the official `openai` SDK and raw httpx."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import statistics
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pytest_aksai.sim._addons.vllm._server import EngineConfig, GpuPerf, ModelServer, ServedModel
from pytest_aksai.sim._faults import ActiveFaults, parse_fault

T = TypeVar("T")

PHI4 = ServedModel(
    "phi-4-mini-instruct", "microsoft/Phi-4-mini-instruct", 131072, 7_680_000_000, 131072, 3.84e9
)
MISTRAL = ServedModel("mistral-7b-instruct-v0.3", "mistralai/Mistral-7B-Instruct-v0.3", 32768, 14_500_000_000,
                      131072, 7.25e9)  # fmt: skip
T4 = GpuPerf("Tesla T4", 1, 16, 320, 65)
A10 = GpuPerf("NVIDIA A10", 1, 24, 600, 125)
LAB_MAP = {"gpu-memory-utilization": 0.90, "max-model-len": 4096, "max-num-seqs": 64, "dtype": "float16"}
PHI4_ENGINE = EngineConfig.from_vllm_map(LAB_MAP, default_max_model_len=PHI4.max_model_len)
NAME = PHI4.served_name


class _Sim:
    """The simulated cluster's event loop, in a thread, so the synchronous SDK can call the server."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="sim-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def call(self, fn: Callable[[], T]) -> T:
        async def call() -> T:
            return fn()

        return self.run(call())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


@dataclass
class Served:
    server: ModelServer
    faults: ActiveFaults
    sim: _Sim

    @property
    def url(self) -> str:
        return self.server.url

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key="unused", max_retries=0, timeout=30)

    def set_faults(self, *names: str) -> None:
        self.sim.call(lambda: self.faults.replace(dict(parse_fault(name) for name in names)))


@pytest.fixture(scope="module")
def sim() -> Iterator[_Sim]:
    loop = _Sim()
    yield loop
    loop.close()


@pytest.fixture
def serve(sim: _Sim) -> Iterator[Callable[..., Served]]:
    started: list[ModelServer] = []

    def start(model: ServedModel = PHI4, engine: EngineConfig = PHI4_ENGINE, gpu: GpuPerf = T4,
              *, faults: tuple[str, ...] = (), speedup: float = 10.0, legacy_metrics: bool = False) -> Served:  # fmt: skip
        active = ActiveFaults(faults)

        async def make() -> ModelServer:
            server = ModelServer(model, engine, gpu, active, speedup=speedup, legacy_metrics=legacy_metrics)
            await server.start()
            return server

        server = sim.run(make())
        started.append(server)
        return Served(server, active, sim)

    yield start
    for server in started:
        sim.run(server.stop())


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(url + "/metrics")
    response.raise_for_status()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, model: str = NAME,
          **labels: str) -> float:  # fmt: skip
    key = (name, frozenset({"model_name": model, "engine": "0", **labels}.items()))
    assert key in metrics, (
        f"{name}{labels} for model_name={model} not exposed; have {sorted({k[0] for k in metrics})}"
    )
    return metrics[key]


def wait_until(what: str, probe: Callable[[], T], ok: Callable[[T], bool], timeout: float = 10.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        seen = probe()
        if ok(seen):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last observed {seen!r}")
        time.sleep(0.005)


def tokenize_count(url: str, **body: Any) -> int:
    response = httpx.post(url + "/tokenize", json={"model": NAME, **body})
    response.raise_for_status()
    data = response.json()
    assert data["count"] == len(data["tokens"])
    assert data["max_model_len"] == 4096
    return int(data["count"])


def sse_frames(url: str, path: str, body: dict[str, Any]) -> list[tuple[float, str]]:
    """(seconds since the request was sent, payload) for every SSE `data:` frame, as it arrives."""
    frames: list[tuple[float, str]] = []
    with httpx.Client(timeout=30) as client:
        # The clock starts once the client exists: building one (its TLS context) takes tens of ms.
        started = time.monotonic()
        with client.stream("POST", url + path, json=body) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"].startswith("text/event-stream")
            buffer = ""
            for text in response.iter_text():
                buffer += text
                while "\n\n" in buffer:
                    frame, buffer = buffer.split("\n\n", 1)
                    assert frame.startswith("data: "), frame
                    frames.append((time.monotonic() - started, frame.removeprefix("data: ")))
            assert buffer == ""
    return frames


# --- the contract ------------------------------------------------------------------------------------


def test_models_health_and_version(serve: Callable[..., Served]) -> None:
    served = serve()
    models = served.client().models.list()
    assert [m.id for m in models.data] == [NAME]
    raw = httpx.get(served.url + "/v1/models").json()
    card = raw["data"][0]
    assert raw["object"] == "list"
    assert (card["object"], card["owned_by"], card["root"], card["max_model_len"]) == (
        "model", "vllm", "microsoft/Phi-4-mini-instruct", 4096)  # fmt: skip
    assert card["permission"][0]["object"] == "model_permission"
    health = httpx.get(served.url + "/health")
    assert (health.status_code, health.content) == (200, b"")
    assert re.fullmatch(r"\d+\.\d+\.\d+", httpx.get(served.url + "/version").json()["version"])
    missing = httpx.get(served.url + "/v1/embeddings")
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})


def test_completion_counts_agree_with_tokenize(serve: Callable[..., Served]) -> None:
    served = serve()
    prompt = "Explain, in one paragraph, how continuous batching shares a GPU between requests."
    result = served.client().completions.create(model=NAME, prompt=prompt, max_tokens=12)
    assert result.id.startswith("cmpl-")
    assert result.object == "text_completion"
    assert result.model == NAME
    choice = result.choices[0]
    assert choice.finish_reason == "length"
    assert result.usage is not None
    # 13 words (5 longer than 6 characters count twice) and 3 punctuation marks: 21 tokens, 1.6 per word.
    assert result.usage.prompt_tokens == tokenize_count(served.url, prompt=prompt) == 21
    assert result.usage.completion_tokens == 12 == tokenize_count(served.url, prompt=choice.text)
    assert result.usage.total_tokens == result.usage.prompt_tokens + 12


def test_chat_runs_to_its_natural_end_deterministically(serve: Callable[..., Served]) -> None:
    served = serve()
    messages: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is KEDA?"}]
    first = served.client().chat.completions.create(model=NAME, messages=messages, max_tokens=500)
    again = served.client().chat.completions.create(model=NAME, messages=messages, max_tokens=500)
    other = served.client().chat.completions.create(model=NAME, messages=messages[1:], max_tokens=500)
    assert first.id.startswith("chatcmpl-")
    assert first.object == "chat.completion"
    message = first.choices[0].message
    assert message.role == "assistant"
    assert message.content
    assert first.choices[0].finish_reason == "stop"
    assert again.choices[0].message.content == message.content
    assert other.choices[0].message.content != message.content
    assert first.usage is not None
    assert first.usage.prompt_tokens == tokenize_count(served.url, messages=messages)
    # The end-of-sequence token is generated and counted, but not shown (as vLLM counts it).
    assert first.usage.completion_tokens == tokenize_count(served.url, prompt=message.content) + 1


def test_stop_string_cuts_the_text(serve: Callable[..., Served]) -> None:
    served = serve()
    client = served.client()
    natural = client.completions.create(model=NAME, prompt="stop test", max_tokens=200).choices[0].text
    words = natural.split()
    stop = " " + words[len(words) // 2]
    cut = client.completions.create(model=NAME, prompt="stop test", max_tokens=200, stop=[stop])
    assert cut.choices[0].text == natural[: natural.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
    assert cut.model_extra is not None
    assert cut.choices[0].model_extra == {"stop_reason": stop, "prompt_logprobs": None}
    streamed = "".join(
        chunk.choices[0].text
        for chunk in client.completions.create(
            model=NAME, prompt="stop test", max_tokens=200, stop=stop, stream=True
        )
    )
    assert streamed == cut.choices[0].text


def test_chat_stream_wire_format(serve: Callable[..., Served]) -> None:
    served = serve()
    body = {"model": NAME, "messages": [{"role": "user", "content": "Stream please."}], "max_tokens": 9,
            "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
    frames = [payload for _, payload in sse_frames(served.url, "/v1/chat/completions", body)]
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(f) for f in frames[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["id"].startswith("chatcmpl-")
    assert {c["model"] for c in chunks} == {NAME}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    content = chunks[1:-1]
    assert [c["choices"][0]["finish_reason"] for c in content] == [None] * (len(content) - 1) + ["length"]
    assert usage_chunk["usage"]["completion_tokens"] == 9 == len(content)
    assert usage_chunk["usage"]["prompt_tokens"] == tokenize_count(
        served.url, messages=body["messages"])  # fmt: skip
    text = "".join(c["choices"][0]["delta"]["content"] for c in content)
    assert tokenize_count(served.url, prompt=text) == 9


def test_sdk_streams_chat_with_usage(serve: Callable[..., Served]) -> None:
    served = serve()
    stream = served.client().chat.completions.create(
        model=NAME,
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=5,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5
    without = list(served.client().chat.completions.create(
        model=NAME, messages=[{"role": "user", "content": "hi"}], max_tokens=5, stream=True))  # fmt: skip
    assert all(c.choices for c in without)
    assert all(c.usage is None for c in without)


def test_streaming_streams_and_the_buffered_fault_does_not(serve: Callable[..., Served]) -> None:
    served = serve(speedup=4.0)
    body = {"model": NAME, "prompt": "timing", "max_tokens": 30, "stream": True}

    def arrival(frames: list[tuple[float, str]]) -> tuple[float, float]:
        content = [
            t for t, payload in frames if payload != "[DONE]" and json.loads(payload)["choices"][0]["text"]
        ]
        return content[0], content[-1]

    streamed = sse_frames(served.url, "/v1/completions", body)
    first, last = arrival(streamed)
    assert last > 0.15, f"30 tokens at ~8.6 ms each took only {last:.3f}s"
    assert first < 0.3 * last, f"first token at {first:.3f}s, last at {last:.3f}s: not streamed"

    served.set_faults("vllm-buffered-stream")
    buffered = sse_frames(served.url, "/v1/completions", body)
    first, last = arrival(buffered)
    assert last > 0.15, f"buffered stream ended after {last:.3f}s"
    assert last - first < 0.05, f"buffered stream: first {first:.3f}s, last {last:.3f}s"

    def strip(frames: list[tuple[float, str]]) -> list[Any]:
        return [payload if payload == "[DONE]" else {k: v for k, v in json.loads(payload).items()
                                                     if k not in ("id", "created")} for _, payload in frames]  # fmt: skip

    assert strip(buffered) == strip(streamed)


# --- errors ---------------------------------------------------------------------------------------


def test_unknown_model_is_404_not_found(serve: Callable[..., Served]) -> None:
    served = serve()
    with pytest.raises(openai.NotFoundError) as caught:
        served.client().chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 404
    assert caught.value.body == {"message": "The model `gpt-4` does not exist.", "type": "NotFoundError",
                                 "param": None, "code": 404}  # fmt: skip


def test_over_max_model_len_is_400_with_vllms_sentence(serve: Callable[..., Served]) -> None:
    served = serve()
    prompt = "word " * 4000
    prompt_tokens = tokenize_count(served.url, prompt=prompt)
    with pytest.raises(openai.BadRequestError) as caught:
        served.client().completions.create(model=NAME, prompt=prompt, max_tokens=200)
    assert caught.value.status_code == 400
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "BadRequestError"
    assert body["code"] == 400
    assert body["message"] == (
        f"This model's maximum context length is 4096 tokens. However, you requested {prompt_tokens + 200} "
        f"tokens ({prompt_tokens} in the messages, 200 in the completion). Please reduce the length of the "
        "messages or completion."
    )
    match = re.search(r"maximum context length is (\d+) tokens", body["message"])
    assert match
    assert int(match.group(1)) == 4096
    with pytest.raises(openai.BadRequestError, match=r"maximum context length is 4096 tokens"):
        served.client().completions.create(model=NAME, prompt="word " * 5000)


@pytest.mark.parametrize(
    ("path", "payload", "message"),
    [
        ("/v1/chat/completions", b"{not json", "not valid JSON"),
        ("/v1/chat/completions", b'{"model": "phi-4-mini-instruct"}', "messages"),
        (
            "/v1/completions",
            b'{"model": "phi-4-mini-instruct", "prompt": "x", "max_tokens": "many"}',
            "max_tokens",
        ),
        ("/v1/completions", b'{"model": "phi-4-mini-instruct", "prompt": "x", "n": 2}', "n=2"),
        ("/v1/completions", b"[1, 2]", "JSON object"),
    ],
)
def test_bad_requests_are_400(serve: Callable[..., Served], path: str, payload: bytes, message: str) -> None:
    served = serve()
    response = httpx.post(served.url + path, content=payload, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "BadRequestError"
    assert error["code"] == 400
    assert message in error["message"]


def test_overload_answers_429_and_disconnects_free_the_batch(serve: Callable[..., Served]) -> None:
    engine = EngineConfig.from_vllm_map(
        {**LAB_MAP, "max-num-seqs": 1}, default_max_model_len=PHI4.max_model_len
    )
    served = serve(engine=engine, speedup=1.0)
    body = {"model": NAME, "prompt": "long", "max_tokens": 2000, "stream": True}

    def gauges() -> tuple[float, float]:
        m = scrape(served.url)
        return value(m, "vllm:num_requests_running"), value(m, "vllm:num_requests_waiting")

    with (
        httpx.Client(timeout=30) as a,
        httpx.Client(timeout=30) as b,
        a.stream("POST", served.url + "/v1/completions", json=body) as first,
    ):
        assert first.status_code == 200
        wait_until("the first request to run", gauges, lambda g: g == (1, 0))
        with b.stream("POST", served.url + "/v1/completions", json=body) as second:
            assert second.status_code == 200
            wait_until("the second request to wait", gauges, lambda g: g == (1, 1))
            with pytest.raises(openai.RateLimitError) as caught:
                served.client().completions.create(model=NAME, prompt="x", max_tokens=5)
            assert caught.value.status_code == 429
            assert isinstance(caught.value.body, dict)
            assert caught.value.body["code"] == "rate_limit_exceeded"
    wait_until("both disconnected requests to be aborted", gauges, lambda g: g == (0, 0))
    assert value(scrape(served.url), "vllm:request_success_total", finished_reason="abort") == 2


# --- the engine -----------------------------------------------------------------------------------


def test_metrics_move_with_traffic(serve: Callable[..., Served]) -> None:
    served = serve()
    before = scrape(served.url)
    result = served.client().completions.create(model=NAME, prompt="Count my tokens, please.", max_tokens=7)
    after = scrape(served.url)
    assert result.usage is not None

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("vllm:prompt_tokens_total") == result.usage.prompt_tokens
    assert delta("vllm:generation_tokens_total") == 7
    assert delta("vllm:request_success_total", finished_reason="length") == 1
    assert delta("vllm:request_success_total", finished_reason="stop") == 0
    assert delta("vllm:time_to_first_token_seconds_count") == 1
    assert delta("vllm:inter_token_latency_seconds_count") == 6
    assert delta("vllm:e2e_request_latency_seconds_count") == 1
    assert delta("vllm:request_queue_time_seconds_count") == 1
    assert delta("vllm:request_prompt_tokens_sum") == result.usage.prompt_tokens
    assert delta("vllm:request_generation_tokens_sum") == 7
    assert delta("vllm:e2e_request_latency_seconds_sum") > delta("vllm:time_to_first_token_seconds_sum") > 0
    # vLLM's 1-2-5 token buckets stop below max-model-len (4096).
    assert value(after, "vllm:request_prompt_tokens_bucket", le="2000.0") >= 1
    assert ("vllm:request_prompt_tokens_bucket", frozenset(
        {"model_name": NAME, "engine": "0", "le": "5000.0"}.items())) not in after  # fmt: skip
    assert value(after, "vllm:kv_cache_usage_perc") == 0


def test_gauges_follow_running_and_waiting_requests(serve: Callable[..., Served]) -> None:
    engine = EngineConfig.from_vllm_map(
        {**LAB_MAP, "max-num-seqs": 2}, default_max_model_len=PHI4.max_model_len
    )
    served = serve(engine=engine, speedup=1.0)
    body = {"model": NAME, "prompt": "busy " * 300, "max_tokens": 2000, "stream": True}

    def state() -> tuple[float, float, float]:
        m = scrape(served.url)
        return (value(m, "vllm:num_requests_running"), value(m, "vllm:num_requests_waiting"),
                value(m, "vllm:kv_cache_usage_perc"))  # fmt: skip

    with httpx.Client(timeout=30) as client, contextlib.ExitStack() as stack:
        for _ in range(3):
            response = stack.enter_context(client.stream("POST", served.url + "/v1/completions", json=body))
            assert response.status_code == 200
        _, _, kv = wait_until("2 running and 1 waiting", state, lambda s: s[:2] == (2, 1))
        # 2 sequences of 300 prompt tokens in 16-token blocks out of the T4's 3198 blocks.
        assert 2 * 19 / 3198 <= kv < 0.05
    wait_until("the batch to drain", state, lambda s: s == (0, 0, 0))


def test_kv_cache_limits_the_batch_before_max_num_seqs(serve: Callable[..., Served]) -> None:
    # 1 GiB of KV cache holding 1,088 tokens: one 600-token prompt fits, a second must wait.
    model = ServedModel("tiny", "org/Tiny", 2048, 1 << 30, 976_128, 5e8)
    gpu = GpuPerf("Small GPU", 1, 4, 100, 10)
    engine = EngineConfig(max_model_len=1024, max_num_seqs=8, gpu_memory_utilization=0.75)
    served = serve(model, engine, gpu, speedup=1.0)
    body = {"model": "tiny", "prompt": "kv " * 600, "max_tokens": 400, "stream": True}

    def state() -> tuple[float, float]:
        m = scrape(served.url)
        return value(m, "vllm:num_requests_running", "tiny"), value(m, "vllm:num_requests_waiting", "tiny")

    assert served.server.engine.total_blocks == 68
    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", served.url + "/v1/completions", json=body) as one,
    ):
        assert one.status_code == 200
        wait_until("the first request to run", state, lambda s: s == (1, 0))
        with client.stream("POST", served.url + "/v1/completions", json=body) as two:
            assert two.status_code == 200
            assert wait_until("the second to wait for KV blocks", state, lambda s: s[1] == 1) == (1, 1)


def test_continuous_batching_shares_decode_steps(serve: Callable[..., Served]) -> None:
    served = serve(speedup=4.0)

    async def timed(n: int) -> float:
        async with httpx.AsyncClient(timeout=30) as client:
            started = time.monotonic()
            responses = await asyncio.gather(*[
                client.post(served.url + "/v1/completions",
                            json={"model": NAME, "prompt": f"batch {i}", "max_tokens": 24})
                for i in range(n)])  # fmt: skip
        assert all(r.status_code == 200 for r in responses)
        return time.monotonic() - started

    alone = asyncio.run(timed(1))
    eight = asyncio.run(timed(8))
    # Decode is memory bound: 8 sequences share each weight read, so 8× the work takes far less than 8× the time.
    assert eight < 2.0 * alone, f"1 request {alone:.3f}s, 8 concurrent {eight:.3f}s"


def _ttft_and_itl(served: Served, model: str) -> tuple[float, float]:
    """Best of two runs: a stall of the shared 2-core CI machine must not pass for model latency."""
    body = {"model": model, "prompt": "word " * 1500, "max_tokens": 16, "stream": True}
    runs = []
    for _ in range(2):
        times = [t for t, payload in sse_frames(served.url, "/v1/completions", body) if payload != "[DONE]"]
        runs.append((times[0], statistics.mean(b - a for a, b in itertools.pairwise(times))))
    return min(ttft for ttft, _ in runs), min(itl for _, itl in runs)


# --- faults and states ------------------------------------------------------------------------------


def test_fault_no_metrics_toggles_at_run_time(serve: Callable[..., Served]) -> None:
    served = serve(faults=("vllm-no-metrics",))
    assert httpx.get(served.url + "/metrics").status_code == 404
    served.set_faults()
    assert httpx.get(served.url + "/metrics").status_code == 200


def test_fault_wrong_served_name(serve: Callable[..., Served]) -> None:
    served = serve(faults=("vllm-wrong-served-name",))
    client = served.client()
    assert [m.id for m in client.models.list().data] == [PHI4.hf_id]
    with pytest.raises(openai.NotFoundError, match=r"The model `phi-4-mini-instruct` does not exist\."):
        client.completions.create(model=NAME, prompt="x", max_tokens=2)
    result = client.completions.create(model=PHI4.hf_id, prompt="x", max_tokens=2)
    assert result.model == PHI4.hf_id
    metrics = scrape(served.url)
    assert value(metrics, "vllm:generation_tokens_total", PHI4.hf_id) == 2
    assert not any(dict(labels).get("model_name") == NAME for _, labels in metrics)
    served.set_faults("vllm-wrong-served-name=model")
    assert [m.id for m in client.models.list().data] == ["model"]
    served.set_faults()
    assert [m.id for m in client.models.list().data] == [NAME]
    assert client.completions.create(model=NAME, prompt="x", max_tokens=2).model == NAME
    gauges = {
        dict(labels)["model_name"]
        for name, labels in scrape(served.url)
        if name == "vllm:num_requests_running"
    }
    assert gauges == {NAME}


def test_fault_broken_chat_template(serve: Callable[..., Served]) -> None:
    served = serve(faults=("vllm-broken-chat-template",))
    with pytest.raises(openai.InternalServerError) as caught:
        served.client().chat.completions.create(model=NAME, messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 500
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"] == 500
    assert "chat template" in body["message"]
    assert served.client().completions.create(model=NAME, prompt="x", max_tokens=2).choices[0].text


def test_dead_engine_fails_health_and_requests(serve: Callable[..., Served]) -> None:
    served = serve()
    served.sim.call(served.server.mark_dead)
    assert httpx.get(served.url + "/health").status_code == 503
    with pytest.raises(openai.InternalServerError, match="EngineCore encountered an issue"):
        served.client().completions.create(model=NAME, prompt="x", max_tokens=2)


def test_legacy_server_exposes_gpu_cache_usage(serve: Callable[..., Served]) -> None:
    served = serve(legacy_metrics=True)
    names = {name for name, _ in scrape(served.url)}
    assert "vllm:gpu_cache_usage_perc" in names
    assert "vllm:kv_cache_usage_perc" not in names
    assert httpx.get(served.url + "/version").json()["version"].startswith("0.9.")
