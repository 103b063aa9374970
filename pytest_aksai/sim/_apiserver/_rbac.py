"""RBAC as kube-apiserver's authorizer evaluates it, and the audit log of resource requests.

A request is allowed when a rule of a ClusterRole bound cluster-wide (ClusterRoleBinding), or of a Role or
ClusterRole bound in the request's namespace (RoleBinding), matches its verb, API group, resource (with
`/subresource`) and, when the rule lists resourceNames, its object name. Members of `system:masters` skip
RBAC, as upstream. Every authenticated user may create SelfSubject{Access,Rules}Reviews and
SelfSubjectReviews (the `system:basic-user` ClusterRole, bound to `system:authenticated` by default).
Aggregated ClusterRoles (`aggregationRule`) are not evaluated: the sim has no aggregation controller.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from ._errors import ApiError
from ._store import Obj, Store

MASTERS_GROUP = "system:masters"
_BASIC_USER_RULES: tuple[Obj, ...] = (
    {
        "verbs": ["create"],
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
    },
    {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]},
)
SELF_REVIEWS = frozenset({"selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews"})
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class Identity:
    user: str
    groups: tuple[str, ...]

    @property
    def is_master(self) -> bool:
        return MASTERS_GROUP in self.groups


@dataclass(frozen=True)
class Attributes:
    """What RBAC judges: `verb` on `group`/`resource`[/`subresource`] (`name`) in `namespace` ('' = cluster)."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""

    @property
    def full_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


@dataclass(frozen=True)
class AuditEvent:
    """One resource request as the API server authorized it (a subset of an audit.k8s.io Event)."""

    user: str
    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str
    allowed: bool
    wall_time: float


class AuditLog:
    """The last `capacity` resource requests, oldest first."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._events: deque[AuditEvent] = deque(maxlen=capacity)

    def record(self, identity: Identity, attrs: Attributes, allowed: bool) -> None:
        self._events.append(
            AuditEvent(
                identity.user,
                attrs.verb,
                attrs.group,
                attrs.resource,
                attrs.subresource,
                attrs.namespace,
                attrs.name,
                allowed,
                time.time(),
            )
        )

    def events(self) -> list[AuditEvent]:
        return list(self._events)


def request_verb(method: str, *, named: bool, watch: bool) -> str:
    """The RBAC verb of an HTTP request, as the API server's request-info resolver derives it."""
    if method in ("GET", "HEAD"):
        if named:
            return "get"
        return "watch" if watch else "list"
    if method == "DELETE" and not named:
        return "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, "get")


class Authorizer:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _objects(self, plural: str, namespace: str | None = None) -> list[Obj]:
        rt = self.store.storage_type("rbac.authorization.k8s.io", plural)
        if rt is None:
            return []
        return list(self.store.list_page(rt, namespace).items)

    def _role_rules(self, ref: Obj, namespace: str) -> list[Obj]:
        kind, name = ref.get("kind"), ref.get("name")
        rt = self.store.storage_type(
            "rbac.authorization.k8s.io", "clusterroles" if kind == "ClusterRole" else "roles"
        )
        if rt is None or not name:
            return []
        role = self.store.try_get(rt, name, None if kind == "ClusterRole" else namespace)
        return list((role or {}).get("rules") or [])

    def rules(self, identity: Identity, namespace: str) -> list[tuple[Obj, str]]:
        """(rule, who grants it) applying to `identity` in `namespace` ('' : only cluster-wide bindings)."""
        found: list[tuple[Obj, str]] = [(r, "system:basic-user") for r in _BASIC_USER_RULES]
        for binding in self._objects("clusterrolebindings"):
            if _binds(binding, identity):
                ref = binding.get("roleRef") or {}
                grant = (
                    f'ClusterRoleBinding "{binding["metadata"]["name"]}" of ClusterRole "{ref.get("name")}"'
                )
                found.extend((rule, grant) for rule in self._role_rules(ref, ""))
        if namespace:
            for binding in self._objects("rolebindings", namespace):
                if _binds(binding, identity):
                    ref = binding.get("roleRef") or {}
                    grant = (
                        f'RoleBinding "{binding["metadata"]["name"]}/{namespace}" of {ref.get("kind")} '
                        f'"{ref.get("name")}"'
                    )
                    found.extend((rule, grant) for rule in self._role_rules(ref, namespace))
        return found

    def decide(self, identity: Identity, attrs: Attributes) -> tuple[bool, str]:
        """(allowed, reason) — the reason as upstream's RBAC authorizer words an allow."""
        if identity.is_master:
            return True, ""
        for rule, grant in self.rules(identity, attrs.namespace):
            if _matches(rule, attrs):
                return True, f'RBAC: allowed by {grant} to User "{identity.user}"'
        return False, ""

    def forbidden(self, identity: Identity, attrs: Attributes, group_resource: str) -> ApiError:
        """kube-apiserver's 403 (`responsewriters.forbiddenMessage` wrapped in `NewForbidden`)."""
        where = f' in the namespace "{attrs.namespace}"' if attrs.namespace else " at the cluster scope"
        reason = (
            f'User "{identity.user}" cannot {attrs.verb} resource "{attrs.full_resource}" in API group '
            f'"{attrs.group}"{where}'
        )
        subject = f'{group_resource} "{attrs.name}"' if attrs.name else group_resource
        details: dict[str, Any] = {"kind": attrs.resource}
        if attrs.name:
            details = {"name": attrs.name, **details}
        if attrs.group:
            details["group"] = attrs.group
        return ApiError(403, f"{subject} is forbidden: {reason}", details=details)


