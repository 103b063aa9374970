"""Workers share a plan and a start time, print one tagged line each and merge; the cross-checks' arithmetic."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_aksai.load import (
    LoadPlan,
    LoadResult,
    ServerWindow,
    WorkerOutputError,
    WorkerSpec,
    merge_outputs,
    parse_outputs,
)
from pytest_aksai.load._crosscheck import kv_tolerance, onset_tolerance, queueing, serving_config
from pytest_aksai.load._server_window import GaugeSample, _gauges
from pytest_aksai.load._worker import WorkerOutput, share
from pytest_aksai.sim._core._realprocess import rewrite_service_urls

PLAN = LoadPlan(url="http://127.0.0.1:9/v1", model="m", concurrency=10, duration_s=1, requests=7, seed=3)


def test_shares_add_up_to_the_plan() -> None:
    parts = [share(PLAN, i, 3) for i in range(3)]
    assert [p.concurrency for p in parts] == [4, 3, 3]
    assert sum(p.requests or 0 for p in parts) == 7
    assert [p.seed for p in parts] == [3, 4, 5]
    open_loop = LoadPlan(url=PLAN.url, model="m", rate=30.0, duration_s=1)
    assert [share(open_loop, i, 3).rate for i in range(3)] == [10.0, 10.0, 10.0]
    with pytest.raises(ValueError, match=r"outside 0\.\.2"):
        share(PLAN, 3, 3)


def test_two_worker_processes_share_a_start_and_merge(
    tmp_path: Path, fake_server: Callable[..., str]
) -> None:
    url = fake_server(ttft_ms=5, itl_ms=1, tokens=8)
    plan = LoadPlan(url=url, model="fake", concurrency=4, duration_s=1.5, prompt_tokens=16, max_tokens=8)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(WorkerSpec(plan, workers=2, start_at=time.time() + 3).to_json()))
    command = [sys.executable, "-m", "pytest_aksai.load", "worker", "--spec", str(spec)]
    children = [
        subprocess.Popen([*command, "--index", str(i)], stdout=subprocess.PIPE, text=True) for i in (0, 1)
    ]
    logs = "".join(child.communicate(timeout=60)[0] for child in children)
    outputs = parse_outputs("some other log line\n" + logs)
    assert sorted(outputs) == [0, 1]
    assert [o.result.plan.concurrency for o in outputs.values()] == [2, 2]
    merged = merge_outputs(outputs, plan, 2)
    assert merged.result.workers == 2
    assert merged.result.requests == sum(o.result.requests for o in outputs.values())
    assert merged.result.ttft.count == merged.result.requests
    assert merged.result.start_late_s < 1.0
    assert merged.result.achieved_concurrency == pytest.approx(4, rel=0.1)


def test_a_missing_worker_makes_the_run_incomplete() -> None:
    one = WorkerOutput(0, LoadResult(plan=share(PLAN, 0, 2)))
    with pytest.raises(WorkerOutputError, match=r"1 of 2 load workers reported no result \(index 1\)"):
        merge_outputs({0: one}, PLAN, 2)
    with pytest.raises(WorkerOutputError, match="cannot be read"):
        parse_outputs("AKSAI_RESULT 0 {not json")


def test_a_worker_that_saturated_is_named_even_when_the_merge_looks_fine() -> None:
    busy = LoadResult(plan=share(PLAN, 0, 2), requests=10, client_cpu_fraction=0.95)
    calm = LoadResult(plan=share(PLAN, 1, 2), requests=10, start_late_s=2.5)
    merged = merge_outputs({0: WorkerOutput(0, busy), 1: WorkerOutput(1, calm)}, PLAN, 2)
    texts = [r.text for r in merged.invalid_reasons]
    assert any(t.startswith("worker 0: the client used 95%") for t in texts), texts
    assert any("worker 1: a worker began measuring 2.5 s after the shared start" in t for t in texts), texts


def test_server_window_quantile_is_prometheus_histogram_quantile() -> None:
    window = ServerWindow(
        ttft_count=10, ttft_sum_s=2.0, ttft_buckets=[(0.1, 0), (0.25, 5), (0.5, 10), (float("inf"), 10)]
    )
    assert window.ttft_mean_ms() == pytest.approx(200)
    assert window.ttft_quantile_ms(0.5) == pytest.approx(250)
    assert window.ttft_quantile_ms(0.25) == pytest.approx(175)
    assert ServerWindow.from_json(json.loads(json.dumps(window.to_json()))) == window


def test_gauges_are_read_from_both_kv_metric_names() -> None:
    text = (
        "# HELP vllm:num_requests_running x\n"
        'vllm:num_requests_running{model_name="m",engine="0"} 3.0\n'
        'vllm:num_requests_waiting{model_name="m",engine="0"} 1.0\n'
        'vllm:gpu_cache_usage_perc{model_name="m",engine="0"} 0.25\n'
    )
    assert _gauges(text) == (3.0, 1.0, 0.25)
    assert _gauges("# nothing here\n") is None


def test_queueing_stays_above_zero_only_when_most_samples_wait() -> None:
    transient = ServerWindow(samples=[GaugeSample(i, 8, 1 if i % 5 == 0 else 0, 0.1) for i in range(20)])
    assert not queueing(transient).queued
    queued = ServerWindow(samples=[GaugeSample(i, 7, 3, 0.98) for i in range(20)])
    q = queueing(queued)
    assert q.queued and q.onset == 8 and q.kv_usage_mean == pytest.approx(0.98)
    assert onset_tolerance(13) == pytest.approx(1.3) and onset_tolerance(5) == 1.0
    assert kv_tolerance(0.08) == 0.05 and kv_tolerance(0.6) == pytest.approx(0.15)


def test_serving_config_reads_kebab_and_snake_case() -> None:
    config = serving_config({"max_model_len": 4096, "max-num-seqs": "12", "gpu-memory-utilization": 0.9})
    assert (config.max_model_len, config.max_num_seqs, config.gpu_memory_utilization) == (4096, 12, 0.9)


class _Store:
    """Enough of the sim's store for a Service with one Ready pod behind it."""

    def __init__(self) -> None:
        self.objects = {
            ("services", "ws", "inference"): {"spec": {"selector": {"app": "ws"}}},
        }
        self.pods = [
            {
                "metadata": {"labels": {"app": "ws"}, "annotations": {"sim.aksai.dev/http-port": "4321"}},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            }
        ]

    def resource(self, _version: str, plural: str) -> str:
        return plural

    def try_get(self, plural: str, name: str, namespace: str) -> object:
        return self.objects.get((plural, name, namespace))

    def list(self, _plural: str, _namespace: str) -> list[dict[str, object]]:
        return self.pods


def test_real_processes_reach_services_on_the_pods_local_port() -> None:
    text = '{"url": "http://ws.inference.svc.cluster.local:80/v1", "other": "http://gone.inference.svc:80"}'
    assert rewrite_service_urls(text, _Store()) == (
        '{"url": "http://127.0.0.1:4321/v1", "other": "http://gone.inference.svc:80"}'
    )
