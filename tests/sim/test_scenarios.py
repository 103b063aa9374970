"""Scenarios: loading and validation, what the default lab looks like to a client, cluster time, start-up."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from pytest_aksai.sim import SimCluster
from pytest_aksai.sim._scenarios import ScenarioError, available_scenarios, load_scenario


@pytest.fixture(scope="module")
def api() -> Iterator[client.ApiClient]:
    with SimCluster() as sim:
        yield config.new_client_from_config(str(sim.kubeconfig_path))


def _node_ready(node: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


# ---- loading -------------------------------------------------------------------------------------------


def test_builtin_scenarios_load() -> None:
    assert {"default", "gpu"} <= set(available_scenarios())
    default = load_scenario("default")
    [pool] = default.node_pools
    assert (pool.name, pool.mode, pool.vm_size, pool.count) == ("system", "System", "Standard_D4ds_v5", 2)
    assert "inference" in default.namespaces
    assert default.addons == [
        "core",
        "metrics-server",
        "kaito",
        "vllm",
        "karpenter",
        "azure",
        "prometheus",
        "keda",
        "keda-http-add-on",
    ]
    gpu = load_scenario("gpu")
    assert [p.name for p in gpu.node_pools] == ["system", "gpu"]
    assert gpu.node_pools[1].taints == ["sku=gpu:NoSchedule"]
    assert gpu.addons == default.addons


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("nodePools: [{name: sys, vmSize: Standard_D4ds_v5, count: 1, colour: red}]", "nodePools.0.colour"),
        ("nodePools: [{name: sys, vmSize: Standard_X9, count: 1}]", "unknown VM size 'Standard_X9'"),
        (
            "nodePools: [{name: sys, vmSize: Standard_D4ds_v5, count: 1, taints: [gpu]}]",
            "is not `key=value:Effect`",
        ),
        (
            "addons: [istio]",
            "unknown add-on(s) 'istio' in the scenario's `addons` list; registered add-ons: core,",
        ),
        ("extends: nope", "unknown scenario 'nope'"),
        ("- just a list", "a scenario is a YAML mapping"),
    ],
)
def test_bad_scenarios_are_refused_with_the_key_and_the_fix(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path))
    assert needle in str(info.value)


def test_unknown_scenario_names_list_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="built-in scenarios: aks-ai-lab, default, gpu"):
        load_scenario("prod")
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenario(str(tmp_path / "missing.yaml"))
    loop = tmp_path / "loop.yaml"
    loop.write_text(f"extends: {loop}\n")
    with pytest.raises(ScenarioError, match="extends itself"):
        load_scenario(str(loop))


# ---- the default lab through the API -------------------------------------------------------------------


def test_default_lab_has_an_aks_system_pool(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    nodes = core.list_node().items
    assert len(nodes) == 2
    for index, node in enumerate(sorted(nodes, key=lambda n: n.metadata.name)):
        labels = node.metadata.labels
        assert node.metadata.name.startswith("aks-system-") and node.metadata.name.endswith(
            f"-vmss00000{index}"
        )
        assert labels["kubernetes.azure.com/agentpool"] == labels["agentpool"] == "system"
        assert labels["kubernetes.azure.com/mode"] == "system"
        assert labels["node.kubernetes.io/instance-type"] == "Standard_D4ds_v5"
        assert labels["topology.kubernetes.io/region"] == "eastus2"
        assert labels["topology.kubernetes.io/zone"] == f"eastus2-{index + 1}"
        assert (labels["kubernetes.io/os"], labels["kubernetes.io/arch"]) == ("linux", "amd64")
        assert labels["kubernetes.azure.com/cluster"] == "MC_rg-aksai-lab_aksai-lab_eastus2"
        assert labels["kubernetes.azure.com/node-image-version"].startswith("AKSUbuntu-2204gen2containerd-")
        assert node.status.capacity["cpu"] == "4" and node.status.capacity["pods"] == "110"
        assert node.status.allocatable["cpu"] == "3860m"
        assert node.status.node_info.kubelet_version == "v1.30.6"
        assert node.spec.provider_id.startswith("azure:///subscriptions/")
        assert _node_ready(node)


def test_default_lab_namespaces_and_addons(api: client.ApiClient, watch_until: Callable[..., Any]) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    names = {ns.metadata.name for ns in core.list_namespace().items}
    assert {"inference", "kube-system", "kube-node-lease", "default"} <= names
    sim = core.read_namespaced_config_map("aksai-sim", "kube-system").data
    assert sim["addons"] == "core,metrics-server,kaito,vllm,karpenter,azure,prometheus,keda,keda-http-add-on"
    for deployment in ("kaito-workspace", "coredns", "metrics-server"):
        available = watch_until(
            apps.list_namespaced_deployment,
            lambda d, n=deployment: (
                d.metadata.name == n
                and any(c.type == "Available" and c.status == "True" for c in d.status.conditions or [])
            ),
            f"{deployment} to be Available",
            namespace="kube-system",
        )
        assert available.status.ready_replicas == available.spec.replicas
    assert core.read_namespaced_service("metrics-server", "kube-system").spec.ports[0].port == 4443
    # Not-yet-implemented add-ons run no pods that pretend to be them.
    deployments = {d.metadata.name for d in apps.list_deployment_for_all_namespaces().items}
    assert "azure-wi-webhook-controller-manager" in deployments  # the AKS Workload Identity add-on
    assert {"keda-operator", "keda-add-ons-http-interceptor", "prometheus-server"} <= deployments


def test_timestamps_advance_at_the_advertised_time_scale(
    api: client.ApiClient, watch_until: Callable[..., Any]
) -> None:
    core = client.CoreV1Api(api)
    leases = client.CoordinationV1Api(api)
    scale = float(core.read_namespaced_config_map("aksai-sim", "kube-system").data["timeScale"])
    node = core.list_node().items[0].metadata.name
    first = leases.read_namespaced_lease(node, "kube-node-lease").spec.renew_time
    wall_first = time.monotonic()
    # the lease is renewed every 10 cluster seconds: wait for one at least 90 cluster seconds later
    later = watch_until(
        leases.list_namespaced_lease,
        lambda lease: lease.metadata.name == node and (lease.spec.renew_time - first).total_seconds() >= 90,
        "90 cluster seconds of renewals",
        namespace="kube-node-lease",
    )
    wall = time.monotonic() - wall_first
    cluster = (later.spec.renew_time - first).total_seconds()
    assert 0.6 * scale <= cluster / wall <= 1.3 * scale
    created = core.create_namespaced_config_map("default", {"metadata": {"generateName": "clock-"}})
    assert (
        abs((created.metadata.creation_timestamp - later.spec.renew_time).total_seconds()) <= 0.2 * scale + 11
    )
    # cluster time started far enough back to stay behind the wall clock (kubectl describe: no `<invalid>`)
    assert created.metadata.creation_timestamp < datetime.now(created.metadata.creation_timestamp.tzinfo)


def test_scenario_file_with_extra_nodes_and_objects(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text("""
extends: default
nodePools:
  - {name: gpu, vmSize: Standard_NC24ads_A100_v4, count: 1, zones: ["3"], taints: ["nvidia.com/gpu=true:NoSchedule"]}
objects:
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: lab-settings, namespace: inference}
    data: {model: phi-4-mini-instruct}
""")
    with SimCluster(scenario=str(path)) as sim:
        core = client.CoreV1Api(config.new_client_from_config(str(sim.kubeconfig_path)))
        [gpu] = core.list_node(label_selector="kubernetes.azure.com/agentpool=gpu").items
        assert gpu.status.allocatable["nvidia.com/gpu"] == "1"
        assert gpu.metadata.labels["nvidia.com/gpu.product"] == "NVIDIA-A100-80GB-PCIe"
        assert gpu.metadata.labels["kubernetes.azure.com/mode"] == "user"
        assert [(t.key, t.value, t.effect) for t in gpu.spec.taints] == [
            ("nvidia.com/gpu", "true", "NoSchedule")
        ]
        assert core.read_namespaced_config_map("lab-settings", "inference").data == {
            "model": "phi-4-mini-instruct"
        }
