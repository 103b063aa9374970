"""Benchmark of the simulated metrics-server, HPA resource metrics and CronJobs: `python benchmarks/bench_metrics.py`.

Prints, against baselines measured in the same run:
- listing PodMetrics of every namespace (the aggregated API computing usage for each pod) vs listing the pods
  themselves, p50/p95 over the same number of requests, and the ratio;
- `kubectl top pods -A` vs `kubectl get pods -A` wall time (when kubectl is on PATH);
- CronJob timing accuracy: cluster seconds between a Job's scheduled minute and its creation, over five runs
  of a `* * * * *` CronJob;
- the HPA's reaction to CPU load: cluster seconds from a KEDA `cpu` ScaledObject's creation to 1 -> 4
  replicas (three 15 s HPA syncs are the floor: the pod needs two metrics samples first).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from datetime import datetime

import kubernetes

from pytest_aksai.sim import SimCluster

REQUESTS = 40
PODS = 60


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def _timed(fn: object, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    with SimCluster() as sim:
        api = kubernetes.config.new_client_from_config(str(sim.kubeconfig_path))
        core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)
        custom = kubernetes.client.CustomObjectsApi(api)
        batch = kubernetes.client.BatchV1Api(api)
        core.create_namespace({"metadata": {"name": "bench"}})
        apps.create_namespaced_deployment(
            "bench",
            {
                "metadata": {"name": "many"},
                "spec": {
                    "replicas": PODS,
                    "selector": {"matchLabels": {"app": "many"}},
                    "template": {
                        "metadata": {"labels": {"app": "many"}},
                        "spec": {
                            "containers": [
                                {
                                    "name": "c",
                                    "image": "nginx",
                                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                                }
                            ]
                        },
                    },
                },
            },
        )
        deadline = time.monotonic() + 60
        while (
            len(custom.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", "bench", "pods")["items"])
            < PODS
        ):
            if time.monotonic() > deadline:
                raise SystemExit("the pods never got metrics")
            time.sleep(0.2)
        metrics = _timed(
            lambda: custom.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "pods"), REQUESTS
        )
        pods = _timed(lambda: core.list_pod_for_all_namespaces(), REQUESTS)
        (m50, m95), (p50, p95) = _percentiles(metrics), _percentiles(pods)
        print(f"list PodMetrics (all ns, {PODS + 20}+ pods): p50 {m50:.1f} ms, p95 {m95:.1f} ms")
        print(
            f"list pods (baseline):                 p50 {p50:.1f} ms, p95 {p95:.1f} ms   ratio p50 {m50 / p50:.2f}"
        )
        kubectl = shutil.which("kubectl")
        if kubectl:

            def run(*args: str) -> None:
                subprocess.run(
                    [kubectl, "--kubeconfig", str(sim.kubeconfig_path), *args],
                    capture_output=True,
                    check=True,
                )

            top = _timed(lambda: run("top", "pods", "-A"), 5)
            get = _timed(lambda: run("get", "pods", "-A"), 5)
            print(
                f"kubectl top pods -A: median {statistics.median(top):.0f} ms; kubectl get pods -A (baseline) "
                f"{statistics.median(get):.0f} ms; ratio {statistics.median(top) / statistics.median(get):.2f}"
            )

        scale = core.read_namespaced_config_map("aksai-sim", "kube-system").data["timeScale"]
        batch.create_namespaced_cron_job(
            "bench",
            {
                "metadata": {"name": "tick"},
                "spec": {
                    "schedule": "* * * * *",
                    "successfulJobsHistoryLimit": 10,
                    "jobTemplate": {
                        "spec": {
                            "template": {
                                "spec": {
                                    "restartPolicy": "Never",
                                    "containers": [{"name": "t", "image": "busybox", "command": ["true"]}],
                                }
                            }
                        }
                    },
                },
            },
        )
        deadline = time.monotonic() + 60
        while len(jobs := batch.list_namespaced_job("bench").items) < 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        lags = [
            (
                j.metadata.creation_timestamp
                - datetime.fromisoformat(
                    j.metadata.annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"].replace(
                        "Z", "+00:00"
                    )
                )
            ).total_seconds()
            for j in jobs
        ]
        print(
            f"CronJob start lag over {len(lags)} runs (cluster s): min {min(lags):.0f}, max {max(lags):.0f} "
            f"(timestamps have 1 s resolution; {scale} cluster s per wall s)"
        )

        apps.create_namespaced_deployment(
            "bench",
            {
                "metadata": {"name": "busy"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "busy"}},
                    "template": {
                        "metadata": {"labels": {"app": "busy"}},
                        "spec": {
                            "containers": [
                                {
                                    "name": "c",
                                    "image": "polinux/stress",
                                    "command": ["stress", "--cpu", "1"],
                                    "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "200m"}},
                                }
                            ]
                        },
                    },
                },
            },
        )
        created = custom.create_namespaced_custom_object(
            "keda.sh",
            "v1alpha1",
            "bench",
            "scaledobjects",
            {
                "apiVersion": "keda.sh/v1alpha1",
                "kind": "ScaledObject",
                "metadata": {"name": "busy"},
                "spec": {
                    "scaleTargetRef": {"name": "busy"},
                    "minReplicaCount": 1,
                    "maxReplicaCount": 4,
                    "triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50"}}],
                },
            },
        )
        deadline = time.monotonic() + 60
        while (apps.read_namespaced_deployment("busy", "bench").spec.replicas or 0) < 4:
            if time.monotonic() > deadline:
                raise SystemExit("the HPA never scaled busy to 4")
            time.sleep(0.05)
        hpa = kubernetes.client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler(
            "keda-hpa-busy", "bench"
        )
        started = datetime.fromisoformat(created["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
        print(
            f"HPA 1 -> 4 under CPU load: {(hpa.status.last_scale_time - started).total_seconds():.0f} cluster s"
        )


if __name__ == "__main__":
    main()
