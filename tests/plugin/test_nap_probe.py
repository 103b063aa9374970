"""A spot eviction under the GPU probe: the probe's wait ends naming the node, its SKU, capacity type spot, the
eviction and the fix, and the probe's cleanup leaves no pod, NodeClaim or node behind. And how the idle floor
reads a pod's `karpenter.sh/do-not-disrupt` (true, or a duration from the pod's start)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pytest_aksai._fixtures._nap import probe_template
from pytest_aksai.kube import (
    WaitAborted,
    _rest,
    cleanup_probe,
    connect,
    probe_manifest,
    read_nodepool,
    run_gpu_probe,
)
from pytest_aksai.kube._nap import _pod_pin
from pytest_aksai.sim import SimCluster

SPOT_POOL = "gpu-inference-spot"
BUDGETS = {"nominate": 180.0, "launch": 330.0, "register": 900.0, "initialize": 600.0, "run": 600.0}


def test_a_spot_eviction_mid_probe_is_reported_and_cleanup_leaves_nothing(tmp_path: Path) -> None:
    with SimCluster(faults=["nap-spot-eviction"], kubeconfig_path=tmp_path / "kc") as sim:
        cluster = connect(profile="sim", provider="sim", kubeconfig=sim.kubeconfig_path, context="aksai-sim")
        try:
            namespace = f"t-{uuid.uuid4().hex[:6]}"
            _rest.create(cluster._api, _rest.NAMESPACES, {"metadata": {"name": namespace}})
            pool = read_nodepool(cluster, SPOT_POOL)
            assert pool is not None
            name = "aksai-gpu-probe-t"
            manifest = probe_manifest(probe_template(), name, {"run": "t"}, None, SPOT_POOL, pool.taints)
            with pytest.raises(WaitAborted) as caught:
                run_gpu_probe(cluster, namespace, manifest, BUDGETS)
            message = caught.value.paragraph()
            for text in (
                "was evicted mid-run: Azure reclaimed the spot VM",
                "(Standard_NC4as_T4_v3, capacity type spot, NodePool gpu-inference-spot)",
                "because it does not exist in the cloud provider",
                "run the GPU probe and synchronous inference on an on-demand NodePool",
            ):
                assert text in message, message
            assert cleanup_probe(cluster, name, namespace, 60.0) == []
            assert _rest.get(cluster._api, _rest.PODS, name, namespace) is None
            selector = f"karpenter.sh/nodepool={SPOT_POOL}"
            assert _rest.items(cluster._api, _rest.NODECLAIMS, None, label_selector=selector) == []
            assert _rest.items(cluster._api, _rest.NODES, None, label_selector=selector) == []
        finally:
            cluster.close()


NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _pod(value: str, started: str | None = "2026-01-01T11:30:00Z") -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "annotations": {"karpenter.sh/do-not-disrupt": value}},
        "status": {"startTime": started} if started else {},
    }


@pytest.mark.parametrize(
    ("value", "started", "pin", "note"),
    [
        ("true", None, 'pod ns/p has karpenter.sh/do-not-disrupt: "true"', None),
        ("1h", None, 'pod ns/p has karpenter.sh/do-not-disrupt: "1h"', None),  # no start time yet: protected
        (
            "1h",
            "2026-01-01T11:30:00Z",
            'pod ns/p has karpenter.sh/do-not-disrupt: "1h" (until 2026-01-01T12:30:00Z, 1h after it started)',
            None,
        ),
        ("10m", "2026-01-01T11:30:00Z", None, 'do-not-disrupt: "10m" elapsed at 2026-01-01T11:40:00Z'),
        ("false", "2026-01-01T11:30:00Z", None, '"false" is ignored by Karpenter (failed to parse "false"'),
    ],
)
def test_the_idle_floor_reads_a_pods_do_not_disrupt_as_karpenter_does(
    value: str, started: str | None, pin: str | None, note: str | None
) -> None:
    got_pin, got_note = _pod_pin(_pod(value, started), NOW)
    assert got_pin == pin
    assert (got_note is None) if note is None else (note in (got_note or "")), got_note


LIFECYCLE = {
    "test_gpu_node_comes_for_a_pending_gpu_pod",
    "test_probe_ran_on_the_promised_gpu",
    "test_node_is_the_cheapest_fit",
    "test_empty_node_is_consolidated",
}


def test_on_a_live_profile_the_lifecycle_checks_skip_naming_the_knob(tmp_path: Path) -> None:
    """A running cluster (a kubeconfig profile) without `costly` and `disruptive` allowed: the GPU probe never
    starts, each lifecycle check skips naming the knob, the NodePool checks still run."""
    suite = Path(__file__).resolve().parents[2] / "suites" / "test_nap.py"
    with SimCluster(kubeconfig_path=tmp_path / "kc", time_scale=600) as sim:
        shutil.copy(suite, tmp_path / "test_nap.py")
        (tmp_path / "aksai.toml").write_text(
            f'[clusters.running]\nprovider = "aks"\nkubeconfig = "{sim.kubeconfig_path}"\n'
        )
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:randomly",
                "--aksai-report=report",
                "--aksai-cluster=running",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        checks = json.loads((tmp_path / "report" / "report.json").read_text())["checks"]
        api = connect(profile="sim", provider="sim", kubeconfig=sim.kubeconfig_path, context="aksai-sim")
        try:
            probes = _rest.items(
                api._api, _rest.PODS, None, label_selector="app.kubernetes.io/name=aksai-gpu-probe"
            )
        finally:
            api.close()
    by_name: dict[str, list[dict[str, Any]]] = {}
    for check in checks:
        by_name.setdefault(check["nodeid"].split("::")[-1].split("[")[0], []).append(check)
    assert set(by_name) >= LIFECYCLE, sorted(by_name)
    for name in LIFECYCLE:
        for check in by_name[name]:
            assert check["outcome"] == "skipped", (name, check)
            assert "allow" in check["message"] and (
                "costly" in check["message"] or "disruptive" in check["message"]
            )
    assert by_name["test_requirements_match_a_sku"][0]["outcome"] == "passed", run.stdout[-3000:]
    assert probes == [], "no probe was created"
