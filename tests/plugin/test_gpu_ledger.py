"""The report's GPU node-minutes: which nodes count as GPU nodes, and how long each is counted."""

from __future__ import annotations

from typing import Any

from pytest_aksai.kube import GpuNodeLedger
from pytest_aksai.kube._ledger import gpu_count


def _node(name: str, *, gpus: str | None = None, label_gpus: str | None = None, spot: bool = False) -> Any:
    labels = {"node.kubernetes.io/instance-type": "Standard_NC4as_T4_v3"}
    if label_gpus is not None:
        labels["karpenter.azure.com/sku-gpu-count"] = label_gpus
    if spot:
        labels["karpenter.sh/capacity-type"] = "spot"
    status = {"capacity": {"nvidia.com/gpu": gpus}} if gpus is not None else {}
    return {"metadata": {"name": name, "labels": labels}, "status": status}


def test_a_node_is_a_gpu_node_by_its_capacity_or_before_that_by_its_sku_label() -> None:
    assert gpu_count(_node("a", gpus="1")) == 1
    assert gpu_count(_node("b", label_gpus="4")) == 4, (
        "still registering: the device plugin has not advertised"
    )
    assert gpu_count(_node("c")) == 0
    assert gpu_count(_node("d", gpus="0", label_gpus="0")) == 0


def test_each_node_counts_from_when_it_was_seen_until_it_went_or_the_run_ended() -> None:
    now = [100.0]
    ledger = GpuNodeLedger(cluster=None, clock=lambda: now[0])  # type: ignore[arg-type]
    ledger._observe("ADDED", _node("gpu-1", gpus="1"))
    ledger._observe("ADDED", _node("cpu-1"))
    now[0] = 130.0
    ledger._observe("ADDED", _node("gpu-2", label_gpus="1", spot=True))
    ledger._observe("MODIFIED", _node("gpu-2", gpus="1", spot=True))
    now[0] = 160.0
    ledger._observe("DELETED", _node("gpu-1", gpus="1"))
    now[0] = 190.0
    ledger._observe("ADDED", _node("gpu-1", gpus="1"))  # the same name again: a new VM
    now[0] = 220.0
    uses = ledger.stop()
    ledger._observe("DELETED", _node("gpu-2", gpus="1"))  # after the run: ignored
    minutes = sorted((u.name, u.capacity_type, round(u.cluster_minutes(ledger.end, 60.0), 1)) for u in uses)
    assert minutes == [("gpu-1", "on-demand", 30.0), ("gpu-1", "on-demand", 60.0), ("gpu-2", "spot", 90.0)]