def _binds(binding: Obj, identity: Identity) -> bool:
    for subject in binding.get("subjects") or []:
        kind, name = subject.get("kind"), subject.get("name")
        if kind == "User" and name == identity.user:
            return True
        if kind == "Group" and name in identity.groups:
            return True
        if kind == "ServiceAccount" and identity.user == (
            f"system:serviceaccount:{subject.get('namespace', '')}:{name}"
        ):
            return True
    return False


def _matches(rule: Obj, attrs: Attributes) -> bool:
    verbs = rule.get("verbs") or []
    groups = rule.get("apiGroups") or []
    resources = rule.get("resources") or []
    names = rule.get("resourceNames") or []
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if "*" not in groups and attrs.group not in groups:
        return False
    resource_ok = (
        "*" in resources
        or attrs.full_resource in resources
        or bool(attrs.subresource and f"*/{attrs.subresource}" in resources)
    )
    if not resource_ok:
        return False
    return not names or (bool(attrs.name) and attrs.name in names)


def access_review_status(authorizer: Authorizer, identity: Identity, spec: Obj) -> Obj:
    """A SelfSubjectAccessReview's status for `spec.resourceAttributes` (nonResourceAttributes: allowed)."""
    ra = spec.get("resourceAttributes")
    if not isinstance(ra, dict):
        return {"allowed": True, "reason": "the simulated cluster allows every non-resource URL"}
    attrs = Attributes(
        verb=str(ra.get("verb") or ""),
        group=str(ra.get("group") or ""),
        resource=str(ra.get("resource") or ""),
        subresource=str(ra.get("subresource") or ""),
        namespace=str(ra.get("namespace") or ""),
        name=str(ra.get("name") or ""),
    )
    if identity.is_master:
        return {"allowed": True}
    allowed, reason = authorizer.decide(identity, attrs)
    return {"allowed": True, "reason": reason} if allowed else {"allowed": False}


def rules_review_status(authorizer: Authorizer, identity: Identity, namespace: str) -> Obj:
    """A SelfSubjectRulesReview's status: the resource rules that apply in `namespace`."""
    if identity.is_master:
        return {
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": False,
        }
    resource_rules = []
    for rule, _ in authorizer.rules(identity, namespace):
        shown = {
            k: list(rule[k]) for k in ("verbs", "apiGroups", "resources", "resourceNames") if rule.get(k)
        }
        resource_rules.append(shown)
    return {
        "resourceRules": resource_rules,
        "nonResourceRules": [
            {
                "verbs": ["get"],
                "nonResourceURLs": [
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
            }
        ],
        "incomplete": False,
    }
