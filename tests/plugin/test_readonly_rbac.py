"""Read-only runs and least privilege, proven on the simulated cluster with RBAC enforced.

The sim's kubeconfig has a second user (`aksai-restricted`) whom the API server authorizes by RBAC alone;
the tests bind it to the ClusterRoles under `fixtures/rbac/` and run the packaged suites as that user:

- with `aksai-full`, a full run meets no 403 and gives the verdicts the admin gets;
- with `aksai-readonly` and `--aksai-readonly`, the API server's audit log holds no write request of that
  user, and every check either keeps the full run's verdict or skips naming the knob;
- with a rule missing, the run ends at connection naming the verb, the resource and the manifest.
"""

from __future__ import annotations

import contextlib
import copy
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from pytest_aksai._data import fixture_path
from pytest_aksai.sim import SimCluster
from pytest_aksai.sim.contract import RESTRICTED_CONTEXT, RESTRICTED_USER

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
SELF_REVIEWS = {"selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews"}
SELECTION = "not load"
"""Every area but load (its verdicts depend on this machine's spare CPU, not on permissions)."""


@pytest.fixture(scope="module")
def sim() -> Iterator[SimCluster]:
    with SimCluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def rbac(sim: SimCluster) -> Iterator[Any]:
    api = kubernetes.config.new_client_from_config(str(sim.kubeconfig_path), context="aksai-sim")
    yield kubernetes.client.RbacAuthorizationV1Api(api)
    api.close()


def _bind(rbac: Any, role: dict[str, Any]) -> None:
    """The ClusterRole, and a ClusterRoleBinding of it to the restricted user (replacing any other)."""
    for binding in rbac.list_cluster_role_binding(label_selector="test=aksai-rbac").items:
        rbac.delete_cluster_role_binding(binding.metadata.name)
    name = role["metadata"]["name"]
    with contextlib.suppress(kubernetes.client.ApiException):
        rbac.delete_cluster_role(name)
    rbac.create_cluster_role(role)
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name, "labels": {"test": "aksai-rbac"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": RESTRICTED_USER}],
        }
    )


def _manifest(name: str) -> dict[str, Any]:
    role: dict[str, Any] = yaml.safe_load(fixture_path(f"rbac/{name}.yaml").read_text())
    return role


def _run(sim: SimCluster, tmp: Path, *extra: str) -> tuple[int, dict[str, tuple[str, str]], str]:
    """Run the suites as the restricted user: (exit code, test id → (verdict, message), output)."""
    junit = tmp / "junit.xml"
    command = [
        sys.executable, "-m", "pytest", "--pyargs", "pytest_aksai.suites", "-p", "no:cacheprovider", "-q",
        "-m", SELECTION, f"--junitxml={junit}", f"--aksai-kubeconfig={sim.kubeconfig_path}",
        f"--aksai-context={RESTRICTED_CONTEXT}", *extra,
    ]  # fmt: skip
    done = subprocess.run(command, cwd=tmp, capture_output=True, text=True, timeout=600, check=False)
    verdicts: dict[str, tuple[str, str]] = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            verdict, message = "passed", ""
            for child in case:
                if child.tag in ("failure", "error", "skipped"):
                    verdict, message = child.tag, child.get("message") or ""
                    break
            verdicts[f"{case.get('classname')}::{case.get('name')}"] = (verdict, message)
    return done.returncode, verdicts, done.stdout + done.stderr


def _events_of_restricted_user(sim: SimCluster, after: float) -> list[Any]:
    return [e for e in sim.audit_events() if e.user == RESTRICTED_USER and e.wall_time >= after]


