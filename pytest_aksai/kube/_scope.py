"""Run-scoped labels, namespaces and cleanup.

Everything the suite creates carries `app.kubernetes.io/managed-by=pytest-aksai` and `aksai.dev/run=<run id>`;
cleanup is by those labels. Namespaces also carry `aksai.dev/expires-at` so that a later run can reap the
leftovers of a run that died (killed CI job, lost laptop) without touching those of a run still going.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from pytest_aksai.kube._connect import Cluster

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "pytest-aksai"
RUN_LABEL = "aksai.dev/run"
EXPIRES_ANNOTATION = "aksai.dev/expires-at"
CREATED_FOR_ANNOTATION = "aksai.dev/created-for"
DEFAULT_TTL = timedelta(hours=6)
_MAX_NAME = 63


def run_labels(run_id: str) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY_VALUE, RUN_LABEL: run_id}


def run_selector(run_id: str) -> str:
    return f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{RUN_LABEL}={run_id}"


def namespace_name(run_id: str, slug_source: str) -> str:
    """`aksai-<run>-<slug>`: DNS-1123, at most 63 characters, unique per slug source."""
    slug = re.sub(r"[^a-z0-9]+", "-", slug_source.lower()).strip("-") or "test"
    prefix = f"aksai-{run_id}-"
    name = prefix + slug
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(slug_source.encode()).hexdigest()[:6]
    room = _MAX_NAME - len(prefix) - len(digest) - 1
    return f"{prefix}{slug[:room].rstrip('-')}-{digest}"


@dataclass
class RunScope:
    """What one run created on one cluster, and how to remove it."""

    _api: k8s.ApiClient = field(repr=False)
    run_id: str = ""
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    ttl: timedelta = DEFAULT_TTL
    created_namespaces: list[str] = field(default_factory=list)

    @classmethod
    def for_cluster(cls, cluster: Cluster, run_id: str) -> RunScope:
        return cls(cluster._api, run_id)

    @property
    def labels(self) -> dict[str, str]:
        return run_labels(self.run_id)

    def create_namespace(self, slug_source: str) -> str:
        name = namespace_name(self.run_id, slug_source)
        body = k8s.V1Namespace(
            metadata=k8s.V1ObjectMeta(
                name=name,
                labels=self.labels,
                annotations={
                    EXPIRES_ANNOTATION: (self.now() + self.ttl).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    CREATED_FOR_ANNOTATION: slug_source[:250],
                },
            )
        )
        k8s.CoreV1Api(self._api).create_namespace(body)
        self.created_namespaces.append(name)
        return name

    def delete_namespace(self, name: str) -> bool:
        """Request deletion (cascading to everything in it); False when it was already gone."""
        try:
            k8s.CoreV1Api(self._api).delete_namespace(name, propagation_policy="Background")
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        finally:
            if name in self.created_namespaces:
                self.created_namespaces.remove(name)
        return True

    def leftovers(self) -> list[str]:
        """Namespaces of this run that still exist and are not already being deleted."""
        items = k8s.CoreV1Api(self._api).list_namespace(label_selector=run_selector(self.run_id)).items
        return sorted(_meta(ns).name or "" for ns in items if _meta(ns).deletion_timestamp is None)

    def delete_all(self) -> list[str]:
        """Delete every namespace labelled with this run (not only those this process remembers)."""
        deleted = [name for name in self.leftovers() if self.delete_namespace(name)]
        self.created_namespaces.clear()
        return deleted

    def reap_expired(self) -> list[str]:
        """Delete managed namespaces of other runs whose expiry has passed; returns their names."""
        api = k8s.CoreV1Api(self._api)
        items = api.list_namespace(label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}").items
        now = self.now()
        reaped: list[str] = []
        for ns in items:
            meta = _meta(ns)
            labels = meta.labels or {}
            if labels.get(RUN_LABEL) == self.run_id or meta.deletion_timestamp is not None or not meta.name:
                continue
            expires = (meta.annotations or {}).get(EXPIRES_ANNOTATION)
            try:
                expired = (
                    expires is not None
                    and datetime.strptime(expires, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) < now
                )
            except ValueError:
                expired = False
            if expired and self.delete_namespace(meta.name):
                reaped.append(meta.name)
        return reaped


def _meta(obj: k8s.V1Namespace) -> k8s.V1ObjectMeta:
    assert obj.metadata is not None, "the API server always returns metadata"
    return obj.metadata
