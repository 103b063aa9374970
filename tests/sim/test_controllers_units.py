"""Store-independent parts of the sim's controllers: scheduling filters and message, quantities, simulated
commands (nvidia-smi), the work queue."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from pytest_aksai.sim._clock import VirtualClock
from pytest_aksai.sim._core import _commands
from pytest_aksai.sim._core._framework import WorkQueue
from pytest_aksai.sim._core._predicates import (
    NO_NODES_MESSAGE,
    filter_node,
    fit_error_message,
    matches_node_affinity,
    tolerates,
)
from pytest_aksai.sim._core._resources import pod_requests
from pytest_aksai.sim._scenarios._vmsizes import VM_SIZES, capacity_and_allocatable, kube_reserved_cpu_millis


def _node(
    name: str,
    *,
    cpu: str = "3860m",
    memory: str = "12Gi",
    pods: str = "110",
    gpu: str | None = None,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    allocatable = {"cpu": cpu, "memory": memory, "pods": pods}
    if gpu is not None:
        allocatable["nvidia.com/gpu"] = gpu
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": taints or []},
        "status": {"allocatable": allocatable},
    }


def _pod(requests: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    container = {"name": "c", "image": "busybox", "resources": {"requests": requests or {}}}
    return {"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [container], **spec}}


GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}


def test_fit_error_message_has_the_kube_scheduler_shape() -> None:
    nodes = [_node("a"), _node("b"), _node("gpu", gpu="1", taints=[GPU_TAINT])]
    pod = _pod({"nvidia.com/gpu": "1"})
    verdicts = [filter_node(pod, n, []) for n in nodes]
    assert fit_error_message(verdicts) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {nvidia.com/gpu: true}, "
        "2 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: "
        "1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
    )


def test_filters_stop_at_the_first_failing_plugin_and_resources_report_every_shortage() -> None:
    full = [_pod({"cpu": "3"}) for _ in range(1)]
    verdict = filter_node(_pod({"cpu": "1", "memory": "13Gi"}), _node("a"), full)
    assert verdict.reasons == ["Insufficient cpu", "Insufficient memory"]
    tainted = filter_node(_pod({"cpu": "100"}), _node("t", taints=[GPU_TAINT]), [])
    assert tainted.reasons == ["node(s) had untolerated taint {nvidia.com/gpu: true}"]
    assert not tainted.resolvable
    many = filter_node(_pod(), _node("a", pods="2"), [_pod(), _pod()])
    assert many.reasons == ["Too many pods"]
    cordoned = _node("c")
    cordoned["spec"]["unschedulable"] = True
    assert filter_node(_pod(), cordoned, []).reasons == ["node(s) were unschedulable"]
    assert fit_error_message([]) == NO_NODES_MESSAGE


def test_tolerations_follow_operator_and_effect_rules() -> None:
    assert tolerates([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}], GPU_TAINT)
    assert tolerates([{"key": "nvidia.com/gpu", "value": "true"}], GPU_TAINT)
    assert tolerates([{"operator": "Exists"}], GPU_TAINT)
    assert not tolerates([{"key": "nvidia.com/gpu", "value": "false"}], GPU_TAINT)
    assert not tolerates([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}], GPU_TAINT)


def test_node_selector_and_required_affinity() -> None:
    node = _node("a", labels={"agentpool": "gpu", "karpenter.azure.com/sku-gpu-count": "2"})
    assert matches_node_affinity(_pod(nodeSelector={"agentpool": "gpu"}), node)
    assert not matches_node_affinity(_pod(nodeSelector={"agentpool": "system"}), node)

    def affinity(*terms: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": t} for t in terms]
                }
            }
        }

    gt = {"key": "karpenter.azure.com/sku-gpu-count", "operator": "Gt", "values": ["1"]}
    not_in = {"key": "agentpool", "operator": "NotIn", "values": ["gpu"]}
    assert matches_node_affinity(_pod(affinity=affinity([gt])), node)
    assert not matches_node_affinity(_pod(affinity=affinity([gt, not_in])), node)
    assert matches_node_affinity(_pod(affinity=affinity([not_in], [gt])), node)
    reasons = filter_node(_pod(affinity=affinity([not_in])), node, []).reasons
    assert reasons == ["node(s) didn't match Pod's node affinity/selector"]


def test_pod_requests_count_init_containers_sidecars_and_limits_only() -> None:
    pod = {
        "spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "250m"}}},
                {"name": "b", "resources": {"limits": {"nvidia.com/gpu": "1", "memory": "1Gi"}}},
            ],
            "initContainers": [
                {"name": "init", "resources": {"requests": {"cpu": "2"}}},
                {"name": "sidecar", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
            ],
        }
    }
    requests = pod_requests(pod)
    assert requests["cpu"] == Decimal("2.1")  # the init container, plus the sidecar started before it
    assert requests["nvidia.com/gpu"] == 1
    assert requests["memory"] == 1024**3


def test_d4ds_v5_allocatable_follows_the_aks_reservations() -> None:
    capacity, allocatable = capacity_and_allocatable(VM_SIZES["Standard_D4ds_v5"])
    assert capacity["cpu"] == "4"
    assert capacity["pods"] == allocatable["pods"] == "110"
    assert allocatable["cpu"] == "3860m"
    reserved_ki = int(capacity["memory"][:-2]) - int(allocatable["memory"][:-2])
    assert reserved_ki == (20 * 110 + 50 + 100) * 1024
    assert [kube_reserved_cpu_millis(c) for c in (1, 2, 4, 8, 16, 32, 64)] == [
        60,
        100,
        140,
        180,
        260,
        420,
        740,
    ]
    assert "nvidia.com/gpu" not in capacity
    gpu_capacity, _ = capacity_and_allocatable(VM_SIZES["Standard_NC12s_v3"])
    assert gpu_capacity["nvidia.com/gpu"] == "2"


NOW = datetime(2026, 11, 28, 4, 12, tzinfo=UTC)


def _run(argv: list[str], labels: dict[str, str], gpus: int = 1) -> _commands.CommandResult:
    container = {
        "name": "c",
        "image": "ubuntu",
        "command": argv[:1],
        "args": argv[1:],
        "resources": {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {},
    }
    return _commands.run({}, container, {"metadata": {"name": "n", "labels": labels}}, NOW)


@pytest.mark.parametrize(
    ("labels", "model"),
    [
        ({"karpenter.azure.com/sku-gpu-name": "T4"}, "Tesla T4"),
        ({"nvidia.com/gpu.product": "NVIDIA-A100-80GB-PCIe"}, "NVIDIA A100 80GB PCIe"),
        ({"node.kubernetes.io/instance-type": "Standard_NC40ads_H100_v5"}, "NVIDIA H100 NVL"),
    ],
)
def test_nvidia_smi_prints_the_table_for_the_nodes_gpu(labels: dict[str, str], model: str) -> None:
    result = _run(
        ["nvidia-smi"],
        {
            **labels,
            "nvidia.com/cuda.driver.major": "535",
            "nvidia.com/cuda.driver.minor": "161",
            "nvidia.com/cuda.driver.rev": "08",
            "nvidia.com/cuda.runtime.major": "12",
            "nvidia.com/cuda.runtime.minor": "2",
        },
    )
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith("Sat Nov 28 04:12:00 2026")
    assert {len(line) for line in lines[1:]} == {91}
    assert "NVIDIA-SMI 535.161.08" in lines[2] and "Driver Version: 535.161.08" in lines[2]
    assert "CUDA Version: 12.2" in lines[2]
    assert f"|   0  {model} " in result.output
    assert "No running processes found" in result.output


def test_nvidia_smi_without_a_gpu_fails_like_the_real_one() -> None:
    no_driver = _run(["nvidia-smi"], {"node.kubernetes.io/instance-type": "Standard_D4ds_v5"})
    assert no_driver.exit_code == 9
    assert "couldn't communicate with the NVIDIA driver" in no_driver.output
    no_device = _run(["nvidia-smi"], {"karpenter.azure.com/sku-gpu-name": "T4"}, gpus=0)
    assert (no_device.exit_code, no_device.output) == (6, "No devices were found\n")
    listing = _run(["nvidia-smi", "-L"], {"karpenter.azure.com/sku-gpu-name": "V100"}, gpus=2)
    assert listing.output.count("Tesla V100-PCIE-16GB") == 2
    query = _run(
        ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
        {"karpenter.azure.com/sku-gpu-name": "T4"},
    )
    assert query.output == "Tesla T4, 15360 MiB\n"


def test_shell_scripts_run_simple_commands_in_order() -> None:
    def sh(script: str) -> _commands.CommandResult:
        return _run(["sh", "-c", script], {}, gpus=0)

    assert (sh("echo hi && false; echo next").output, sh("echo a && false; echo b").exit_code) == (
        "hi\nnext\n",
        0,
    )
    assert sh("false && echo never").output == ""
    assert sh("echo bye; exit 3").exit_code == 3
    assert sh("sleep 30").duration == 30
    assert sh("some-server --port 80").exit_code is None  # unknown: a long-lived process
    assert _run([], {}, gpus=0).exit_code is None  # the image's entrypoint, unknown: long-lived


def test_registered_image_entrypoints_win_for_containers_without_command() -> None:
    _commands.register_image("example.test/batch", lambda ctx: _commands.CommandResult("done\n", 0, 5.0))
    container = {"name": "c", "image": "example.test/batch:1"}
    result = _commands.run({}, container, {"metadata": {"name": "n"}}, NOW)
    assert (result.output, result.exit_code) == ("done\n", 0)


def test_work_queue_deduplicates_and_requeues_after_cluster_seconds() -> None:
    async def scenario() -> tuple[list[str], float]:
        queue = WorkQueue(VirtualClock(600.0))
        queue.add("a")
        queue.add("a")
        queue.add("b")
        first = [await queue.get(), await queue.get()]
        assert len(queue) == 0
        queue.add("a")  # while "a" is processing: runs again after done()
        queue.done("a")
        queue.done("b")
        first.append(await queue.get())
        queue.done("a")
        started = time.monotonic()
        queue.add_after("c", 60.0)  # 60 cluster seconds = 0.1 wall seconds at 600x
        queue.add_after("c", 120.0)  # a later timer does not replace an earlier one
        first.append(await asyncio.wait_for(queue.get(), 2.0))
        return first, time.monotonic() - started

    keys, waited = asyncio.run(scenario())
    assert keys == ["a", "b", "a", "c"]
    assert 0.08 <= waited < 1.0