@pytest.fixture(scope="module")
def full_run(sim: SimCluster, rbac: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    _bind(rbac, _manifest("aksai-full"))
    started = sim.audit_events()[-1].wall_time
    code, verdicts, output = _run(sim, tmp_path_factory.mktemp("full"))
    return code, verdicts, output, _events_of_restricted_user(sim, started)


def test_the_full_role_suffices_for_a_full_run(full_run: Any) -> None:
    code, verdicts, output, events = full_run
    denied = sorted({f"{e.verb} {e.resource}/{e.subresource} ({e.group})" for e in events if not e.allowed})
    assert denied == [], f"the full role lacks what the run asked for: {denied}"
    assert code == 0, output[-3000:]
    writes = {(e.verb, e.resource, e.subresource) for e in events if e.verb in WRITE_VERBS}
    assert ("create", "pods", "") in writes and ("create", "namespaces", "") in writes, writes
    assert sum(1 for verdict, _ in verdicts.values() if verdict == "passed") >= 50


def test_a_readonly_run_writes_nothing_and_skips_every_writing_check(
    sim: SimCluster, rbac: Any, full_run: Any, tmp_path: Path
) -> None:
    _, full_verdicts, _, _ = full_run
    _bind(rbac, _manifest("aksai-readonly"))
    started = sim.audit_events()[-1].wall_time
    code, verdicts, output = _run(sim, tmp_path, "--aksai-readonly")
    events = _events_of_restricted_user(sim, started)

    writes = [e for e in events if e.verb in WRITE_VERBS and e.resource not in SELF_REVIEWS]
    assert writes == [], f"a read-only run sent {len(writes)} write request(s), first: {writes[:3]}"
    denied = sorted({f"{e.verb} {e.resource}/{e.subresource} ({e.group})" for e in events if not e.allowed})
    assert denied == [], f"the read-only role lacks what a read-only run reads: {denied}"
    assert len(events) > 50, "the read-only run read (nearly) nothing"
    assert code == 0, output[-3000:]

    assert set(verdicts) == set(full_verdicts)
    readonly_skips = [t for t, (v, m) in verdicts.items() if v == "skipped" and "--aksai-readonly" in m]
    assert len(readonly_skips) >= 5, "no check of the suites writes?"
    for test_id, (verdict, message) in verdicts.items():
        if test_id in readonly_skips:
            assert "this check would " in message, message
            continue
        assert verdict == full_verdicts[test_id][0], (test_id, verdict, message, full_verdicts[test_id])
    assert any(v == "passed" for v, _ in verdicts.values())


def test_a_missing_rule_ends_the_run_naming_verb_resource_and_manifest(
    sim: SimCluster, rbac: Any, tmp_path: Path
) -> None:
    role = copy.deepcopy(_manifest("aksai-full"))
    for rule in role["rules"]:
        if "create" in rule["verbs"] and "pods" in rule["resources"]:
            rule["resources"] = [r for r in rule["resources"] if r != "pods"]
    _bind(rbac, role)
    code, _, output = _run(sim, tmp_path, "-x")
    assert code == 1, output[-2000:]
    manifest = fixture_path("rbac/aksai-full.yaml")
    assert (
        f"Cluster profile 'sim': user '{RESTRICTED_USER}' lacks 2 permission(s) a full run needs: create pods, "
        f"delete pods (cluster-wide). Grant them with the ClusterRole {manifest} (`kubectl apply -f {manifest}`"
    ) in output, output[-2000:]
    assert "Or run read-only (--aksai-readonly) with the narrower aksai-readonly.yaml." in output


def test_the_sim_answers_forbidden_requests_as_kube_apiserver(sim: SimCluster, rbac: Any) -> None:
    _bind(rbac, _manifest("aksai-readonly"))
    api = kubernetes.config.new_client_from_config(str(sim.kubeconfig_path), context=RESTRICTED_CONTEXT)
    try:
        core = kubernetes.client.CoreV1Api(api)
        assert core.list_namespaced_pod("default").items is not None
        with pytest.raises(kubernetes.client.ApiException) as err:
            core.read_namespaced_secret("nope", "default")
        assert err.value.status == 403
        assert yaml.safe_load(err.value.body)["message"] == (
            f'secrets "nope" is forbidden: User "{RESTRICTED_USER}" cannot get resource "secrets" in API '
            'group "" in the namespace "default"'
        )
        with pytest.raises(kubernetes.client.ApiException) as err:
            core.create_namespace({"metadata": {"name": "not-allowed"}})
        assert yaml.safe_load(err.value.body)["message"] == (
            f'namespaces is forbidden: User "{RESTRICTED_USER}" cannot create resource "namespaces" in API '
            'group "" at the cluster scope'
        )
        authz = kubernetes.client.AuthorizationV1Api(api)
        review = authz.create_self_subject_access_review(
            {
                "spec": {
                    "resourceAttributes": {"verb": "list", "group": "karpenter.sh", "resource": "nodepools"}
                }
            }
        )
        assert review.status.allowed is True
        assert review.status.reason == (
            f'RBAC: allowed by ClusterRoleBinding "aksai-readonly" of ClusterRole "aksai-readonly" to User '
            f'"{RESTRICTED_USER}"'
        )
        review = authz.create_self_subject_access_review(
            {"spec": {"resourceAttributes": {"verb": "create", "resource": "pods", "namespace": "default"}}}
        )
        assert review.status.allowed is False
        rules = authz.create_self_subject_rules_review({"spec": {"namespace": "default"}}).status
        assert any(
            "nodepools" in (r.resources or []) and r.verbs == ["get", "list", "watch"]
            for r in rules.resource_rules
        )
        assert rules.incomplete is False
        whoami = kubernetes.client.AuthenticationV1Api(api).create_self_subject_review({})
        assert whoami.status.user_info.username == RESTRICTED_USER
    finally:
        api.close()
