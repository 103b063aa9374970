"""The simulated KEDA, HPA, Prometheus and HTTP add-on: the HTTP scaler of the vLLM-standalone Deployment goes
0 -> 1 -> 2 -> 0, the first request after scale-from-zero succeeds, and Prometheus answers PromQL."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import kubernetes
import pytest

from pytest_aksai.sim import SimCluster

HOST = "phi4.inference.aksai.local"
CHAT = {"model": "phi-4-mini-instruct", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}


@pytest.fixture(scope="module")
def keda_sim() -> Iterator[SimCluster]:
    with SimCluster(scenario="keda-gpu") as sim:
        yield sim


def _api(sim: SimCluster) -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(str(sim.kubeconfig_path))


def _pod_port(core: kubernetes.client.CoreV1Api, namespace: str, selector: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
            port = (pod.metadata.annotations or {}).get("sim.aksai.dev/http-port")
            if port:
                return str(port)
        time.sleep(0.05)
    raise AssertionError(f"no pod of {namespace}/{selector} serves HTTP")


def _replicas(apps: kubernetes.client.AppsV1Api) -> tuple[int, int]:
    d = apps.read_namespaced_deployment("vllm-phi4-mini", "inference")
    return d.spec.replicas or 0, d.status.ready_replicas or 0


def _wait(predicate, what: str, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_http_scaler_goes_zero_to_n_to_zero(keda_sim: SimCluster) -> None:
    api = _api(keda_sim)
    core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)
    custom = kubernetes.client.CustomObjectsApi(api)
    url = f"http://127.0.0.1:{_pod_port(core, 'keda', 'app=keda-add-ons-http-interceptor')}"
    assert _replicas(apps)[0] == 0

    def ready_so() -> dict | None:  # type: ignore[type-arg]
        so = custom.get_namespaced_custom_object(
            "keda.sh", "v1alpha1", "inference", "scaledobjects", "vllm-phi4-mini"
        )
        conditions = (so.get("status") or {}).get("conditions") or []
        return so if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions) else None

    so = _wait(ready_so, "ScaledObject Ready")
    assert so["status"]["scaleTargetKind"] == "apps/v1.Deployment"
    assert so["status"]["hpaName"] == "keda-hpa-vllm-phi4-mini"
    hpa = kubernetes.client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler(
        "keda-hpa-vllm-phi4-mini", "inference"
    )
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (1, 2)

    # An unrouted host is refused; the first routed request waits for the cold start and succeeds.
    assert httpx.get(url + "/v1/models", headers={"Host": "other.example"}).status_code == 404
    first = httpx.post(url + "/v1/chat/completions", headers={"Host": HOST}, json=CHAT, timeout=60)
    assert first.status_code == 200, first.text
    assert first.headers["X-KEDA-HTTP-Cold-Start"] == "true"
    assert _replicas(apps) == (1, 1)

    stop = time.monotonic() + 6

    def load() -> None:
        while time.monotonic() < stop:
            httpx.post(
                url + "/v1/chat/completions",
                headers={"Host": HOST},
                json={**CHAT, "max_tokens": 400},
                timeout=60,
            )

    threads = [threading.Thread(target=load) for _ in range(24)]
    for t in threads:
        t.start()
    _wait(lambda: _replicas(apps)[0] == 2, "the HPA to scale to 2 under 24 concurrent requests (target 10)")
    for t in threads:
        t.join()
    _wait(lambda: _replicas(apps)[0] == 0, "scale to zero after the cooldown", timeout=20)
    reasons = [
        e.reason
        for e in core.list_namespaced_event(
            "inference", field_selector="involvedObject.name=vllm-phi4-mini"
        ).items
    ]
    assert "KEDAScaleTargetActivated" in reasons and "KEDAScaleTargetDeactivated" in reasons


def test_prometheus_answers_promql_over_scraped_model_servers(keda_sim: SimCluster) -> None:
    api = _api(keda_sim)
    core = kubernetes.client.CoreV1Api(api)
    url = f"http://127.0.0.1:{_pod_port(core, 'monitoring', 'app=prometheus-server')}/api/v1/query"

    def query(text: str) -> dict:  # type: ignore[type-arg]
        body = httpx.get(url, params={"query": text}).json()
        assert body["status"] == "success", body
        return body["data"]  # type: ignore[no-any-return]

    found = _wait(
        lambda: query('sum by (namespace) (vllm:num_requests_running{namespace="inference"})')["result"],
        "the KAITO model server's series to be scraped",
        timeout=30,
    )
    assert found[0]["metric"] == {"namespace": "inference"}
    assert query("1 + 1") == {"resultType": "scalar", "result": [pytest.approx(0, abs=1e12), "2"]}
    assert query('vllm:num_requests_running{namespace="nowhere"}')["result"] == []
    bad = httpx.get(url, params={"query": "sum("})
    assert bad.status_code == 400 and bad.json()["errorType"] == "bad_data"


# ---- the azure-servicebus scaler ---------------------------------------------------------------------------
SB_SCALER = "inference-sb-scaler"


@pytest.fixture(scope="module")
def default_sim() -> Iterator[SimCluster]:
    with SimCluster(scenario="default") as sim:
        yield sim


def _sb_state(custom: kubernetes.client.CustomObjectsApi) -> tuple[str, str]:
    so = custom.get_namespaced_custom_object("keda.sh", "v1alpha1", "inference", "scaledobjects", SB_SCALER)
    ready = next((c for c in (so.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), {})
    return str(ready.get("status")), str(ready.get("reason"))


def _scaler_failed(core: kubernetes.client.CoreV1Api, text: str) -> bool:
    events = core.list_namespaced_event("inference", field_selector=f"involvedObject.name={SB_SCALER}").items
    return any(e.reason == "KEDAScalerFailed" and text in (e.message or "") for e in events)


def test_servicebus_scaler_reads_the_queue_as_the_operators_identity_and_fails_loudly(
    default_sim: SimCluster,
) -> None:
    """Healthy: Ready with the HPA on `messageCount`. No role on the namespace, then an unknown queue: Ready=False
    TriggerError with Service Bus's answer in a KEDAScalerFailed event, and the target is not taken to zero
    silently (a scaler error blocks the scale-in)."""
    import yaml

    from pytest_aksai.sim import contract

    api = _api(default_sim)
    core, custom = kubernetes.client.CoreV1Api(api), kubernetes.client.CustomObjectsApi(api)
    _wait(lambda: _sb_state(custom) == ("True", "ScaledObjectReady"), "the Service Bus scaler Ready")
    # Raw: the typed model refuses an HPA whose status has no desiredReplicas yet (the HPA controller's first sync).
    response = kubernetes.client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler(
        f"keda-hpa-{SB_SCALER}", "inference", _preload_content=False
    )
    metric = json.loads(response.data)["spec"]["metrics"][0]["external"]
    assert (metric["metric"]["name"], metric["target"]["averageValue"]) == (
        "s0-azure-servicebus-inference-requests",
        "5",
    )

    cm = core.read_namespaced_config_map(contract.AZURE_CONFIGMAP, contract.SIM_NAMESPACE)
    tenant = yaml.safe_load(cm.data[contract.KEY_TENANT])
    [keda] = [i for i in tenant["identities"] if i["name"] == "keda-identity"]
    roles, keda["roleAssignments"] = keda["roleAssignments"], []
    patch = {"data": {contract.KEY_TENANT: yaml.safe_dump(tenant, sort_keys=False)}}
    core.patch_namespaced_config_map(contract.AZURE_CONFIGMAP, contract.SIM_NAMESPACE, patch)
    try:
        _wait(lambda: _sb_state(custom) == ("False", "TriggerError"), "TriggerError without a role")
        assert _wait(lambda: _scaler_failed(core, "Manage,EntityRead claims required"), "the 401 in an event")
    finally:
        keda["roleAssignments"] = roles
        patch = {"data": {contract.KEY_TENANT: yaml.safe_dump(tenant, sort_keys=False)}}
        core.patch_namespaced_config_map(contract.AZURE_CONFIGMAP, contract.SIM_NAMESPACE, patch)
    _wait(lambda: _sb_state(custom) == ("True", "ScaledObjectReady"), "Ready again with the role back")

    so = custom.get_namespaced_custom_object("keda.sh", "v1alpha1", "inference", "scaledobjects", SB_SCALER)
    so["spec"]["triggers"][0]["metadata"]["queueName"] = "no-such-queue"
    custom.replace_namespaced_custom_object(
        "keda.sh", "v1alpha1", "inference", "scaledobjects", SB_SCALER, so
    )
    _wait(lambda: _sb_state(custom) == ("False", "TriggerError"), "TriggerError for an unknown queue")
    assert _wait(lambda: _scaler_failed(core, "queue no-such-queue doesn't exist"), "KEDA's text in an event")
