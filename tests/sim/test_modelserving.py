"""The NodeClaim provisioner and the model-serving controller through the official client, and the pure
pieces they are built from (preset table, command parsing, load time)."""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime
from typing import Any

import pytest
from kubernetes import client
from test_kaito_controller import T4_SKU, Kube, wait_for, wait_gone

from pytest_aksai.sim._addons.kaito import _presets as presets
from pytest_aksai.sim._addons.kaito._controller import statefulset_manifest
from pytest_aksai.sim._addons.karpenter._provisioner import node_labels
from pytest_aksai.sim._addons.vllm._controller import HTTP_PORT_ANNOTATION, inference_argv, preset_of
from pytest_aksai.sizing import model_spec


def _claim(name: str, instance_type: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodeClaim",
        "metadata": {"name": name, "labels": {"karpenter.sh/nodepool": "gpu", **labels}},
        "spec": {
            "nodeClassRef": {"group": "karpenter.azure.com", "kind": "AKSNodeClass", "name": "default"},
            "taints": [{"key": "sku", "value": "gpu", "effect": "NoSchedule"}],
            "requirements": [
                {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [instance_type]}
            ],
        },
    }


def _claim_named(kube: Kube, name: str) -> Any:
    def list_fn(**kw: Any) -> Any:
        return kube.custom.list_cluster_custom_object(
            "karpenter.sh", "v1", "nodeclaims", field_selector=f"metadata.name={name}", **kw
        )

    return list_fn


@pytest.fixture(scope="module")
def kube(api: client.ApiClient) -> Kube:
    return Kube(api)


def _stamp(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))


# ---- pure pieces ---------------------------------------------------------------------------------------
def test_preset_table_comes_from_the_sizing_catalog() -> None:
    entry = presets.preset("phi-4-mini-instruct")
    spec = model_spec("phi-4-mini-instruct")
    assert (entry.hf_id, entry.weights_bytes, entry.token_limit) == (
        spec.hf_id,
        spec.weights_bytes,
        spec.max_context,
    )
    assert presets.preset("mistral-7b-instruct").served_name == "mistral-7b-instruct-v0.3"
    served = presets.served_model(entry)
    assert (
        served.kv_bytes_per_token == spec.kv_bytes_per_token and served.served_name == "phi-4-mini-instruct"
    )
    with pytest.raises(presets.UnknownPresetError, match="phi-4-mini-instruct"):
        presets.preset("no-such-model")


def test_load_time_grows_with_the_weights() -> None:
    small, large = presets.preset("phi-4-mini-instruct"), presets.preset("phi-4")
    assert presets.load_seconds(small) > presets.ENGINE_START_SECONDS
    assert presets.load_seconds(large) > presets.load_seconds(small)
    weights_part = presets.load_seconds(large) - presets.ENGINE_START_SECONDS
    assert weights_part == pytest.approx(
        large.weights_bytes * (1 / presets.HF_DOWNLOAD_BYTES_PER_S + 1 / presets.GPU_LOAD_BYTES_PER_S)
    )


def test_the_statefulset_command_is_recognised_as_a_vllm_process() -> None:
    ws = {
        "metadata": {"name": "w", "namespace": "n", "uid": "u"},
        "resource": {},
        "inference": {"config": "c"},
    }
    entry = presets.preset("phi-3.5-mini-instruct")
    container = statefulset_manifest(ws, entry, 2, "1")["spec"]["template"]["spec"]["containers"][0]
    argv = inference_argv(container)
    assert argv is not None and preset_of(argv) == entry
    assert (
        "--tensor-parallel-size=2" in argv and "--kaito-config-file=/mnt/config/inference_config.yaml" in argv
    )
    assert inference_argv({"command": ["python3", "server.py"]}) is None


def test_invalid_vllm_values_are_rejected_with_the_flag_named() -> None:
    entry = presets.preset("phi-4-mini-instruct")
    with pytest.raises(presets.InferenceConfigError, match="gpu-memory-utilization"):
        presets.engine_config({"gpu-memory-utilization": 1.5}, entry)
    with pytest.raises(presets.InferenceConfigError, match="must be an integer"):
        presets.engine_config({"max-model-len": "lots"}, entry)
    cm = {"data": {"inference_config.yaml": "vllm: [1, 2]\n"}}
    with pytest.raises(presets.InferenceConfigError, match="must be a map"):
        presets.parse_inference_config(cm, "c", "n")


def test_node_labels_of_a_gpu_sku() -> None:
    labels = node_labels(T4_SKU, "aks-x-00000000-vmss000000", {"metadata": {"labels": {"apps": "a"}}})
    assert labels["karpenter.azure.com/sku-gpu-count"] == "1"
    assert labels["karpenter.azure.com/sku-family"] == "N"
    assert labels["nvidia.com/gpu.product"] == "Tesla-T4"
    assert labels["apps"] == "a"


