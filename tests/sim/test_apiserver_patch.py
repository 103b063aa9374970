"""JSON merge, strategic merge and JSON patches, and server-side apply."""

from __future__ import annotations

import json

import kubernetes
import pytest
import yaml
from kubernetes.client.exceptions import ApiException


def _deployment(ns_name: str) -> dict:  # type: ignore[type-arg]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns_name},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "schedulerName": "nobody",
                    "containers": [
                        {
                            "name": "app",
                            "image": "app:1",
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "ports": [{"containerPort": 80}, {"containerPort": 9090, "name": "metrics"}],
                        },
                        {"name": "sidecar", "image": "side:1"},
                    ],
                },
            },
        },
    }


def test_strategic_merge_merges_lists_by_key(raw, api, ns):
    apps = kubernetes.client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, _deployment(ns))
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "app:2",
                            "env": [{"name": "B", "value": "22"}, {"name": "C", "value": "3"}],
                            "ports": [{"containerPort": 9090, "name": "prom"}],
                        }
                    ]
                }
            }
        }
    }
    response = raw.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{ns}/deployments/web",
        content=json.dumps(patch),
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert response.status_code == 200
    containers = response.json()["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app", "sidecar"]
    app = containers[0]
    assert app["image"] == "app:2"
    assert app["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "22"},
        {"name": "C", "value": "3"},
    ]
    assert [(p["containerPort"], p.get("name")) for p in app["ports"]] == [(80, None), (9090, "prom")]
    delete = {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}
    response = raw.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{ns}/deployments/web",
        content=json.dumps(delete),
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert [c["name"] for c in response.json()["spec"]["template"]["spec"]["containers"]] == ["app"]


