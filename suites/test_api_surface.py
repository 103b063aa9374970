"""The vLLM OpenAI-compatible API surface of each Workspace: health, models, completions, chat, streaming,
errors and metrics — through the official `openai` SDK, as applications use it, and on the wire where the
SDK would hide a defect. See docs/reference/suites/api.md for what each check proves and how to fix a failure.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from pytest_aksai import AksaiWarning, Endpoint, Finding, MetricsSnapshot

pytestmark = pytest.mark.api

PROMPT = "Explain in two sentences why a GPU node pool should scale to zero when idle."
REQUIRED_METRICS = (
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    "vllm:request_success_total",
    "vllm:time_to_first_token_seconds",
    "vllm:e2e_request_latency_seconds",
    "vllm:request_prompt_tokens",
    "vllm:request_generation_tokens",
    "vllm:request_queue_time_seconds",
)
RENAMED_METRICS = {
    # current name: the name older vLLM releases expose instead
    "vllm:kv_cache_usage_perc": "vllm:gpu_cache_usage_perc",
    "vllm:inter_token_latency_seconds": "vllm:time_per_output_token_seconds",
}
MIN_STREAM_SPREAD_S = 0.02
"""64 decoded tokens take well over 20 ms on any GPU; a buffered stream delivers them within a millisecond."""
CONTEXT_LIMIT_MESSAGE = re.compile(r"maximum context length is (\d+) tokens")


@pytest.fixture(scope="module")
def served_model(aksai_endpoint: Endpoint) -> dict[str, Any]:
    """The model the server advertises in /v1/models: what a client discovers and then asks for."""
    url = aksai_endpoint.url("v1/models")
    try:
        with aksai_endpoint.http() as http:
            response = http.get("v1/models")
    except httpx.TransportError as exc:
        raise aksai_endpoint.explain_failure(exc) or Finding(
            f"GET {url} via {aksai_endpoint.via} failed: {exc!r}",
            observed=aksai_endpoint.trouble() or "no answer",
            where="the model pod's log and events (kubectl describe pod)",
        ) from None
    if response.status_code != 200:
        raise Finding(f"GET {url} answered {response.status_code}: {response.text[:300]}")
    models = response.json().get("data") or []
    if not models:
        raise Finding(f"GET {url} lists no model", expected="the served model in data[]")
    return dict(models[0])


def _token_count(endpoint: Endpoint, model: str, prompt: str) -> int:
    with endpoint.http() as http:
        response = http.post("tokenize", json={"model": model, "prompt": prompt})
    assert response.status_code == 200, (
        f"POST /tokenize answered {response.status_code}: {response.text[:300]}"
    )
    return int(response.json()["count"])


def _sse(endpoint: Endpoint, path: str, body: dict[str, Any]) -> tuple[float, list[tuple[float, str]]]:
    """POST with stream=true; returns when the response headers arrived and each `data` payload with its
    arrival time. Parsed as the SSE spec says: comments (`: keep-alive`) and other fields are ignored."""
    frames: list[tuple[float, str]] = []
    with (
        endpoint.http(timeout=120) as http,
        http.stream("POST", path, json={**body, "stream": True}) as response,
    ):
        headers_at = time.monotonic()
        assert response.status_code == 200, f"streaming POST {path} answered {response.status_code}"
        content_type = response.headers.get("content-type", "")
        assert content_type.startswith("text/event-stream"), (
            f"streaming POST {path} answered Content-Type {content_type!r}, expected text/event-stream"
        )
        for line in response.iter_lines():
            if line.startswith("data:"):
                payload = line[len("data:") :]
                frames.append((time.monotonic(), payload[1:] if payload.startswith(" ") else payload))
    return headers_at, frames


def test_health(aksai_endpoint: Endpoint) -> None:
    with aksai_endpoint.http() as http:
        response = http.get("health")
    assert response.status_code == 200, (
        f"GET /health answered {response.status_code} ({response.text[:200]!r}): the engine is not healthy "
        "(vLLM answers 503 when its engine died); look at the pod's log"
    )


def test_version(aksai_endpoint: Endpoint) -> None:
    with aksai_endpoint.http() as http:
        response = http.get("version")
    assert response.status_code == 200, f"GET /version answered {response.status_code}"
    version = response.json().get("version")
    assert isinstance(version, str) and version, (
        f"GET /version gave {response.text[:200]!r}, expected {{'version': ...}}"
    )


@pytest.mark.explains("served_model")
def test_models_list(aksai_endpoint: Endpoint) -> None:
    with aksai_endpoint.openai() as client:
        models = list(client.models.list())
    assert models, "the SDK's models.list() returned no model"
    for model in models:
        assert model.object == "model", f"model {model.id}: object is {model.object!r}, expected 'model'"
        if (model.model_extra or {}).get("parent"):
            continue  # a LoRA adapter's card names its base model and carries no max_model_len
        max_len = (model.model_extra or {}).get("max_model_len")
        assert isinstance(max_len, int) and max_len > 0, (
            f"model {model.id}: max_model_len is {max_len!r}; vLLM reports the context it serves here"
        )


def test_completion(aksai_endpoint: Endpoint, served_model: dict[str, Any]) -> None:
    model = served_model["id"]
    with aksai_endpoint.openai() as client:
        completion = client.completions.create(model=model, prompt=PROMPT, max_tokens=16, temperature=0)
    choice = completion.choices[0]
    assert choice.text, "the completion's text is empty"
    assert choice.finish_reason in ("length", "stop"), f"finish_reason is {choice.finish_reason!r}"
    usage = completion.usage
    assert usage is not None, "the completion has no usage"
    assert 1 <= usage.completion_tokens <= 16, (
        f"completion_tokens is {usage.completion_tokens} with max_tokens=16"
    )
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, (
        f"usage does not add up: {usage}"
    )
    counted = _token_count(aksai_endpoint, model, PROMPT)
    assert usage.prompt_tokens == counted, (
        f"usage.prompt_tokens is {usage.prompt_tokens} but /tokenize counts {counted}: billing and context checks "
        "built on usage will be wrong"
    )


def test_chat_completion(aksai_endpoint: Endpoint, served_model: dict[str, Any]) -> None:
    with aksai_endpoint.openai() as client:
        try:
            chat = client.chat.completions.create(
                model=served_model["id"],
                max_tokens=16,
                temperature=0,
                messages=[{"role": "user", "content": PROMPT}],
            )
        except openai.APIStatusError as exc:
            pytest.fail(
                f"chat completion answered {exc.status_code}: {exc.message} — completions may still work; "
                "a broken or missing chat template is the usual cause (--chat-template)",
                pytrace=False,
            )
    message = chat.choices[0].message
    assert message.role == "assistant", f"the reply's role is {message.role!r}"
    assert message.content, "the chat reply is empty"
    assert chat.usage is not None and chat.usage.completion_tokens >= 1, f"usage is {chat.usage}"


def test_chat_streams_through_the_sdk(aksai_endpoint: Endpoint, served_model: dict[str, Any]) -> None:
    with aksai_endpoint.openai() as client:
        try:
            stream = client.chat.completions.create(
                model=served_model["id"],
                max_tokens=32,
                stream=True,
                messages=[{"role": "user", "content": PROMPT}],
            )
            pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
        except openai.APIStatusError as exc:
            pytest.fail(f"streaming chat answered {exc.status_code}: {exc.message}", pytrace=False)
    assert len(pieces) > 2 and "".join(pieces), (
        f"the SDK got {len(pieces)} chunks and text {''.join(pieces)!r}"
    )


def test_chat_stream_wire_format(aksai_endpoint: Endpoint, served_model: dict[str, Any]) -> None:
    """SSE frames `data: <json>`, first delta `{"role": "assistant", "content": ""}`, ending with `[DONE]`."""
    _, frames = _sse(
        aksai_endpoint,
        "v1/chat/completions",
        {"model": served_model["id"], "max_tokens": 16, "messages": [{"role": "user", "content": PROMPT}]},
    )
    assert frames, "the stream sent no data frame"
    assert frames[-1][1] == "[DONE]", f"the stream ended with {frames[-1][1][:80]!r}, expected data: [DONE]"
    chunks = [json.loads(payload) for _, payload in frames[:-1]]
    assert chunks, "the stream sent only [DONE]"
    first = chunks[0]
    assert first.get("object") == "chat.completion.chunk", f"first chunk object is {first.get('object')!r}"
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}, (
        f"first chunk delta is {first['choices'][0]['delta']}, expected {{'role': 'assistant', 'content': ''}}"
    )
    finish = [c["choices"][0].get("finish_reason") for c in chunks if c.get("choices")]
    assert finish[-1] in ("length", "stop"), f"the last chunk's finish_reason is {finish[-1]!r}"


def test_streaming_really_streams(aksai_endpoint: Endpoint, served_model: dict[str, Any]) -> None:
    """The first token arrives well before the last: a proxy or server that buffers the stream fails this."""
    headers_at, frames = _sse(
        aksai_endpoint,
        "v1/completions",
        {
            "model": served_model["id"],
            "prompt": PROMPT,
            "max_tokens": 64,
            "temperature": 0,
            "ignore_eos": True,
        },
    )
    content = [(at, json.loads(p)) for at, p in frames if p != "[DONE]"]
    content = [(at, c) for at, c in content if c.get("choices") and c["choices"][0].get("text")]
    assert len(content) >= 2, f"the stream carried {len(content)} content chunks for 64 tokens"
    first, last = content[0][0] - headers_at, content[-1][0] - headers_at
    spread = last - first
    # Measured from the response headers, so connection set-up (a port-forward, a TLS handshake) is excluded.
    assert spread >= 0.5 * last and spread >= MIN_STREAM_SPREAD_S, (
        f"64 tokens arrived between {first * 1000:.0f} ms and {last * 1000:.0f} ms after the response headers: "
        "the stream is buffered, so time-to-first-token is really the whole generation. Look for a proxy, "
        "ingress or gateway buffering responses (nginx proxy_buffering, Application Gateway), or the server"
    )


def test_stream_usage_chunk(aksai_endpoint: Endpoint, served_model: dict[str, Any]) -> None:
    """With stream_options.include_usage, one extra chunk with `choices: []` and usage comes before [DONE]."""
    _, frames = _sse(
        aksai_endpoint,
        "v1/completions",
        {
            "model": served_model["id"],
            "prompt": PROMPT,
            "max_tokens": 8,
            "stream_options": {"include_usage": True},
        },
    )
    assert len(frames) >= 2 and frames[-1][1] == "[DONE]", "the stream did not end with data: [DONE]"
    last = json.loads(frames[-2][1])
    assert last.get("choices") == [], (
        f"the chunk before [DONE] has choices {last.get('choices')!r}, expected []"
    )
    usage = last.get("usage") or {}
    assert usage.get("prompt_tokens", 0) > 0 and 1 <= usage.get("completion_tokens", 0) <= 8, (
        f"the usage chunk says {usage}"
    )
    assert usage.get("total_tokens") == usage["prompt_tokens"] + usage["completion_tokens"], f"usage {usage}"


def test_unknown_model_is_404(aksai_endpoint: Endpoint) -> None:
    missing = "no-such-model-aksai"
    with aksai_endpoint.openai() as client, pytest.raises(openai.NotFoundError) as raised:
        client.completions.create(model=missing, prompt="hi", max_tokens=1)
    error = (raised.value.body or {}) if isinstance(raised.value.body, dict) else {}
    error = error.get("error", error)
    assert error.get("type") == "NotFoundError" and error.get("code") == 404, (
        f"an unknown model gave 404 with error {error}, expected type 'NotFoundError' and code 404"
    )
    message = str(error.get("message", ""))
    assert missing in message, f"the 404's message {message!r} does not name the model asked for"
    if message != f"The model `{missing}` does not exist.":
        warnings.warn(
            AksaiWarning(
                f"the 404's message is {message!r}, not vLLM's 'The model `{missing}` does not exist.'"
            ),
            stacklevel=1,
        )


def test_prompt_over_context_is_400(aksai_endpoint: Endpoint, served_model: dict[str, Any]) -> None:
    max_len = int(served_model.get("max_model_len") or 0)
    if max_len <= 0:
        pytest.skip("/v1/models gives no max_model_len")
    prompt = "hello " * (max_len + 64)
    with aksai_endpoint.openai(timeout=120) as client, pytest.raises(openai.BadRequestError) as raised:
        client.completions.create(model=served_model["id"], prompt=prompt, max_tokens=16)
    message = str(raised.value.message)
    found = CONTEXT_LIMIT_MESSAGE.search(message)
    assert found, f"the 400's message {message[:200]!r} does not say 'maximum context length is N tokens'"
    assert int(found.group(1)) == max_len, (
        f"the error says the limit is {found.group(1)} tokens but /v1/models says max_model_len={max_len}"
    )


def test_required_metrics_are_exposed(
    aksai_metrics: Callable[[], MetricsSnapshot], served_model: dict[str, Any]
) -> None:
    snapshot = aksai_metrics()
    missing = [name for name in REQUIRED_METRICS if not snapshot.has(name)]
    assert not missing, (
        f"/metrics lacks {', '.join(missing)}: dashboards and KEDA triggers on these will see nothing"
    )
    for current, older in RENAMED_METRICS.items():
        if snapshot.has(current):
            continue
        assert snapshot.has(older), f"/metrics has neither {current} nor its older name {older}"
        warnings.warn(
            AksaiWarning(
                f"/metrics exposes {older}, renamed {current} in newer vLLM: update dashboards and "
                "KEDA triggers when you upgrade"
            ),
            stacklevel=1,
        )
    labelled = snapshot.label_values(snapshot.family_of("vllm:generation_tokens_total") or "", "model_name")
    assert served_model["id"] in labelled, (
        f"vllm:generation_tokens_total has model_name {sorted(labelled)}, expected the served name "
        f"{served_model['id']!r}"
    )


def test_metrics_move_with_traffic(
    aksai_endpoint: Endpoint, aksai_metrics: Callable[[], MetricsSnapshot], served_model: dict[str, Any]
) -> None:
    if aksai_endpoint.via != "port-forward":
        ready = aksai_endpoint.ready_replicas
        if ready is not None and ready > 1:
            pytest.skip(
                f"{ready} replicas behind {aksai_endpoint.via}: a request and the scrapes around it may reach "
                "different pods; the port-forward route (endpoint_route) pins one pod"
            )
    model = served_model["id"]
    family = "vllm:generation_tokens"
    before = aksai_metrics()
    with aksai_endpoint.openai() as client:
        completion = client.completions.create(model=model, prompt=PROMPT, max_tokens=12, temperature=0)
    after = aksai_metrics()
    assert completion.usage is not None
    generated = after.total(family, "_total", model_name=model) - before.total(
        family, "_total", model_name=model
    )
    assert generated >= completion.usage.completion_tokens, (
        f"vllm:generation_tokens_total rose by {generated} over a request that generated "
        f"{completion.usage.completion_tokens} tokens: the metrics do not follow traffic"
    )
    successes = after.total("vllm:request_success", "_total", model_name=model) - before.total(
        "vllm:request_success", "_total", model_name=model
    )
    assert successes >= 1, "vllm:request_success_total did not count the request"


def test_model_answers_on_its_cluster_dns_name(aksai_client_probes: list[str]) -> None:
    """A short-lived client pod in each client namespace reaches the model at
    `http://<ws>.<ns>.svc.cluster.local/v1/models`: the path applications use (cluster DNS, the Service,
    NetworkPolicies), which the port-forward and the service proxy bypass."""
    assert not aksai_client_probes, (
        f"the model does not answer on its Service's cluster DNS name {'; '.join(aksai_client_probes)}. curl's "
        "exit code says why: 6 the name does not resolve (the Service is missing), 7 connection refused (no "
        "endpoint listens on the target port), 28 timed out (a NetworkPolicy drops the traffic; see "
        "test_network_policies_admit_the_clients)"
    )


def test_model_pods_did_not_restart(aksai_endpoint: Endpoint) -> None:
    """No model container restarted while the suite ran (runs last): a restart drops in-flight requests, so a
    crash under a handful of requests will show as errors for your applications."""
    restarted = aksai_endpoint.restarts_during_run()
    assert not restarted, (
        f"the model pods of {aksai_endpoint.workspace} restarted during the run: {'; '.join(restarted)}. Read "
        "the previous instance's log (kubectl logs --previous) for why the model server exited"
    )