# ---- the provisioner -----------------------------------------------------------------------------------
def test_nodeclaim_becomes_a_ready_gpu_node_and_deleting_it_removes_the_node(kube: Kube) -> None:
    name = "claim-provision"
    kube.custom.create_cluster_custom_object(
        "karpenter.sh", "v1", "nodeclaims", _claim(name, T4_SKU, {"team": "ml"})
    )
    claim = wait_for(
        _claim_named(kube, name),
        lambda c: any(
            x["type"] == "Ready" and x["status"] == "True"
            for x in (c.get("status") or {}).get("conditions") or []
        ),
        f"NodeClaim {name} to be Ready",
    )
    status = claim["status"]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Launched": "True",
        "Registered": "True",
        "Initialized": "True",
        "Ready": "True",
    }
    assert status["capacity"]["nvidia.com/gpu"] == "1"
    node = kube.core.read_node(status["nodeName"])
    assert node.spec.provider_id == status["providerID"]
    labels = node.metadata.labels
    assert labels["karpenter.sh/nodepool"] == "gpu" and labels["team"] == "ml"
    assert labels["karpenter.sh/registered"] == "true" and labels["karpenter.sh/initialized"] == "true"
    assert (
        labels["karpenter.azure.com/sku-name"] == T4_SKU
        and labels["karpenter.azure.com/sku-gpu-name"] == "T4"
    )
    assert any(t.key == "sku" and t.value == "gpu" for t in node.spec.taints)
    created = _stamp(claim["metadata"]["creationTimestamp"])
    registered = next(c for c in status["conditions"] if c["type"] == "Registered")
    assert (_stamp(registered["lastTransitionTime"]) - created).total_seconds() >= 150

    kube.custom.delete_cluster_custom_object("karpenter.sh", "v1", "nodeclaims", name)
    wait_gone(_claim_named(kube, name), f"NodeClaim {name}")
    wait_gone(
        kube.core.list_node,
        f"node {status['nodeName']}",
        field_selector=f"metadata.name={status['nodeName']}",
    )


def test_nodeclaim_of_an_unknown_size_is_deleted_for_insufficient_capacity(kube: Kube) -> None:
    """As upstream: no offering for the claim is an InsufficientCapacityError, which deletes the NodeClaim."""
    name = "claim-unknown"
    kube.custom.create_cluster_custom_object(
        "karpenter.sh", "v1", "nodeclaims", _claim(name, "Standard_Z9_v9", {})
    )
    wait_gone(_claim_named(kube, name), f"NodeClaim {name}")
    events = kube.core.list_namespaced_event("default", field_selector=f"involvedObject.name={name}").items
    messages = [e.message for e in events if e.reason == "InsufficientCapacityError"]
    assert messages and "Standard_Z9_v9" in messages[0], messages


# ---- model serving -------------------------------------------------------------------------------------
def test_a_vllm_pod_serves_after_loading_and_stops_with_the_pod(kube: Kube, ns: str) -> None:
    claim_name = f"claim-{ns}"
    kube.custom.create_cluster_custom_object(
        "karpenter.sh", "v1", "nodeclaims", _claim(claim_name, T4_SKU, {"serve": ns})
    )
    try:
        entry = presets.preset("phi-4-mini-instruct")
        command = presets.inference_command(entry, 1, with_config=False)
        command[-1] = command[-1].replace(
            "--served-model-name=phi-4-mini-instruct", "--served-model-name=phi4"
        )
        kube.core.create_namespaced_pod(
            ns,
            {
                "metadata": {"name": "vllm"},
                "spec": {
                    "nodeSelector": {"serve": ns},
                    "tolerations": [
                        {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
                    ],
                    "containers": [
                        {
                            "name": "vllm",
                            "image": presets.KAITO_BASE_IMAGE,
                            "command": command,
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                        }
                    ],
                },
            },
        )
        pod = wait_for(
            kube.core.list_namespaced_pod,
            lambda p: HTTP_PORT_ANNOTATION in (p.metadata.annotations or {}),
            "the model server of pod vllm to be up",
            namespace=ns,
        )
        started = pod.status.container_statuses[0].state.running.started_at
        events = kube.core.list_namespaced_event(
            ns, field_selector="involvedObject.name=vllm,reason=ModelServing"
        )
        assert events.items, "no ModelServing event"
        serving_since = _stamp(events.items[0].first_timestamp or events.items[0].event_time)
        assert (serving_since - _stamp(started)).total_seconds() >= presets.load_seconds(entry) - 1

        response = kube.core.connect_get_namespaced_pod_proxy_with_path(
            "vllm:5000", ns, "v1/models", _preload_content=False
        )
        models = json.loads(response.data)["data"]
        assert [m["id"] for m in models] == ["phi4"]
        # No inference ConfigMap: KAITO's max-model-len=auto picks the largest context that fits one T4.
        assert 0 < models[0]["max_model_len"] < entry.token_limit

        port = int(pod.metadata.annotations[HTTP_PORT_ANNOTATION])
        kube.core.delete_namespaced_pod("vllm", ns, grace_period_seconds=0)
        wait_gone(kube.core.list_namespaced_pod, "pod vllm", namespace=ns)
        deadline = time.monotonic() + 10
        while _port_open(port):
            assert time.monotonic() < deadline, (
                f"the model server on port {port} still answers after its pod is gone"
            )
    finally:
        kube.custom.delete_cluster_custom_object("karpenter.sh", "v1", "nodeclaims", claim_name)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
