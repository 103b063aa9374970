"""CRUD, defaulting, validation, concurrency, generateName, dryRun and error Status bodies."""

from __future__ import annotations

import json
import re

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from pytest_aksai.sim import SimCluster


def _status(exc: ApiException) -> dict:  # type: ignore[type-arg]
    body = json.loads(exc.body)
    assert body["kind"] == "Status"
    assert body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert body["code"] == exc.status
    return body  # type: ignore[no-any-return]


def _pod(name: str, **spec: object) -> dict:  # type: ignore[type-arg]
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}], **spec},
    }


def test_create_get_list_delete_with_defaults(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    pod = core.create_namespaced_pod(ns, _pod("web", schedulerName="nobody"))
    assert pod.metadata.uid and pod.metadata.creation_timestamp is not None
    assert pod.metadata.namespace == ns
    assert pod.metadata.generation == 1
    assert pod.status.phase == "Pending"
    assert pod.spec.restart_policy == "Always"
    assert pod.spec.service_account_name == "default"
    assert pod.spec.containers[0].image_pull_policy == "IfNotPresent"
    got = core.read_namespaced_pod("web", ns)
    assert got.metadata.resource_version == pod.metadata.resource_version
    listed = core.list_namespaced_pod(ns)
    assert [p.metadata.name for p in listed.items] == ["web"]
    assert int(listed.metadata.resource_version) >= int(pod.metadata.resource_version)
    core.delete_namespaced_pod("web", ns)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("web", ns)
    assert err.value.status == 404
    body = _status(err.value)
    assert body["reason"] == "NotFound"
    assert body["message"] == 'pods "web" not found'


def test_list_carries_kind_and_api_version(raw, ns):
    response = raw.request("GET", f"/apis/apps/v1/namespaces/{ns}/deployments")
    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "DeploymentList"
    assert body["apiVersion"] == "apps/v1"
    assert body["items"] == []


def test_deployment_defaults_and_generation(api, ns):
    apps = kubernetes.client.AppsV1Api(api)
    body = {
        "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"schedulerName": "nobody", "containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }
    dep = apps.create_namespaced_deployment(ns, body)
    assert dep.spec.replicas == 1
    assert dep.spec.strategy.type == "RollingUpdate"
    assert dep.spec.strategy.rolling_update.max_surge == "25%"
    assert dep.spec.revision_history_limit == 10
    assert dep.metadata.generation == 1
    labelled = apps.patch_namespaced_deployment("d", ns, {"metadata": {"labels": {"x": "y"}}})
    assert labelled.metadata.generation == 1, "metadata changes do not bump generation"
    scaled = apps.patch_namespaced_deployment("d", ns, {"spec": {"replicas": 0}})
    assert scaled.metadata.generation == 2


def test_namespace_must_exist(api):
    core = kubernetes.client.CoreV1Api(api)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("no-such-ns", {"metadata": {"name": "x"}})
    assert err.value.status == 404
    assert _status(err.value)["reason"] == "NotFound"
    assert _status(err.value)["message"] == 'namespaces "no-such-ns" not found'


def test_invalid_name_is_422_with_field_path(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "Bad_Name"}})
    assert err.value.status == 422
    body = _status(err.value)
    assert body["reason"] == "Invalid"
    assert body["message"].startswith(
        'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": '
        "a lowercase RFC 1123 subdomain"
    )
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    assert body["details"]["causes"][0]["reason"] == "FieldValueInvalid"


def test_required_fields_are_422(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(ns, {"metadata": {"name": "p"}, "spec": {"containers": []}})
    assert err.value.status == 422
    assert _status(err.value)["message"] == 'Pod "p" is invalid: spec.containers: Required value'
    apps = kubernetes.client.AppsV1Api(api)
    with pytest.raises(ApiException) as err:
        apps.create_namespaced_deployment(
            ns,
            {
                "metadata": {"name": "d"},
                "spec": {
                    "replicas": -1,
                    "selector": {"matchLabels": {"a": "b"}},
                    "template": {
                        "metadata": {"labels": {"a": "c"}},
                        "spec": {"containers": [{"name": "c", "image": "i"}]},
                    },
                },
            },
        )
    body = _status(err.value)
    assert body["reason"] == "Invalid"
    fields = {c["field"] for c in body["details"]["causes"]}
    assert fields == {"spec.replicas", "spec.template.metadata.labels"}
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in body["message"]


def test_already_exists_is_409(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "cm"}})
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "cm"}})
    assert err.value.status == 409
    body = _status(err.value)
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == 'configmaps "cm" already exists'


