"""CustomResourceDefinitions: discovery, structural validation, pruning, defaulting, multi-version serving."""

from __future__ import annotations

import json
import time

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from tests.sim.conftest import WIDGET_CRD


def _widget(name: str, **spec: object) -> dict:  # type: ignore[type-arg]
    return {"apiVersion": "test.aksai.dev/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}


def test_crd_is_established_and_discoverable(api, raw, widgets):
    conditions = {c.type: c.status for c in widgets.status.conditions}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    groups = raw.request("GET", "/apis").json()
    group = next(g for g in groups["groups"] if g["name"] == "test.aksai.dev")
    assert group["preferredVersion"] == {"groupVersion": "test.aksai.dev/v1", "version": "v1"}
    resources = raw.request("GET", "/apis/test.aksai.dev/v1").json()
    assert resources["kind"] == "APIResourceList"
    by_name = {r["name"]: r for r in resources["resources"]}
    assert by_name["widgets"]["kind"] == "Widget"
    assert by_name["widgets"]["namespaced"] is True
    assert by_name["widgets"]["shortNames"] == ["wd"]
    assert set(by_name["widgets"]["verbs"]) >= {"create", "get", "list", "watch", "patch", "update", "delete"}
    assert {"widgets/status", "widgets/scale"} <= set(by_name)


def test_structural_validation_is_422_with_field_paths(api, ns, widgets):
    custom = kubernetes.client.CustomObjectsApi(api)
    cases = [
        (_widget("w1"), "spec.size: Required value"),
        (_widget("w2", size="XL"), 'spec.size: Unsupported value: "XL": supported values: "S", "M", "L"'),
        (
            _widget("w3", size="S", replicas="two"),
            'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"',
        ),
        (
            _widget("w4", size="S", replicas=-1),
            "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0",
        ),
    ]
    for body, message in cases:
        with pytest.raises(ApiException) as err:
            custom.create_namespaced_custom_object("test.aksai.dev", "v1", ns, "widgets", body)
        assert err.value.status == 422
        status = json.loads(err.value.body)
        assert status["reason"] == "Invalid"
        assert (
            status["message"] == f'Widget.test.aksai.dev "{body["metadata"]["name"]}" is invalid: {message}'
        )
        assert status["details"]["group"] == "test.aksai.dev"


def test_pruning_defaults_and_preserved_fields(api, ns, widgets):
    custom = kubernetes.client.CustomObjectsApi(api)
    created = custom.create_namespaced_custom_object(
        "test.aksai.dev",
        "v1",
        ns,
        "widgets",
        {
            **_widget("ok", size="M", port="http", unknown="dropped", extra={"anything": {"goes": 1}}),
            "top": 1,
        },
    )
    assert created["spec"] == {"size": "M", "port": "http", "extra": {"anything": {"goes": 1}}, "replicas": 1}
    assert "top" not in created
    assert created["metadata"]["generation"] == 1
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(
            "test.aksai.dev", "v1", ns, "widgets", _widget("bad-port", size="M", port=1.5)
        )
    assert err.value.status == 422


def test_strict_field_validation_rejects_unknown_fields(raw, ns, widgets):
    response = raw.request(
        "POST",
        f"/apis/test.aksai.dev/v1/namespaces/{ns}/widgets",
        params={"fieldValidation": "Strict"},
        json=_widget("strict", size="S", bogus=1),
    )
    assert response.status_code == 400
    assert response.json()["reason"] == "BadRequest"
    assert 'unknown field "spec.bogus"' in response.json()["message"]


def test_custom_resources_get_generation_and_status_semantics(api, ns, widgets):
    custom = kubernetes.client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object("test.aksai.dev", "v1", ns, "widgets", _widget("g", size="S"))
    patched = custom.patch_namespaced_custom_object(
        "test.aksai.dev", "v1", ns, "widgets", "g", {"spec": {"size": "L"}, "status": {"replicas": 9}}
    )
    assert patched["metadata"]["generation"] == 2
    assert "status" not in patched
    status = custom.patch_namespaced_custom_object_status(
        "test.aksai.dev", "v1", ns, "widgets", "g", {"status": {"replicas": 3}}
    )
    assert status["status"] == {"replicas": 3}
    assert status["metadata"]["generation"] == 2


def test_deleting_a_crd_removes_its_resources(api, raw):
    ext = kubernetes.client.ApiextensionsV1Api(api)
    crd = json.loads(
        json.dumps(WIDGET_CRD)
        .replace("widgets", "gadgets")
        .replace("Widget", "Gadget")
        .replace('"widget"', '"gadget"')
        .replace('"wd"', '"gd"')
    )
    crd["spec"]["scope"] = "Cluster"
    ext.create_custom_resource_definition(crd)
    custom = kubernetes.client.CustomObjectsApi(api)
    custom.create_cluster_custom_object(
        "test.aksai.dev",
        "v1",
        "gadgets",
        {
            "apiVersion": "test.aksai.dev/v1",
            "kind": "Gadget",
            "metadata": {"name": "g"},
            "spec": {"size": "S"},
        },
    )
    ext.delete_custom_resource_definition("gadgets.test.aksai.dev")
    deadline = time.monotonic() + 5
    while raw.request("GET", "/apis/test.aksai.dev/v1/gadgets").status_code != 404:
        assert time.monotonic() < deadline, "the gadgets resource is still served"
        time.sleep(0.02)


def test_invalid_crd_is_422(api):
    ext = kubernetes.client.ApiextensionsV1Api(api)
    bad = json.loads(json.dumps(WIDGET_CRD))
    bad["metadata"]["name"] = "wrong.test.aksai.dev"
    with pytest.raises(ApiException) as err:
        ext.create_custom_resource_definition(bad)
    assert err.value.status == 422
    assert (
        'metadata.name: Invalid value: "wrong.test.aksai.dev": must be spec.names.plural+"."+spec.group'
        in json.loads(err.value.body)["message"]
    )


def test_sim_workspace_is_served_in_both_versions(api, ns):
    custom = kubernetes.client.CustomObjectsApi(api)
    body = {
        "apiVersion": "kaito.sh/v1beta1",
        "kind": "Workspace",
        "metadata": {"name": "ws"},
        "resource": {
            "instanceType": "Standard_NC24ads_A100_v4",
            "labelSelector": {"matchLabels": {"a": "b"}},
        },
        "inference": {"preset": {"name": "phi-4-mini-instruct"}},
        "spec": {"dropped": True},
    }
    created = custom.create_namespaced_custom_object("kaito.sh", "v1beta1", ns, "workspaces", body)
    assert "spec" not in created, "a v1beta1 Workspace has no spec; unknown fields are pruned"
    assert created["resource"]["count"] == 1
    assert created["inference"]["preset"]["accessMode"] == "public"
    old = custom.get_namespaced_custom_object("kaito.sh", "v1alpha1", ns, "workspaces", "ws")
    assert old["apiVersion"] == "kaito.sh/v1alpha1"
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(
            "kaito.sh",
            "v1beta1",
            ns,
            "workspaces",
            {
                "apiVersion": "kaito.sh/v1beta1",
                "kind": "Workspace",
                "metadata": {"name": "nores"},
                "resource": {"instanceType": "x"},
            },
        )
    assert err.value.status == 422
    assert "resource.labelSelector: Required value" in json.loads(err.value.body)["message"]
