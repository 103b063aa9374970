"""Discovery documents and the faults the API server itself injects (api-flaky: 429/500/503/resets)."""

from __future__ import annotations

import time

import httpx
import kubernetes
import pytest


def test_version(raw):
    body = raw.request("GET", "/version").json()
    assert body["major"] == "1"
    assert body["gitVersion"].startswith("v1.")


def test_core_discovery(raw):
    api = raw.request("GET", "/api").json()
    assert api["kind"] == "APIVersions"
    assert api["versions"] == ["v1"]
    v1 = raw.request("GET", "/api/v1").json()
    assert v1["kind"] == "APIResourceList"
    assert v1["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in v1["resources"]}
    pods = by_name["pods"]
    assert pods["kind"] == "Pod"
    assert pods["namespaced"] is True
    assert pods["shortNames"] == ["po"]
    assert sorted(pods["verbs"]) == [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ]
    assert by_name["namespaces"]["namespaced"] is False
    assert by_name["nodes"]["namespaced"] is False
    for sub in ("pods/status", "pods/log", "services/proxy", "serviceaccounts/token", "namespaces/status"):
        assert sub in by_name, sub
    assert by_name["serviceaccounts/token"]["kind"] == "TokenRequest"
    assert by_name["serviceaccounts/token"]["verbs"] == ["create"]


def test_group_discovery(raw):
    groups = {g["name"]: g for g in raw.request("GET", "/apis").json()["groups"]}
    for name in (
        "apps",
        "batch",
        "autoscaling",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "apiextensions.k8s.io",
        "kaito.sh",
        "karpenter.sh",
        "karpenter.azure.com",
        "secrets-store.csi.x-k8s.io",
        "keda.sh",
        "http.keda.sh",
    ):
        assert name in groups, name
    assert groups["autoscaling"]["preferredVersion"]["version"] == "v2"
    assert groups["kaito.sh"]["preferredVersion"]["version"] == "v1beta1"
    assert [v["version"] for v in groups["karpenter.azure.com"]["versions"]] == ["v1beta1", "v1alpha2"]
    apps = {r["name"]: r for r in raw.request("GET", "/apis/apps/v1").json()["resources"]}
    assert apps["deployments"]["shortNames"] == ["deploy"]
    assert apps["deployments/scale"]["kind"] == "Scale"
    assert apps["deployments/scale"]["group"] == "autoscaling"
    assert "all" in apps["deployments"]["categories"]
    karpenter = {r["name"]: r for r in raw.request("GET", "/apis/karpenter.sh/v1").json()["resources"]}
    assert karpenter["nodepools"]["namespaced"] is False
    assert karpenter["nodepools"]["categories"] == ["karpenter", "nap"]
    assert "nodepools/scale" in karpenter
    missing = raw.request("GET", "/apis/nope.example.com/v1")
    assert missing.status_code == 404
    assert missing.json()["reason"] == "NotFound"


def test_official_client_discovery(api):
    dyn = kubernetes.dynamic.DynamicClient(api)
    ws = dyn.resources.get(api_version="kaito.sh/v1beta1", kind="Workspace")
    assert ws.namespaced is True
    assert ws.name == "workspaces"
    with pytest.raises(kubernetes.dynamic.exceptions.ResourceNotFoundError):
        dyn.resources.get(api_version="inference.networking.x-k8s.io/v1alpha2", kind="InferencePool")


def test_table_output_for_kubectl(raw, api, ns):
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "tbl"}, "data": {"a": "1", "b": "2"}})
    table = raw.request(
        "GET",
        f"/api/v1/namespaces/{ns}/configmaps",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"},
    ).json()
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    row = next(r for r in table["rows"] if r["cells"][0] == "tbl")
    assert row["cells"][1] == 2


def test_api_flaky_fault_answers_429_500_503_and_resets(api, raw):
    core = kubernetes.client.CoreV1Api(api)
    core.patch_namespaced_config_map("aksai-sim-faults", "kube-system", {"data": {"api-flaky": "60"}})
    try:
        seen: dict[object, int] = {}
        deadline = time.monotonic() + 10
        while len(seen) < 5 and time.monotonic() < deadline:
            try:
                response = raw.request("GET", "/api/v1/namespaces/default")
            except httpx.TransportError:
                seen["reset"] = seen.get("reset", 0) + 1
                continue
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            body = response.json()
            if response.status_code == 429:
                assert body["reason"] == "TooManyRequests"
                assert response.headers["Retry-After"] == "1"
                assert body["details"] == {"retryAfterSeconds": 1}
            elif response.status_code == 500:
                assert body["reason"] == "InternalError"
                assert body["kind"] == "Status"
            elif response.status_code == 503:
                assert body["reason"] == "ServiceUnavailable"
                assert body["message"] == "the server is currently unable to handle the request"
            else:
                assert response.status_code == 200
                assert body["kind"] == "Namespace"
        assert set(seen) == {200, 429, 500, 503, "reset"}
    finally:
        for _ in range(100):
            try:
                response = raw.request(
                    "PATCH",
                    "/api/v1/namespaces/kube-system/configmaps/aksai-sim-faults",
                    content=b'{"data": {"api-flaky": null}}',
                    headers={"Content-Type": "application/merge-patch+json"},
                )
            except httpx.TransportError:
                continue
            if response.status_code == 200:
                break
    assert raw.request("GET", "/api/v1/namespaces/default").status_code == 200


def test_event_table_matches_kubectl_get_events(raw, sim, ns):
    done = []

    def _record() -> None:
        ctx = sim._runtime.ctx
        ctx.record_event(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns, "uid": "u-1"}},
            "Pulled",
            "pulled it",
        )
        ctx.record_event(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns, "uid": "u-1"}},
            "Pulled",
            "pulled it",
        )
        done.append(True)

    sim.loop.call_soon_threadsafe(_record)
    deadline = time.monotonic() + 5
    while not done:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    table = raw.request(
        "GET",
        f"/api/v1/namespaces/{ns}/events",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"},
    ).json()
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == [
        "Last Seen",
        "Type",
        "Reason",
        "Object",
        "Message",
    ]
    (row,) = table["rows"]
    assert row["cells"][1:5] == ["Normal", "Pulled", "pod/p", "pulled it"]
    assert row["cells"][6] == 2, "a repeated event bumps count"
