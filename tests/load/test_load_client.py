"""The client against a scheduled-token server in another process: what it measures, and when it stops.

Timing asserts here are bounds that hold on a busy machine (the schedule is a floor the client cannot beat);
how close the client gets to the schedule is the benchmark's job (benchmarks/bench_load.py).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_aksai.load import InvalidRunError, LoadPlan, LoadTargetError, ValidityLimits, run_load

TTFT_MS, ITL_MS, TOKENS = 20.0, 5.0, 16


def test_closed_loop_measures_ttft_at_first_content_and_every_gap(fake_server: Callable[..., str]) -> None:
    url = fake_server(ttft_ms=TTFT_MS, itl_ms=ITL_MS, tokens=TOKENS)
    result = run_load(LoadPlan(url=url, model="m", concurrency=4, duration_s=60, requests=40, prompt_tokens=100,
                               max_tokens=TOKENS))  # fmt: skip
    assert result.requests == 40
    assert result.errors == 0
    # The role-only chunk goes out at once; TTFT counted from it would be ~0, not ≥ the scheduled 20 ms.
    assert result.ttft.percentile_ms(0) >= TTFT_MS * 0.999
    # Every gap between content chunks, none for the role or usage chunk.
    assert result.itl.count == 40 * (TOKENS - 1)
    assert result.itl.percentile_ms(50) == pytest.approx(ITL_MS, abs=2.5)
    assert result.e2e.percentile_ms(0) >= (TTFT_MS + ITL_MS * (TOKENS - 1)) * 0.999
    assert result.output_tokens == 40 * TOKENS  # from the usage chunk
    assert result.prompt_tokens == 40 * 100  # calibrated on the server's usage.prompt_tokens
    assert result.achieved_concurrency == pytest.approx(4, rel=0.05)


def test_duration_bounds_the_run_and_warmup_is_not_measured(fake_server: Callable[..., str]) -> None:
    url = fake_server(ttft_ms=TTFT_MS, itl_ms=ITL_MS, tokens=TOKENS)
    result = run_load(
        LoadPlan(url=url, model="m", concurrency=2, duration_s=0.5, max_tokens=TOKENS, warmup_requests=5)
    )
    # The issue window ends at the duration; only requests issued inside it are measured, in-flight ones drain.
    assert result.issue_window_s == pytest.approx(0.5, abs=0.1)
    assert result.window_s < result.issue_window_s + 2 * (result.e2e.max_ms() or 0) / 1000 + 0.1
    per_stream = 0.5 / ((TTFT_MS + ITL_MS * (TOKENS - 1)) / 1000)
    assert result.requests <= 2 * (per_stream + 1)


def test_open_loop_constant_rate_sends_on_schedule(fake_server: Callable[..., str]) -> None:
    url = fake_server(ttft_ms=TTFT_MS, itl_ms=ITL_MS, tokens=TOKENS)
    result = run_load(LoadPlan(url=url, model="m", rate=40, arrival="constant", duration_s=1.0, max_tokens=TOKENS,
                               endpoint="completions"))  # fmt: skip
    assert result.requests == 40
    assert result.schedule_lag.count == 40
    assert result.errors == 0
    assert result.ttft.percentile_ms(0) >= TTFT_MS * 0.999


def test_poisson_arrivals_are_seeded_and_bounded_by_request_count(fake_server: Callable[..., str]) -> None:
    url = fake_server(ttft_ms=TTFT_MS, itl_ms=ITL_MS, tokens=TOKENS)
    result = run_load(LoadPlan(url=url, model="m", rate=200, duration_s=60, requests=25, max_tokens=TOKENS))
    assert result.requests == 25
    assert result.issue_window_s < 10  # 25 arrivals at 200/s: it stops by itself long before the duration


def test_non_streaming_requests_measure_e2e_and_usage(fake_server: Callable[..., str]) -> None:
    url = fake_server(ttft_ms=TTFT_MS, itl_ms=ITL_MS, tokens=TOKENS)
    result = run_load(LoadPlan(url=url, model="m", concurrency=2, duration_s=60, requests=6, stream=False,
                               max_tokens=TOKENS))  # fmt: skip
    assert (result.requests, result.errors, result.ttft.count) == (6, 0, 0)
    assert result.output_tokens == 6 * TOKENS
    assert result.e2e.percentile_ms(0) >= TTFT_MS + ITL_MS * (TOKENS - 1)


def test_server_errors_are_counted_by_class_not_timed(fake_server: Callable[..., str]) -> None:
    # Requests 1–2 calibrate the prompt, 3 warms up; every 4th fails: measured requests 4 … 11 → 4 and 8 fail.
    url = fake_server(ttft_ms=1, itl_ms=1, tokens=4, fail_every=4)
    result = run_load(LoadPlan(url=url, model="m", concurrency=1, duration_s=60, requests=8, max_tokens=4))
    assert result.errors == 2
    assert dict(result.errors_by_class) == {"http_500": 2}
    assert result.e2e.count == 6
    assert result.error_rate == pytest.approx(0.25)


def test_an_unknown_path_is_refused_before_the_run_starts(fake_server: Callable[..., str]) -> None:
    url = fake_server(ttft_ms=TTFT_MS, itl_ms=ITL_MS, tokens=TOKENS).replace("/v1", "/v2")
    with pytest.raises(LoadTargetError, match="refused the calibration request with HTTP 404"):
        run_load(LoadPlan(url=url, model="m", concurrency=1, duration_s=1))


def test_a_light_run_is_valid(fake_server: Callable[..., str]) -> None:
    # Other processes share this machine's cores and one preemption is a loop-lag p99 over 100 samples:
    # the loop-lag limit is relaxed here; the concurrency and CPU checks keep their defaults.
    url = fake_server(ttft_ms=TTFT_MS, itl_ms=20, tokens=TOKENS)
    result = run_load(LoadPlan(url=url, model="m", concurrency=2, duration_s=1.0, max_tokens=TOKENS,
                               limits=ValidityLimits(max_loop_lag_p99_ms=50)))  # fmt: skip
    assert result.invalid_reasons == []
    result.raise_if_invalid()


def test_more_streams_than_one_core_can_drive_is_invalid_not_passed(fake_server: Callable[..., str]) -> None:
    # Zero-latency streams: the client, not the server, is the bottleneck at any concurrency.
    url = fake_server(tokens=64)
    result = run_load(LoadPlan(url=url, model="m", concurrency=512, duration_s=1.5, max_tokens=64))
    assert not result.valid
    resources = {r.resource for r in result.invalid_reasons}
    assert resources & {"client CPU", "event loop"}
    with pytest.raises(InvalidRunError, match="the client saturated its"):
        result.raise_if_invalid()


def test_an_arrival_rate_beyond_one_core_is_invalid(fake_server: Callable[..., str]) -> None:
    url = fake_server(tokens=64)
    result = run_load(LoadPlan(url=url, model="m", rate=20_000, arrival="constant", duration_s=1.0, max_tokens=64,
                               limits=ValidityLimits(max_client_cpu_fraction=1.0)))  # fmt: skip
    assert "arrival schedule" in {r.resource for r in result.invalid_reasons}
