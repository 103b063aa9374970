"""Benchmark of the simulated KEDA: `python benchmarks/bench_keda.py [--queries N] [--pods N]`.

Two figures, each with a baseline measured in the same run:

- the whole lifecycle (0 → 1 → N → 0, the `keda` suite's lifecycle checks) of the vLLM-standalone HTTP scaler
  (demand through the interceptor) and of the lab's Service Bus scaler (queue messages) on the `keda-gpu` scenario at the default time scale, in wall seconds,
  against the issue's 20 s target; baseline: the same suite run with `-k "not lifecycle"` style (static and
  readiness checks only), so the ratio shows what the lifecycle itself costs;
- the simulated Prometheus answering N queries (instant selector, `sum by`, `rate`, `histogram_quantile`) over
  M scraped model-server pods (their real `/metrics` text), p95 latency per query; baseline: parsing the same
  queries only, so the ratio shows the evaluation's share.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import promql_parser
from prometheus_client.parser import text_string_to_metric_families

from pytest_aksai.sim._addons.prometheus._promql import Evaluator, Series

SUITES = Path(__file__).resolve().parents[1] / "suites"
TARGET_LIFECYCLE_S = 20.0
QUERIES = (
    'vllm:num_requests_running{namespace="inference"}',
    'sum by (pod) (vllm:num_requests_waiting{namespace="inference"})',
    'sum(rate(vllm:generation_tokens_total{namespace="inference"}[1m]))',
    "histogram_quantile(0.95, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket[5m])))",
)
_METRICS = (
    """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="phi-4-mini-instruct"} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="phi-4-mini-instruct"} 1.0
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{model_name="phi-4-mini-instruct"} TOKENS
# HELP vllm:e2e_request_latency_seconds Histogram of end to end request latency in seconds.
# TYPE vllm:e2e_request_latency_seconds histogram
"""
    + "".join(
        f'vllm:e2e_request_latency_seconds_bucket{{le="{le}",model_name="phi-4-mini-instruct"}} {n}\n'
        for le, n in (("0.5", 10), ("1.0", 40), ("2.5", 90), ("5.0", 99), ("+Inf", 100))
    )
    + "vllm:e2e_request_latency_seconds_count 100\nvllm:e2e_request_latency_seconds_sum 150\n"
)


def _series(pods: int, scrapes: int) -> list[Series]:
    found: dict[tuple[tuple[str, str], ...], Series] = {}
    for step in range(scrapes):
        t = 1000.0 + 15 * step
        for pod in range(pods):
            text = _METRICS.replace("TOKENS", str(100.0 * step + pod))
            target = {"namespace": "inference", "pod": f"vllm-{pod}", "job": "kubernetes-pods"}
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    labels = tuple(sorted({**target, **sample.labels, "__name__": sample.name}.items()))
                    found.setdefault(labels, Series(labels)).samples.append((t, float(sample.value)))
    return list(found.values())


def _prometheus(queries: int, pods: int) -> None:
    series = _series(pods, 21)
    now = 1000.0 + 15 * 20
    evaluate, parse = [], []
    for i in range(queries):
        text = QUERIES[i % len(QUERIES)]
        started = time.perf_counter()
        promql_parser.parse(text)
        parse.append(time.perf_counter() - started)
        started = time.perf_counter()
        Evaluator(lambda: series, now).query(text)
        evaluate.append(time.perf_counter() - started)
    p95 = statistics.quantiles(evaluate, n=20)[-1] * 1000
    base = statistics.quantiles(parse, n=20)[-1] * 1000
    print(f"prometheus: {queries} queries over {pods} pods ({len(series)} series)")
    print(f"  baseline: parse only, p95                 {base:8.3f} ms")
    print(f"  parse + evaluate, p95                     {p95:8.3f} ms   ratio {p95 / base:6.1f}x")


def _suite(tmp: Path, expression: str, scaler: str) -> float:
    (tmp / "test_keda.py").write_text((SUITES / "test_keda.py").read_text())
    (tmp / "aksai.toml").write_text(
        f'[clusters.kg]\nprovider = "sim"\nscaled_objects = ["{scaler}"]\n'
        '[clusters.kg.sim]\nscenario = "keda-gpu"\n'
    )
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--aksai-cluster=kg", "-q", "-p", "no:randomly", "-k", expression],
        cwd=tmp,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if run.returncode != 0:
        print(run.stdout[-2000:], file=sys.stderr)
        raise SystemExit("the keda suite failed; no figure")
    return elapsed


LIFECYCLES = (
    ("HTTP, 0 -> 1 -> 2 -> 0 through the interceptor", "inference/vllm-phi4-mini"),
    ("azure-servicebus, 0 -> 1 -> 3 -> 0 on queue messages", "inference/inference-sb-scaler"),
)


def _lifecycle() -> None:
    for title, scaler in LIFECYCLES:
        with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
            base = _suite(
                Path(one),
                "not (idles or activates or first_request or scales or scale_in or gpu_node)",
                scaler,
            )
            whole = _suite(Path(two), "", scaler)
        lifecycle = whole - base
        print(f"keda lifecycle ({title}, keda-gpu scenario, time scale 60)")
        print(f"  baseline: static + readiness checks only  {base:8.2f} s")
        print(f"  the whole suite                           {whole:8.2f} s   ratio {whole / base:5.2f}x")
        print(
            f"  the lifecycle itself                      {lifecycle:8.2f} s   "
            f"ratio to the {TARGET_LIFECYCLE_S:g} s target {lifecycle / TARGET_LIFECYCLE_S:5.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=200)
    parser.add_argument("--skip-lifecycle", action="store_true")
    args = parser.parse_args()
    _prometheus(args.queries, args.pods)
    if not args.skip_lifecycle:
        _lifecycle()


if __name__ == "__main__":
    main()
