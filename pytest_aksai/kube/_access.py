"""What the identity may do, asked of the API server when connecting (as `kubectl auth can-i` does).

The rules a run needs are the ClusterRole manifests under `fixtures/rbac/` (one for a read-only run, one
for a full run): one SelfSubjectRulesReview lists what RBAC grants; a needed permission it does not show is
asked again with a SelfSubjectAccessReview (other authorizers, such as Azure RBAC for Kubernetes, answer
only those). A permission still missing names its verb, resource and the manifest that grants it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client.exceptions import ApiException

from pytest_aksai.kube import _rest
from pytest_aksai.kube._connect import Cluster

_REVIEW_NAMESPACE = "default"


@dataclass(frozen=True)
class Permission:
    verb: str
    group: str
    resource: str
    """`pods` or `pods/portforward`."""
    name: str = ""
    """Set when the rule lists resourceNames."""

    def __str__(self) -> str:
        resource, _, sub = self.resource.partition("/")
        shown = (f"{resource}.{self.group}" if self.group else resource) + (f"/{sub}" if sub else "")
        return f"{self.verb} {shown}" + (f" {self.name!r}" if self.name else "")


@dataclass(frozen=True)
class AccessReview:
    manifest: Path
    missing: tuple[Permission, ...]
    user: str = ""


def permissions(manifest: Path) -> list[Permission]:
    """Every (verb, group, resource[, name]) a ClusterRole manifest grants."""
    role = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    found: list[Permission] = []
    for rule in role.get("rules") or []:
        for group in rule.get("apiGroups") or [""]:
            for resource in rule.get("resources") or []:
                for verb in rule.get("verbs") or []:
                    for name in rule.get("resourceNames") or [""]:
                        permission = Permission(verb, group, resource, name)
                        if permission not in found:
                            found.append(permission)
    return found


def _grants(rule: dict[str, Any], need: Permission) -> bool:
    def has(key: str, value: str) -> bool:
        values = rule.get(key) or []
        return "*" in values or value in values

    resource_ok = has("resources", need.resource) or (
        "/" in need.resource and "*/" + need.resource.split("/", 1)[1] in (rule.get("resources") or [])
    )
    names = rule.get("resourceNames") or []
    return (
        has("verbs", need.verb)
        and has("apiGroups", need.group)
        and resource_ok
        and (not names or (bool(need.name) and need.name in names))
    )


def _post(cluster: Cluster, path: str, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = _rest._call(cluster._api, "POST", path, body=body)
    return result


def review_access(cluster: Cluster, manifest: Path) -> AccessReview | None:
    """The permissions of `manifest` the identity lacks cluster-wide; None when the API server serves no
    self reviews (nothing can be proven, the run goes on and meets the API server's 403s, if any)."""
    needs = permissions(manifest)
    try:
        rules_review = _post(
            cluster,
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
             "spec": {"namespace": _REVIEW_NAMESPACE}},
        )  # fmt: skip
    except ApiException as exc:
        if exc.status in (404, 405):
            return None
        raise
    status = rules_review.get("status") or {}
    rules = status.get("resourceRules") or []
    undecided = [need for need in needs if not any(_grants(rule, need) for rule in rules)]
    missing: list[Permission] = []
    for need in undecided:
        resource, _, sub = need.resource.partition("/")
        attributes = {"verb": need.verb, "group": need.group, "resource": resource}
        if sub:
            attributes["subresource"] = sub
        if need.name:
            attributes["name"] = need.name
        review = _post(
            cluster,
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
             "spec": {"resourceAttributes": attributes}},
        )  # fmt: skip
        if not (review.get("status") or {}).get("allowed"):
            missing.append(need)
    user = ""
    try:
        whoami = _post(
            cluster,
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        user = str(((whoami.get("status") or {}).get("userInfo") or {}).get("username") or "")
    except ApiException:
        pass
    return AccessReview(manifest, tuple(missing), user)
