"""The model server's load faults: a slow path before the scheduler, 500s under load, a KV cache too small."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tests.sim.test_vllm_server import NAME, Served, scrape, serve, sim, value

__all__ = ["serve", "sim"]  # the fixtures this module borrows

BODY = {"model": NAME, "prompt": "hello there", "max_tokens": 2}


def test_slow_ttft_is_counted_in_the_servers_own_ttft_histogram(serve: Callable[..., Served]) -> None:
    served = serve(faults=("vllm-slow-ttft=400",))
    started = time.monotonic()
    response = httpx.post(served.url + "/v1/completions", json=BODY, timeout=30)
    assert response.status_code == 200, response.text
    assert time.monotonic() - started >= 0.4
    metrics = scrape(served.url)
    assert value(metrics, "vllm:time_to_first_token_seconds_sum") >= 0.4
    assert value(metrics, "vllm:num_requests_waiting") == 0


def test_errors_under_load_fail_one_request_in_every_hundred_over_percent(
    serve: Callable[..., Served],
) -> None:
    served = serve(faults=("vllm-errors-under-load=0:50",))
    statuses = [httpx.post(served.url + "/v1/completions", json=BODY, timeout=30) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 500, 200, 500]
    assert statuses[1].json()["error"]["type"] == "InternalServerError"
    served.set_faults()
    assert httpx.post(served.url + "/v1/completions", json=BODY, timeout=30).status_code == 200


def test_below_the_concurrency_no_request_fails(serve: Callable[..., Served]) -> None:
    served = serve(faults=("vllm-errors-under-load=4:100",))
    statuses = {
        httpx.post(served.url + "/v1/completions", json=BODY, timeout=30).status_code for _ in range(3)
    }
    assert statuses == {200}


def test_kv_smaller_than_configured_holds_one_max_model_len(serve: Callable[..., Served]) -> None:
    healthy, shrunk = serve(), serve(faults=("vllm-kv-smaller-than-configured",))
    assert healthy.server.engine.total_blocks > 3000
    assert shrunk.server.engine.total_blocks == 4096 // 16
