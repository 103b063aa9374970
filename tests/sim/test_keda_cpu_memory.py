"""KEDA's `cpu` and `memory` triggers on the sim: the admission webhook's rules, the Resource and
ContainerResource metrics of the generated HPA, and the HPA controller scaling 1 -> N on metrics.k8s.io usage."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import kubernetes
import pytest

from pytest_aksai.sim import SimCluster

KEDA = ("keda.sh", "v1alpha1")
KUBECTL = shutil.which("kubectl")


def _deployment(name: str, *, command: list[str], requests: dict[str, str] | None) -> dict[str, Any]:
    resources: dict[str, Any] = {"limits": {"cpu": "200m"}}
    if requests is not None:
        resources = {"requests": requests, "limits": {"cpu": "200m"}}
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "work",
                            "image": "polinux/stress",
                            "command": command,
                            "resources": resources,
                        }
                    ]
                },
            },
        },
    }


def _scaled_object(name: str, triggers: list[dict[str, Any]], *, min_replicas: int | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"name": name},
        "maxReplicaCount": 4,
        "pollingInterval": 5,
        "triggers": triggers,
    }
    if min_replicas is not None:
        spec["minReplicaCount"] = min_replicas
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name},
        "spec": spec,
    }


def _cpu(value: str, metric_type: str = "Utilization", **metadata: str) -> dict[str, Any]:
    return {"type": "cpu", "metricType": metric_type, "metadata": {"value": value, **metadata}}


def _denial(excinfo: pytest.ExceptionInfo[kubernetes.client.ApiException]) -> str:
    assert excinfo.value.status == 403
    return str(json.loads(excinfo.value.body)["message"])


def test_the_webhook_refuses_what_keda_refuses(api, ns):
    apps = kubernetes.client.AppsV1Api(api)
    custom = kubernetes.client.CustomObjectsApi(api)
    apps.create_namespaced_deployment(ns, _deployment("bare", command=["sleep", "3600"], requests=None))
    apps.create_namespaced_deployment(
        ns, _deployment("sized", command=["sleep", "3600"], requests={"cpu": "100m"})
    )
    with pytest.raises(kubernetes.client.ApiException) as zero:
        custom.create_namespaced_custom_object(
            *KEDA, ns, "scaledobjects", _scaled_object("sized", [_cpu("50")], min_replicas=0)
        )
    assert _denial(zero) == (
        'admission webhook "vscaledobject.kb.io" denied the request: scaledobject has only cpu/memory triggers '
        "AND minReplica is 0 (scale to zero doesn't work in this case)"
    )
    memory = {"type": "memory", "metricType": "AverageValue", "metadata": {"value": "64Mi"}}
    with pytest.raises(kubernetes.client.ApiException) as no_request:
        custom.create_namespaced_custom_object(
            *KEDA, ns, "scaledobjects", _scaled_object("sized", [memory], min_replicas=1)
        )
    assert _denial(no_request).endswith(
        "the scaledobject has a memory trigger but the container work doesn't have the memory request defined"
    )
    # A limit counts as set (the API server defaults the request from it): `bare` limits its CPU.
    custom.create_namespaced_custom_object(
        *KEDA, ns, "scaledobjects", _scaled_object("bare", [_cpu("50")], min_replicas=1)
    )


def test_the_generated_hpa_has_resource_metrics_as_keda_writes_them(api, ns, watch_until):
    apps = kubernetes.client.AppsV1Api(api)
    custom = kubernetes.client.CustomObjectsApi(api)
    autoscaling = kubernetes.client.AutoscalingV2Api(api)
    apps.create_namespaced_deployment(
        ns, _deployment("idle", command=["sleep", "3600"], requests={"cpu": "100m", "memory": "64Mi"})
    )
    memory = {"type": "memory", "metricType": "AverageValue", "metadata": {"value": "48Mi"}}
    custom.create_namespaced_custom_object(
        *KEDA,
        ns,
        "scaledobjects",
        _scaled_object("idle", [_cpu("50", containerName="work"), memory], min_replicas=1),
    )
    hpa = watch_until(
        autoscaling.list_namespaced_horizontal_pod_autoscaler,
        lambda h: h.metadata.name == "keda-hpa-idle",
        "the generated HPA",
        namespace=ns,
    )
    cpu_metric, memory_metric = hpa.spec.metrics
    assert cpu_metric.type == "ContainerResource"
    assert (cpu_metric.container_resource.name, cpu_metric.container_resource.container) == ("cpu", "work")
    assert cpu_metric.container_resource.target.type == "Utilization"
    assert cpu_metric.container_resource.target.average_utilization == 50
    assert memory_metric.type == "Resource" and memory_metric.resource.name == "memory"
    assert (memory_metric.resource.target.type, memory_metric.resource.target.average_value) == (
        "AverageValue",
        "48Mi",
    )
    so = watch_until(
        lambda **kw: custom.list_namespaced_custom_object(*KEDA, ns, "scaledobjects", **kw),
        lambda s: any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (s.get("status") or {}).get("conditions") or []
        ),
        "the ScaledObject to be Ready",
    )
    assert so["status"]["resourceMetricNames"] == ["cpu", "memory"]
    assert so["status"].get("externalMetricNames") == []
    # Only cpu/memory triggers: always active, as KEDA's scale handler says.
    assert any(c["type"] == "Active" and c["status"] == "True" for c in so["status"]["conditions"])


def test_cpu_load_scales_one_to_n(api, ns, watch_until):
    """`stress --cpu 1` under a 200m limit uses 200 % of its 100m request; at a 50 % target the HPA wants
    ceil(1 × 200 / 50) = 4, which the default scale-up policy (max(4 pods, 100 %) per 15 s) allows at once."""
    apps = kubernetes.client.AppsV1Api(api)
    custom = kubernetes.client.CustomObjectsApi(api)
    autoscaling = kubernetes.client.AutoscalingV2Api(api)
    apps.create_namespaced_deployment(
        ns, _deployment("busy", command=["stress", "--cpu", "1"], requests={"cpu": "100m"})
    )
    custom.create_namespaced_custom_object(
        *KEDA, ns, "scaledobjects", _scaled_object("busy", [_cpu("50")], min_replicas=1)
    )
    scaled = watch_until(
        apps.list_namespaced_deployment,
        lambda d: d.metadata.name == "busy" and (d.spec.replicas or 0) == 4,
        "busy to scale 1 -> 4",
        timeout=30,
        namespace=ns,
    )
    assert scaled.spec.replicas == 4
    hpa = autoscaling.read_namespaced_horizontal_pod_autoscaler("keda-hpa-busy", ns)
    [current] = [m for m in hpa.status.current_metrics or [] if m.type == "Resource"]
    assert current.resource.name == "cpu" and current.resource.current.average_utilization == 200
    assert current.resource.current.average_value == "200m"
    active = next(c for c in hpa.status.conditions if c.type == "ScalingActive")
    assert (active.status, active.reason) == ("True", "ValidMetricFound")
    assert active.message == (
        "the HPA was able to successfully calculate a replica count from cpu resource utilization "
        "(percentage of request)"
    )
    events = kubernetes.client.CoreV1Api(api).list_namespaced_event(
        ns, field_selector="involvedObject.name=keda-hpa-busy,reason=SuccessfulRescale"
    )
    assert any(
        e.message == "New size: 4; reason: cpu resource utilization (percentage of request) above target"
        for e in events.items
    ), [e.message for e in events.items]


def test_a_plain_hpa_without_requests_says_what_upstream_says(sim: SimCluster, api, ns, watch_until):
    """Any HPA (here `kubectl autoscale`'s, else one made with the client) reads the same metrics."""
    apps = kubernetes.client.AppsV1Api(api)
    autoscaling = kubernetes.client.AutoscalingV2Api(api)
    apps.create_namespaced_deployment(ns, _deployment("norequest", command=["sleep", "3600"], requests=None))
    # Requests defaulted from the limit exist for CPU; memory has neither, so a memory target cannot work.
    hpa = {
        "metadata": {"name": "norequest"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "norequest"},
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "memory",
                        "target": {"type": "Utilization", "averageUtilization": 60},
                    },
                }
            ],
        },
    }
    autoscaling.create_namespaced_horizontal_pod_autoscaler(ns, hpa)
    failed = watch_until(
        autoscaling.list_namespaced_horizontal_pod_autoscaler,
        # first "no metrics returned" while the pod has no two samples yet, then the missing request
        lambda h: any("missing request" in (c.message or "") for c in (h.status.conditions or [])),
        "the HPA to fail on the missing request",
        timeout=20,
        namespace=ns,
    )
    condition = next(c for c in failed.status.conditions if c.type == "ScalingActive")
    assert condition.status == "False"
    assert condition.message.startswith(
        "the HPA was unable to compute the replica count: failed to get memory utilization: missing request for "
        "memory in container work of Pod norequest-"
    )
    if KUBECTL is None:
        return
    apps.create_namespaced_deployment(
        ns, _deployment("autoscaled", command=["stress", "--cpu", "1"], requests={"cpu": "100m"})
    )
    made = subprocess.run(
        [
            KUBECTL,
            "--kubeconfig",
            str(sim.kubeconfig_path),
            "-n",
            ns,
            "autoscale",
            "deployment",
            "autoscaled",
            "--cpu-percent=50",
            "--min=1",
            "--max=3",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    watch_until(
        apps.list_namespaced_deployment,
        lambda d: d.metadata.name == "autoscaled" and (d.spec.replicas or 0) == 3,
        "kubectl autoscale's HPA to scale 1 -> 3",
        timeout=30,
        namespace=ns,
    )
    shown = subprocess.run(
        [KUBECTL, "--kubeconfig", str(sim.kubeconfig_path), "-n", ns, "get", "hpa", "autoscaled"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "Deployment/autoscaled   cpu: 200%/50%" in shown.stdout, shown.stdout