def test_json_merge_patch_replaces_lists(raw, api, ns):
    apps = kubernetes.client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, _deployment(ns))
    patch = {
        "metadata": {"labels": {"x": "1"}},
        "spec": {"template": {"spec": {"containers": [{"name": "only", "image": "only:1"}]}}},
    }
    response = raw.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{ns}/deployments/web",
        content=json.dumps(patch),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["metadata"]["labels"] == {"x": "1"}
    assert [c["name"] for c in body["spec"]["template"]["spec"]["containers"]] == ["only"]
    remove = raw.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{ns}/deployments/web",
        content=json.dumps({"metadata": {"labels": {"x": None}}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert "x" not in (remove.json()["metadata"].get("labels") or {})


def test_json_patch(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    out = core.patch_namespaced_config_map(
        "cm", ns, [{"op": "add", "path": "/data/b", "value": "2"}, {"op": "remove", "path": "/data/a"}]
    )
    assert out.data == {"b": "2"}
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map("cm", ns, [{"op": "test", "path": "/data/b", "value": "nope"}])
    assert err.value.status == 422
    assert json.loads(err.value.body)["reason"] == "Invalid"


def test_patch_with_stale_resource_version_conflicts(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    cm = core.create_namespaced_config_map(ns, {"metadata": {"name": "cm"}})
    core.patch_namespaced_config_map("cm", ns, {"data": {"a": "1"}})
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map(
            "cm", ns, {"metadata": {"resourceVersion": cm.metadata.resource_version}, "data": {"a": "2"}}
        )
    assert err.value.status == 409
    assert json.loads(err.value.body)["reason"] == "Conflict"


def test_strategic_merge_on_custom_resources_is_415(raw, ns, widgets):
    body = {
        "apiVersion": "test.aksai.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "ta"},
        "spec": {"size": "S", "extra": {"provider": "azure-workload"}},
    }
    raw.request("POST", f"/apis/test.aksai.dev/v1/namespaces/{ns}/widgets", json=body)
    response = raw.request(
        "PATCH",
        f"/apis/test.aksai.dev/v1/namespaces/{ns}/widgets/ta",
        content=b'{"spec": {}}',
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert response.status_code == 415
    assert response.json()["reason"] == "UnsupportedMediaType"
    merged = raw.request(
        "PATCH",
        f"/apis/test.aksai.dev/v1/namespaces/{ns}/widgets/ta",
        content=b'{"spec": {"extra": {"identityId": "abc"}}}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert merged.json()["spec"]["extra"] == {"provider": "azure-workload", "identityId": "abc"}


def test_server_side_apply_creates_then_updates(raw, ns):
    path = f"/api/v1/namespaces/{ns}/configmaps/applied"
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"a": "1"}}
    headers = {"Content-Type": "application/apply-patch+yaml"}
    created = raw.request(
        "PATCH", path, params={"fieldManager": "tests"}, content=yaml.safe_dump(manifest), headers=headers
    )
    assert created.status_code == 201
    assert created.json()["data"] == {"a": "1"}
    assert created.json()["metadata"]["managedFields"][0]["manager"] == "tests"
    manifest["data"] = {"a": "2"}
    updated = raw.request(
        "PATCH",
        path,
        params={"fieldManager": "tests", "force": "true"},
        content=yaml.safe_dump(manifest),
        headers=headers,
    )
    assert updated.status_code == 200
    assert updated.json()["data"] == {"a": "2"}
    missing_manager = raw.request("PATCH", path, content=yaml.safe_dump(manifest), headers=headers)
    assert missing_manager.status_code == 400
    assert missing_manager.json()["reason"] == "BadRequest"


def test_unknown_patch_type_is_415(raw, ns):
    raw.request("POST", f"/api/v1/namespaces/{ns}/configmaps", json={"metadata": {"name": "cm"}})
    response = raw.request(
        "PATCH",
        f"/api/v1/namespaces/{ns}/configmaps/cm",
        content=b"{}",
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 415
    assert response.json()["reason"] == "UnsupportedMediaType"


def _apply(raw, path: str, manifest: dict, manager: str, force: bool = False):  # type: ignore[no-untyped-def]
    params = {"fieldManager": manager, **({"force": "true"} if force else {})}
    return raw.request(
        "PATCH",
        path,
        params=params,
        content=yaml.safe_dump(manifest),
        headers={"Content-Type": "application/apply-patch+yaml"},
    )


def test_server_side_apply_owns_fields_removes_dropped_ones_and_reports_conflicts(raw, ns):
    path = f"/api/v1/namespaces/{ns}/configmaps/owned"
    first = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "owned", "labels": {"a": "1", "b": "2"}},
        "data": {"x": "1", "y": "2"},
    }
    assert _apply(raw, path, first, "alice").status_code == 201
    second = {**first, "metadata": {"name": "owned", "labels": {"a": "1"}}, "data": {"x": "1"}}
    after = _apply(raw, path, second, "alice").json()
    assert after["metadata"]["labels"] == {"a": "1"}, "a label alice stopped applying is removed"
    assert after["data"] == {"x": "1"}
    entry = next(e for e in after["metadata"]["managedFields"] if e["manager"] == "alice")
    assert entry["operation"] == "Apply"
    assert entry["fieldsV1"] == {"f:metadata": {"f:labels": {"f:a": {}}}, "f:data": {"f:x": {}}}
    rival = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "owned"},
        "data": {"x": "9", "z": "3"},
    }
    conflict = _apply(raw, path, rival, "bob")
    assert conflict.status_code == 409
    body = conflict.json()
    assert body["reason"] == "Conflict"
    assert body["message"] == 'Apply failed with 1 conflict: conflict with "alice": .data.x'
    assert body["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice": .data.x', "field": ".data.x"}
    ]
    forced = _apply(raw, path, rival, "bob", force=True).json()
    assert forced["data"] == {"x": "9", "z": "3"}
    # alice no longer owns data.x, so dropping it from her config leaves bob's value in place
    alice_again = _apply(raw, path, {**second, "data": {}}, "alice").json()
    assert alice_again["data"] == {"x": "9", "z": "3"}


def test_server_side_apply_tracks_list_elements_by_key(raw, ns):
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/web"
    manifest = _deployment(ns)
    assert _apply(raw, path, manifest, "ci").status_code == 201
    manifest["spec"]["template"]["spec"]["containers"] = manifest["spec"]["template"]["spec"]["containers"][
        :1
    ]
    out = _apply(raw, path, manifest, "ci").json()
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["app"], (
        "the sidecar the manager stopped applying is removed"
    )


def test_an_update_takes_ownership_so_a_later_apply_conflicts(raw, ns):
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/web"
    manifest = _deployment(ns)
    assert _apply(raw, path, manifest, "ci").status_code == 201
    scaled = raw.request(
        "PATCH",
        f"{path}/scale",
        params={"fieldManager": "autoscaler"},
        content=b'{"spec": {"replicas": 4}}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert scaled.status_code == 200
    conflict = _apply(raw, path, manifest, "ci")
    assert conflict.status_code == 409
    assert (
        conflict.json()["message"]
        == 'Apply failed with 1 conflict: conflict with "autoscaler": .spec.replicas'
    )
    without_replicas = json.loads(json.dumps(manifest))
    del without_replicas["spec"]["replicas"]
    applied = _apply(raw, path, without_replicas, "ci")
    assert applied.status_code == 200
    assert applied.json()["spec"]["replicas"] == 4, "ci gave up replicas; the autoscaler's value stays"
