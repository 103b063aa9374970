"""Deletion semantics: finalizers, ownerReference garbage collection, namespace termination, graceful pods."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException


def _wait(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting until {what}")
        time.sleep(0.02)


def _gone(read: Callable[[], object]) -> bool:
    try:
        read()
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def _owned(name: str, owner: object) -> dict:  # type: ignore[type-arg]
    meta = owner.metadata  # type: ignore[attr-defined]
    return {
        "metadata": {
            "name": name,
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": meta.name,
                    "uid": meta.uid,
                    "blockOwnerDeletion": True,
                }
            ],
        }
    }


def test_finalizers_hold_deletion_until_removed(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "f", "finalizers": ["example.com/hold"]}})
    core.delete_namespaced_config_map("f", ns)
    held = core.read_namespaced_config_map("f", ns)
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.finalizers == ["example.com/hold"]
    core.patch_namespaced_config_map("f", ns, {"metadata": {"finalizers": None}})
    assert _gone(lambda: core.read_namespaced_config_map("f", ns))


def test_background_garbage_collection(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(ns, {"metadata": {"name": "owner"}})
    core.create_namespaced_config_map(ns, _owned("child", owner))
    grandchild_owner = core.read_namespaced_config_map("child", ns)
    core.create_namespaced_config_map(ns, _owned("grandchild", grandchild_owner))
    core.delete_namespaced_config_map("owner", ns, propagation_policy="Background")
    assert _gone(lambda: core.read_namespaced_config_map("owner", ns))
    _wait(
        lambda: _gone(lambda: core.read_namespaced_config_map("grandchild", ns)),
        "the grandchild is collected",
    )
    assert _gone(lambda: core.read_namespaced_config_map("child", ns))


def test_foreground_deletion_waits_for_dependents(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(ns, {"metadata": {"name": "owner"}})
    core.create_namespaced_config_map(
        ns,
        {
            **_owned("child", owner),
            "metadata": {**_owned("child", owner)["metadata"], "finalizers": ["example.com/slow"]},
        },
    )
    core.delete_namespaced_config_map("owner", ns, propagation_policy="Foreground")
    owner_now = core.read_namespaced_config_map("owner", ns)
    assert owner_now.metadata.deletion_timestamp is not None
    assert "foregroundDeletion" in owner_now.metadata.finalizers
    _wait(
        lambda: core.read_namespaced_config_map("child", ns).metadata.deletion_timestamp is not None,
        "the child is being deleted",
    )
    assert not _gone(lambda: core.read_namespaced_config_map("owner", ns)), "owner waits for its dependents"
    core.patch_namespaced_config_map("child", ns, {"metadata": {"finalizers": None}})
    _wait(lambda: _gone(lambda: core.read_namespaced_config_map("owner", ns)), "the owner is deleted")


def test_orphan_deletion_keeps_dependents(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(ns, {"metadata": {"name": "owner"}})
    core.create_namespaced_config_map(ns, _owned("child", owner))
    core.delete_namespaced_config_map("owner", ns, propagation_policy="Orphan")
    child = core.read_namespaced_config_map("child", ns)
    assert child.metadata.owner_references is None


def test_dependent_with_a_live_owner_survives(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    a = core.create_namespaced_config_map(ns, {"metadata": {"name": "a"}})
    b = core.create_namespaced_config_map(ns, {"metadata": {"name": "b"}})
    refs = (
        _owned("shared", a)["metadata"]["ownerReferences"]
        + _owned("shared", b)["metadata"]["ownerReferences"]
    )
    core.create_namespaced_config_map(ns, {"metadata": {"name": "shared", "ownerReferences": refs}})
    core.delete_namespaced_config_map("a", ns)
    _wait(
        lambda: (
            [r.name for r in core.read_namespaced_config_map("shared", ns).metadata.owner_references] == ["b"]
        ),
        "the dangling owner reference is removed",
    )


def test_namespace_deletion_terminates_and_cascades(api):
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "doomed"}})
    core.create_namespaced_config_map(
        "doomed", {"metadata": {"name": "held", "finalizers": ["example.com/x"]}}
    )
    core.create_namespaced_config_map("doomed", {"metadata": {"name": "free"}})
    core.delete_namespace("doomed")
    ns_obj = core.read_namespace("doomed")
    assert ns_obj.status.phase == "Terminating"
    assert ns_obj.metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("doomed", {"metadata": {"name": "late"}})
    assert err.value.status == 403
    body = json.loads(err.value.body)
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        'configmaps "late" is forbidden: unable to create new content in namespace doomed '
        "because it is being terminated"
    )
    _wait(lambda: _gone(lambda: core.read_namespaced_config_map("free", "doomed")), "free content is deleted")
    assert core.read_namespace("doomed").status.phase == "Terminating", (
        "finalized content keeps it Terminating"
    )
    core.patch_namespaced_config_map("held", "doomed", {"metadata": {"finalizers": None}})
    _wait(lambda: _gone(lambda: core.read_namespace("doomed")), "the namespace is removed")


def test_bound_pods_are_deleted_gracefully(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": "p", "finalizers": ["example.com/keep"]},
            "spec": {
                "nodeName": "somewhere",
                "schedulerName": "nobody",
                "terminationGracePeriodSeconds": 30,
                "containers": [{"name": "c", "image": "i"}],
            },
        },
    )
    deleted = core.delete_namespaced_pod("p", ns)
    assert deleted.metadata.deletion_timestamp is not None
    assert core.read_namespaced_pod("p", ns).metadata.deletion_timestamp is not None
    core.patch_namespaced_pod("p", ns, {"metadata": {"finalizers": None}})
    _wait(lambda: _gone(lambda: core.read_namespaced_pod("p", ns)), "the pod is removed")


def test_delete_preconditions(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "cm"}})
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_config_map("cm", ns, body={"preconditions": {"uid": "not-the-uid"}})
    assert err.value.status == 409
    assert json.loads(err.value.body)["reason"] == "Conflict"


def test_system_namespaces_may_not_be_deleted(api):
    core = kubernetes.client.CoreV1Api(api)
    with pytest.raises(ApiException) as err:
        core.delete_namespace("kube-system")
    assert err.value.status == 403
    body = json.loads(err.value.body)
    assert body["reason"] == "Forbidden"
    assert body["message"] == 'namespaces "kube-system" is forbidden: this namespace may not be deleted'
    assert core.read_namespace("kube-system").status.phase == "Active"
