"""Benchmark of the simulated Karpenter: `python benchmarks/bench_nap.py [--nodes 200] [--pods 2000]`.

1. Provisioning decisions (`_scheduling.schedule`, the pure function the provisioner runs per batch) for 50 to
   500 pending GPU and CPU pods over 3 NodePools and the whole catalog: wall time per batch, and how it grows
   (the ratio to the 50-pod batch, against linear growth).
2. A simulated cluster holding `--nodes` GPU nodes (NodeClaims through the whole lifecycle) and `--pods`
   pods: API latency (GET of a node, LIST of a namespace's pods; p50/p95) and the process's memory, against
   the same figures of the idle default lab measured first in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import kubernetes

from pytest_aksai.sim import SimCluster
from pytest_aksai.sim._addons.karpenter import _scheduling as scheduling
from pytest_aksai.sim._addons.karpenter._provisioner import capacity_for, offering_price
from pytest_aksai.sim._core._resources import parse_map
from pytest_aksai.sizing import matching_instance_types

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}


def _pools() -> list[scheduling.PoolTemplate]:
    def pool(
        name: str, weight: int, reqs: list[dict[str, Any]], taints: list[dict[str, Any]], gpus: str
    ) -> scheduling.PoolTemplate:
        types = matching_instance_types(reqs)
        options = sorted(
            ((it, parse_map(capacity_for(it.name)[1])) for it in types),
            key=lambda p: (offering_price(p[0].name, "on-demand"), p[0].name),
        )
        limits = {"nvidia.com/gpu": Decimal(gpus), "cpu": Decimal(100000)}
        return scheduling.PoolTemplate(name, weight, reqs, taints, {}, options, limits)

    family = {"key": "karpenter.azure.com/sku-family", "operator": "In", "values": ["N"]}
    return [
        pool(
            "gpu-inference",
            100,
            [family, {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}],
            [GPU_TAINT],
            "100000",
        ),
        pool(
            "gpu-inference-spot",
            50,
            [family, {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}],
            [
                GPU_TAINT,
                {"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"},
            ],
            "100000",
        ),
        pool(
            "general",
            10,
            [{"key": "karpenter.azure.com/sku-family", "operator": "In", "values": ["D"]}],
            [],
            "0",
        ),
    ]


def _pods(n: int) -> list[dict[str, Any]]:
    pods = []
    for i in range(n):
        gpu = i % 2 == 0
        resources = {"requests": {"cpu": "500m", "memory": "1Gi"}}
        if gpu:
            resources["limits"] = {"nvidia.com/gpu": str(1 + i % 3)}
        pods.append(
            {
                "metadata": {"name": f"p{i}", "namespace": "bench", "uid": f"u{i}"},
                "spec": {
                    "containers": [{"name": "c", "resources": resources}],
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
                    if gpu
                    else [],
                },
            }
        )
    return pods


def bench_decisions() -> None:
    print("provisioning decisions (3 NodePools, full catalog):")
    times: dict[int, float] = {}
    for n in (50, 100, 200, 500):
        pods = _pods(n)
        runs = []
        for _ in range(3):
            pools = _pools()
            start = time.perf_counter()
            result = scheduling.schedule(pods, pools)
            runs.append(time.perf_counter() - start)
        times[n] = min(runs)
        print(
            f"  {n:4d} pods: {times[n] * 1000:8.1f} ms, {len(result.claims)} NodeClaims, {len(result.errors)} unschedulable"
        )
    growth = times[500] / times[50]
    print(f"  growth 50 → 500 pods: ×{growth:.1f} (linear would be ×10; ratio to linear {growth / 10:.2f})")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _latencies(
    core: kubernetes.client.CoreV1Api, node: str, samples: int = 200
) -> tuple[float, float, float, float]:
    gets, lists = [], []
    for _ in range(samples):
        start = time.perf_counter()
        core.read_node(node)
        gets.append(time.perf_counter() - start)
        start = time.perf_counter()
        core.list_namespaced_pod("bench", limit=50)
        lists.append(time.perf_counter() - start)

    def p(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100)[q - 1] * 1000

    return p(gets, 50), p(gets, 95), p(lists, 50), p(lists, 95)


def bench_cluster(nodes: int, pods: int) -> None:
    print(f"a simulated cluster with {nodes} GPU nodes and {pods} pods:")
    # Time scale 10: every node renews its Lease each 10 cluster seconds, so at 600x 200 nodes would write 12,000
    # Leases per wall second and measure the heartbeats, not the API.
    with SimCluster(time_scale=10) as sim:
        api = kubernetes.config.new_client_from_config(str(sim.kubeconfig_path))
        core = kubernetes.client.CoreV1Api(api)
        custom = kubernetes.client.CustomObjectsApi(api)
        core.create_namespace({"metadata": {"name": "bench"}})
        base_rss = _rss_mb()
        system = core.list_node().items[0].metadata.name
        base = _latencies(core, system)
        start = time.perf_counter()
        for i in range(nodes):
            custom.create_cluster_custom_object(
                "karpenter.sh",
                "v1",
                "nodeclaims",
                {
                    "apiVersion": "karpenter.sh/v1",
                    "kind": "NodeClaim",
                    "metadata": {"name": f"bench-{i:03d}"},
                    "spec": {
                        "nodeClassRef": {
                            "group": "karpenter.azure.com",
                            "kind": "AKSNodeClass",
                            "name": "gpu-inference-class",
                        },
                        "requirements": [
                            {
                                "key": "node.kubernetes.io/instance-type",
                                "operator": "In",
                                "values": ["Standard_NC4as_T4_v3"],
                            }
                        ],
                    },
                },
            )
        while True:
            claims = custom.list_cluster_custom_object("karpenter.sh", "v1", "nodeclaims")["items"]
            ready = [
                c
                for c in claims
                if any(
                    x["type"] == "Ready" and x["status"] == "True"
                    for x in c.get("status", {}).get("conditions", [])
                )
            ]
            if len(ready) >= nodes:
                break
            time.sleep(0.5)  # a benchmark's progress poll, not a test wait
        print(f"  {nodes} NodeClaims Ready in {time.perf_counter() - start:.1f} s wall")
        node_names = [c["status"]["nodeName"] for c in ready if c["metadata"]["name"].startswith("bench-")]
        start = time.perf_counter()
        for i in range(pods):
            core.create_namespaced_pod(
                "bench",
                {
                    "metadata": {"name": f"p{i:04d}"},
                    "spec": {
                        "nodeName": node_names[i % len(node_names)],
                        "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}],
                        "tolerations": [{"operator": "Exists"}],
                    },
                },
            )
        print(f"  {pods} pods created in {time.perf_counter() - start:.1f} s wall")
        loaded = _latencies(core, node_names[0])
        rss = _rss_mb()
    names = ("GET node p50", "GET node p95", "LIST 50 pods p50", "LIST 50 pods p95")
    for name, idle, full in zip(names, base, loaded, strict=True):
        print(f"  {name:18s}: {full:6.2f} ms (idle lab {idle:6.2f} ms, ×{full / idle:.2f})")
    print(
        f"  memory (this process, sim in-process): {rss:.0f} MB (idle lab {base_rss:.0f} MB, ×{rss / base_rss:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--pods", type=int, default=2000)
    args = parser.parse_args()
    bench_decisions()
    bench_cluster(args.nodes, args.pods)


if __name__ == "__main__":
    main()