def test_stale_resource_version_is_409_conflict(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    cm = core.create_namespaced_config_map(ns, {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    cm.data = {"a": "2"}
    updated = core.replace_namespaced_config_map("cm", ns, cm)
    assert int(updated.metadata.resource_version) > int(cm.metadata.resource_version)
    cm.data = {"a": "3"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("cm", ns, cm)
    assert err.value.status == 409
    body = _status(err.value)
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on configmaps "cm": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert core.read_namespaced_config_map("cm", ns).data == {"a": "2"}


def test_put_without_resource_version_is_unconditional(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    replaced = core.replace_namespaced_config_map("cm", ns, {"metadata": {"name": "cm"}, "data": {"b": "2"}})
    assert replaced.data == {"b": "2"}


def test_resource_version_is_global_and_increasing(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    a = core.create_namespaced_config_map(ns, {"metadata": {"name": "a"}})
    b = core.create_namespaced_secret(ns, {"metadata": {"name": "b"}, "stringData": {"k": "v"}})
    assert int(b.metadata.resource_version) > int(a.metadata.resource_version)
    assert b.data == {"k": "dg=="}
    assert b.type == "Opaque"


def test_generate_name(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    made = {
        core.create_namespaced_config_map(ns, {"metadata": {"generateName": "job-"}}).metadata.name
        for _ in range(3)
    }
    assert len(made) == 3
    assert all(re.fullmatch(r"job-[a-z0-9]{5}", name) for name in made)


def test_dry_run_all_persists_nothing(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    out = core.create_namespaced_config_map(
        ns, {"metadata": {"name": "dry"}, "data": {"a": "1"}}, dry_run="All"
    )
    assert out.metadata.name == "dry"
    assert out.metadata.uid
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("dry", ns)
    assert err.value.status == 404
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "dry"}}, dry_run="Some")
    assert err.value.status == 400
    assert _status(err.value)["reason"] == "BadRequest"


def test_delete_collection(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    for i in range(3):
        core.create_namespaced_config_map(
            ns, {"metadata": {"name": f"c{i}", "labels": {"g": "x" if i else "y"}}}
        )
    core.delete_collection_namespaced_config_map(ns, label_selector="g=x")
    left = [
        c.metadata.name for c in core.list_namespaced_config_map(ns).items if c.metadata.name.startswith("c")
    ]
    assert left == ["c0"]


def test_method_not_allowed_is_405(raw, ns):
    response = raw.request("PUT", f"/api/v1/namespaces/{ns}/configmaps", json={})
    assert response.status_code == 405
    body = response.json()
    assert body["reason"] == "MethodNotAllowed"
    assert body["message"] == "the server does not allow this method on the requested resource"


def test_bad_body_is_400(raw, ns):
    response = raw.request(
        "POST",
        f"/api/v1/namespaces/{ns}/configmaps",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["reason"] == "BadRequest"


def test_unauthenticated_is_401(sim: SimCluster, raw):
    response = raw.client.get("/api/v1/namespaces", headers={"Authorization": ""})
    assert response.status_code == 401
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    response = raw.client.get("/api/v1/namespaces", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401


def test_service_account_token_is_forbidden_without_rbac(api, raw, ns):
    core = kubernetes.client.CoreV1Api(api)
    token = core.create_namespaced_service_account_token(
        "default", ns, {"spec": {"audiences": ["x"]}}
    ).status.token
    response = raw.client.get(f"/api/v1/namespaces/{ns}/pods", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    body = response.json()
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        f'pods is forbidden: User "system:serviceaccount:{ns}:default" cannot list '
        f'resource "pods" in API group "" in the namespace "{ns}"'
    )


def test_unknown_resource_is_404(raw):
    response = raw.request("GET", "/apis/nope.example.com/v1/things")
    assert response.status_code == 404
    assert response.json()["reason"] == "NotFound"


def test_services_get_a_cluster_ip_and_defaults(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    svc = core.create_namespaced_service(
        ns, {"metadata": {"name": "s"}, "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}}
    )
    assert svc.spec.type == "ClusterIP"
    assert re.fullmatch(r"10\.0\.\d+\.\d+", svc.spec.cluster_ip)
    assert svc.spec.ports[0].target_port == 80
    assert svc.spec.ports[0].protocol == "TCP"


def test_pod_spec_is_immutable(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_pod(ns, _pod("p", schedulerName="nobody"))
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_pod("p", ns, {"spec": {"restartPolicy": "Never"}})
    assert err.value.status == 422
    assert "pod updates may not change fields other than" in _status(err.value)["message"]
    image = core.patch_namespaced_pod(
        "p", ns, {"spec": {"containers": [{"name": "c", "image": "nginx:1.28"}]}}
    )
    assert image.spec.containers[0].image == "nginx:1.28"


def test_invalid_labels_are_422(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "l", "labels": {"app": "not ok!"}}})
    assert err.value.status == 422
    body = _status(err.value)
    assert body["message"].startswith(
        'ConfigMap "l" is invalid: metadata.labels: Invalid value: "not ok!": '
        "a valid label must be an empty string"
    )
    core.create_namespaced_config_map(ns, {"metadata": {"name": "l", "labels": {"example.com/app": "ok"}}})
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map("l", ns, {"metadata": {"labels": {"bad key": "x"}}})
    assert err.value.status == 422
    assert _status(err.value)["details"]["causes"][0]["field"] == "metadata.labels"


def test_field_validation_strict_warn_ignore(raw, ns):
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "fv", "bogus": 1},
        "data": {"a": "1"},
        "extra": True,
    }
    path = f"/api/v1/namespaces/{ns}/configmaps"
    strict = raw.request("POST", path, params={"fieldValidation": "Strict"}, json=body)
    assert strict.status_code == 400
    assert strict.json()["reason"] == "BadRequest"
    assert strict.json()["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding '
        'error: unknown field "metadata.bogus", unknown field "extra"'
    )
    warned = raw.request("POST", path, json=body)  # Warn is the default
    assert warned.status_code == 201
    assert warned.headers.get_list("warning") == [
        '299 - "unknown field \\"metadata.bogus\\""',
        '299 - "unknown field \\"extra\\""',
    ]
    assert "extra" not in warned.json()
    assert "bogus" not in warned.json()["metadata"]
    ignored = raw.request(
        "POST", path, params={"fieldValidation": "Ignore"}, json={**body, "metadata": {"name": "fv2"}}
    )
    assert ignored.status_code == 201
    assert "warning" not in ignored.headers


def test_new_workloads_carry_the_status_fields_a_real_server_always_sends() -> None:
    """The official client validates responses: creating a StatefulSet must not fail on `status: {}`."""
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    from pytest_aksai.sim import SimCluster

    with SimCluster() as sim:
        api_client = k8s_config.new_client_from_config(
            config_file=str(sim.kubeconfig_path), context="aksai-sim"
        )
        apps = k8s.AppsV1Api(api_client)
        template = k8s.V1PodTemplateSpec(
            metadata=k8s.V1ObjectMeta(labels={"app": "x"}),
            spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="x", image="busybox")]),
        )
        sts = apps.create_namespaced_stateful_set(
            "default",
            k8s.V1StatefulSet(
                metadata=k8s.V1ObjectMeta(name="x"),
                spec=k8s.V1StatefulSetSpec(
                    selector=k8s.V1LabelSelector(match_labels={"app": "x"}),
                    service_name="x",
                    template=template,
                ),
            ),
        )
        assert sts.status is not None and sts.status.replicas == 0
        rs = apps.create_namespaced_replica_set(
            "default",
            k8s.V1ReplicaSet(
                metadata=k8s.V1ObjectMeta(name="y"),
                spec=k8s.V1ReplicaSetSpec(
                    selector=k8s.V1LabelSelector(match_labels={"app": "x"}), template=template, replicas=0
                ),
            ),
        )
        assert rs.status is not None and rs.status.replicas == 0
        api_client.close()
