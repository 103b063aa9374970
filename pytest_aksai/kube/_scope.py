"""Run-scoped labels, namespaces, the record of what a run created, and cleanup.

Everything the suite creates carries `app.kubernetes.io/managed-by=pytest-aksai`, `aksai.dev/run=<run id>` and
`aksai.dev/expires=<UTC stamp>` (namespaces also the `aksai.dev/expires-at` annotation); a NodeClaim Karpenter
made for the suite's GPU probe gets the run and expiry labels once nominated. Cleanup is by those labels. A
running run renews a Lease `aksai-run-<id>` in `default`; a later run, or `python -m pytest_aksai janitor`,
reaps what a dead run left (no live Lease and the expiry passed) and never touches anything unlabelled.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from pytest_aksai.kube import _rest
from pytest_aksai.kube._connect import Cluster

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "pytest-aksai"
RUN_LABEL = "aksai.dev/run"
EXPIRES_ANNOTATION = "aksai.dev/expires-at"
CREATED_FOR_ANNOTATION = "aksai.dev/created-for"
EXPIRES_LABEL = "aksai.dev/expires"
WORKER_LABEL = "aksai.dev/worker"
"""Under pytest-xdist: which worker created it (each worker cleans up its own; the controller sweeps the run)."""
DEFAULT_TTL = timedelta(hours=6)
LEASE_NAMESPACE = "default"
LEASE_DURATION_S = 45
HEARTBEAT_S = 15.0
LEASES = _rest.Kind("coordination.k8s.io", "v1", "leases", kind="Lease")
JOBS = _rest.Kind("batch", "v1", "jobs", kind="Job")
_STAMP = "%Y%m%dT%H%M%SZ"
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


def lease_name(run_id: str) -> str:
    return f"aksai-run-{run_id}"


def _stamp(moment: datetime) -> str:
    return moment.strftime(_STAMP)


def _parse_stamp(text: str | None) -> datetime | None:
    for fmt in (_STAMP, "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text or "", fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


@dataclass
class Recorded:
    """One object a run created (or caused, like a probe's NodeClaim), and how to remove it in a budget of wall
    seconds; `undo` returns what had to be forced."""

    kind: _rest.Kind
    name: str
    namespace: str | None = None
    undo: Callable[[float], list[str]] | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return f"{self.kind.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"


@dataclass
class CleanupResult:
    removed: list[str] = field(default_factory=list)
    forced: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    """What still exists when the budget ran out or the wait was interrupted."""
    interrupted: bool = False


@dataclass
class RunScope:
    """What one run created on one cluster (a record, in creation order), and how to remove it."""

    _api: k8s.ApiClient = field(repr=False)
    run_id: str = ""
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    ttl: timedelta = DEFAULT_TTL
    created_namespaces: list[str] = field(default_factory=list)
    recorded: list[Recorded] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    cluster: Cluster | None = field(default=None, repr=False)
    worker: str | None = None
    _heartbeat: threading.Event | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def for_cluster(
        cls, cluster: Cluster, run_id: str, ttl: timedelta = DEFAULT_TTL, worker: str | None = None
    ) -> RunScope:
        return cls(cluster._api, run_id, ttl=ttl, cluster=cluster, worker=worker)

    @property
    def expires_at(self) -> datetime:
        return self.now() + self.ttl

    @property
    def labels(self) -> dict[str, str]:
        """The labels every object of this run carries: the run's, and when a later run may reap it."""
        labels = {**run_labels(self.run_id), EXPIRES_LABEL: _stamp(self.expires_at)}
        if self.worker:
            labels[WORKER_LABEL] = self.worker
        return labels

    # --- the record ------------------------------------------------------------------------------------------

    def record(
        self,
        kind: str,
        name: str,
        namespace: str | None = None,
        undo: Callable[[float], list[str]] | None = None,
    ) -> Recorded:
        """Note an object this run creates, by kind (`Pod`, `Job`, `ConfigMap`, `NodeClaim`), name and namespace
        (call it before creating: removing what never came is a no-op). Cleanup removes the record's objects
        newest first, then whatever else carries the run's labels."""
        entry = Recorded(_KINDS[kind], name, namespace, undo)
        with self._lock:
            self.recorded.append(entry)
        return entry

    def note_external(self, what: str) -> None:
        """Note something the run left outside the cluster that expires by itself (a Service Bus message with a
        time to live), for the run report."""
        with self._lock:
            self.external.append(what)

    def release(self, entry: Recorded) -> None:
        """The fixture removed the object itself."""
        with self._lock:
            if entry in self.recorded:
                self.recorded.remove(entry)

    # --- liveness --------------------------------------------------------------------------------------------

    def start_heartbeat(self) -> None:
        """Create the run's Lease and renew it every 15 s from a daemon thread until `stop_heartbeat`."""
        if self._heartbeat is not None:
            return
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": lease_name(self.run_id),
                "namespace": LEASE_NAMESPACE,
                "labels": self.labels,
            },
            "spec": {
                "holderIdentity": f"pytest-aksai {socket.gethostname()} pid {os.getpid()}",
                "leaseDurationSeconds": LEASE_DURATION_S,
                "renewTime": _micro(self.now()),
            },
        }
        try:
            _rest.create(self._api, LEASES, body, LEASE_NAMESPACE)
        except ApiException as exc:
            if exc.status != 409:  # another xdist worker of this run created it
                return
        stop = self._heartbeat = threading.Event()

        def renew() -> None:
            while not stop.wait(HEARTBEAT_S):
                try:
                    _rest.patch_merge(self._api, LEASES, lease_name(self.run_id),
                                      {"spec": {"renewTime": _micro(self.now())}}, LEASE_NAMESPACE)  # fmt: skip
                except Exception:  # a missed renewal only shortens the lease; the next one may succeed
                    continue

        threading.Thread(target=renew, name=f"aksai-lease-{self.run_id}", daemon=True).start()

    def stop_heartbeat(self, *, delete: bool) -> None:
        started = self._heartbeat is not None  # a read-only run never created its Lease
        if self._heartbeat is not None:
            self._heartbeat.set()
            self._heartbeat = None
        if delete and started:
            with contextlib.suppress(ApiException):
                _rest.delete(self._api, LEASES, lease_name(self.run_id), LEASE_NAMESPACE)

    # --- namespaces ------------------------------------------------------------------------------------------

    def create_namespace(self, slug_source: str) -> str:
        name = namespace_name(self.run_id, f"{self.worker}-{slug_source}" if self.worker else slug_source)
        body = k8s.V1Namespace(
            metadata=k8s.V1ObjectMeta(
                name=name,
                labels=self.labels,
                annotations={
                    EXPIRES_ANNOTATION: self.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    CREATED_FOR_ANNOTATION: slug_source[:250],
                },
            )
        )
        try:
            k8s.CoreV1Api(self._api).create_namespace(body)
        except ApiException as exc:
            # create-or-get: a create retried after a lost answer meets the namespace it made; one that is not
            # this run's is somebody else's and stays an error
            if exc.status != 409 or not self._is_ours(name):
                raise
        self.created_namespaces.append(name)
        return name

    def _is_ours(self, namespace: str) -> bool:
        found = _rest.get(self._api, _rest.NAMESPACES, namespace)
        labels = ((found or {}).get("metadata") or {}).get("labels") or {}
        return all(labels.get(k) == v for k, v in self.labels.items())

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

    # --- cleanup ---------------------------------------------------------------------------------------------

    def cleanup(self, budget_s: float) -> CleanupResult:
        """Remove what this run created within `budget_s` wall seconds, in dependency order: the record newest
        first, then every object labelled with the run (pods, Jobs, ConfigMaps, then the NodeClaims its GPU probe
        caused, then its namespaces, cascading), waiting for the NodeClaims to go; the run's Lease last. Returns
        what is left when the budget ran out. A KeyboardInterrupt (a second Ctrl-C) propagates to the caller."""
        result = CleanupResult()
        deadline = time.monotonic() + budget_s
        with self._lock:
            todo = list(reversed(self.recorded))
        for entry in todo:
            if time.monotonic() > deadline:
                break
            if entry.undo is not None:
                result.forced += entry.undo(deadline - time.monotonic())
            elif _rest.delete(self._api, entry.kind, entry.name, entry.namespace):
                result.removed.append(str(entry))
            self.release(entry)
        claims: list[str] = []
        for kind, name, namespace in self.labelled(self.run_id, worker=self.worker):
            if kind is LEASES or time.monotonic() > deadline:
                continue
            if _rest.delete(self._api, kind, name, namespace):
                result.removed.append(_describe(kind, name, namespace))
            if kind is _rest.NODECLAIMS:
                claims.append(name)
        self.created_namespaces.clear()
        for name in claims:
            if time.monotonic() < deadline:
                self._wait_gone(_rest.NODECLAIMS, name, None, deadline - time.monotonic())
        result.left = self.left()
        if not result.left:
            self.stop_heartbeat(delete=self.worker is None)  # the controller removes a worker run's Lease
        return result

    def left(self) -> list[str]:
        """What of this run still exists and is not being deleted (a Terminating namespace is on its way)."""
        return [
            _describe(k, n, ns)
            for k, n, ns in self.labelled(self.run_id, worker=self.worker)
            if k is not LEASES
        ]

    def _wait_gone(self, kind: _rest.Kind, name: str, namespace: str | None, budget_s: float) -> bool:
        from pytest_aksai.kube._wait import WaitTimeout, wait_for

        if self.cluster is None:
            return False
        try:
            wait_for(self.cluster, kind, name, namespace, until=lambda o: o is None, expected="deleted",
                     timeout=max(budget_s, 0.1) * self.cluster.time_scale)  # fmt: skip
        except WaitTimeout:
            return False
        return True

    def labelled(
        self, run_id: str | None = None, *, include_terminating: bool = False, worker: str | None = None
    ) -> list[tuple[_rest.Kind, str, str | None]]:
        """Every object carrying the run label (of `run_id`, else of any run) among the kinds the suite
        creates, cluster-scoped and namespaced, in dependency order (pods first, namespaces and Leases last)."""
        selector = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
        if worker:
            selector += f",{WORKER_LABEL}={worker}"
        found: list[tuple[_rest.Kind, str, str | None]] = []
        for kind in SWEPT_KINDS:
            try:
                objs = _rest.items(self._api, kind, None, label_selector=selector)
            except ApiException as exc:
                if exc.status == 404:  # the cluster does not serve the kind (no Karpenter)
                    continue
                raise
            for obj in objs:
                meta = obj.get("metadata") or {}
                if meta.get("deletionTimestamp") and not include_terminating:
                    continue
                found.append((kind, str(meta.get("name")), meta.get("namespace")))
        return found

    def reap_expired(self) -> list[str]:
        """Remove what dead runs left (no live Lease, expiry passed); returns what was removed."""
        return Janitor(self._api, self.cluster, self.now, spare_run=self.run_id).reap(wait_s=0.0).removed


SWEPT_KINDS: tuple[_rest.Kind, ...] = (
    _rest.PODS,
    JOBS,
    _rest.CONFIGMAPS,
    _rest.NODECLAIMS,
    _rest.NAMESPACES,
    LEASES,
)
"""The kinds any suite creates (or causes, for NodeClaims), in the order the janitor removes them."""
_KINDS = {kind.kind: kind for kind in SWEPT_KINDS}


def _describe(kind: _rest.Kind, name: str, namespace: str | None) -> str:
    return f"{kind.kind} {namespace + '/' if namespace else ''}{name}"


def _micro(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class JanitorReport:
    """What the janitor removed (or, dry-run, would remove), and what it left and why."""

    removed: list[str] = field(default_factory=list)
    live_runs: list[str] = field(default_factory=list)
    not_expired: list[str] = field(default_factory=list)
    terminating: list[str] = field(default_factory=list)
    """Namespaces stuck Terminating, each with the finalizer that holds it."""
    forced: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)


@dataclass
class Janitor:
    """Reaps what dead runs left: objects carrying the run label whose run has no live Lease and whose expiry
    has passed. Anything without the run label is never touched. `only_run` reaps that run now, whatever its
    lease and expiry (the command a second Ctrl-C prints); `spare_run` is the caller's own run."""

    _api: k8s.ApiClient = field(repr=False)
    cluster: Cluster | None = field(default=None, repr=False)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    spare_run: str | None = None
    only_run: str | None = None

    def _scope(self, run_id: str) -> RunScope:
        return RunScope(self._api, run_id, now=self.now, cluster=self.cluster)

    def live_runs(self) -> set[str]:
        now = self.now()
        live: set[str] = set()
        for lease in _rest.items(self._api, LEASES, LEASE_NAMESPACE, label_selector=RUN_LABEL):
            spec = lease.get("spec") or {}
            renewed = _parse_micro(spec.get("renewTime"))
            duration = float(spec.get("leaseDurationSeconds") or 0)
            if renewed is not None and renewed + timedelta(seconds=duration) > now:
                live.add(str((lease["metadata"].get("labels") or {}).get(RUN_LABEL)))
        return live

    def reap(self, *, dry_run: bool = False, wait_s: float = 300.0) -> JanitorReport:
        report = JanitorReport()
        live = set() if self.only_run else self.live_runs()
        report.live_runs = sorted(live - {self.spare_run} if self.spare_run else live)
        objects = _rest_labelled(self._api, self.only_run)
        now = self.now()
        doomed: list[tuple[_rest.Kind, dict[str, Any]]] = []
        for kind, obj in objects:
            meta = obj.get("metadata") or {}
            labels = meta.get("labels") or {}
            run = labels.get(RUN_LABEL)
            described = _describe(kind, str(meta.get("name")), meta.get("namespace"))
            if run in (self.spare_run,) or (run in live and not self.only_run):
                continue
            if labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE and kind is not _rest.NODECLAIMS:
                continue  # the run label alone is not ours to act on (a NodeClaim is Karpenter's, labelled by us)
            if kind is _rest.NAMESPACES and meta.get("deletionTimestamp"):
                report.terminating.append(_terminating(obj))
                continue
            if meta.get("deletionTimestamp"):
                continue
            expires = _parse_stamp((meta.get("annotations") or {}).get(EXPIRES_ANNOTATION)) or _parse_stamp(
                labels.get(EXPIRES_LABEL)
            )
            if not self.only_run and (expires is None or expires > now):
                report.not_expired.append(described)
                continue
            doomed.append((kind, obj))
        report.removed = [
            _describe(kind, str(o["metadata"]["name"]), o["metadata"].get("namespace")) for kind, o in doomed
        ]
        if dry_run:
            return report
        deadline = time.monotonic() + wait_s
        for kind, obj in doomed:
            meta = obj["metadata"]
            _rest.delete(self._api, kind, str(meta["name"]), meta.get("namespace"))
        scope = self._scope(self.only_run or "")
        for kind, obj in doomed:
            if kind is _rest.NODECLAIMS and wait_s > 0 and deadline > time.monotonic():
                scope._wait_gone(kind, str(obj["metadata"]["name"]), None, deadline - time.monotonic())
        if wait_s > 0:
            names = {
                (kind.plural, o["metadata"]["name"], o["metadata"].get("namespace")) for kind, o in doomed
            }
            report.left = [
                _describe(kind, str(o["metadata"]["name"]), o["metadata"].get("namespace"))
                for kind, o in _rest_labelled(self._api, self.only_run)
                if (kind.plural, o["metadata"]["name"], o["metadata"].get("namespace")) in names
                and not (kind is _rest.NAMESPACES and o["metadata"].get("deletionTimestamp"))
            ]
        return report


def _rest_labelled(api: k8s.ApiClient, run_id: str | None) -> list[tuple[_rest.Kind, dict[str, Any]]]:
    selector = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
    found: list[tuple[_rest.Kind, dict[str, Any]]] = []
    for kind in SWEPT_KINDS:
        try:
            found += [(kind, obj) for obj in _rest.items(api, kind, None, label_selector=selector)]
        except ApiException as exc:
            if exc.status != 404:
                raise
    return found


def _terminating(ns: dict[str, Any]) -> str:
    meta = ns["metadata"]
    holders = list(meta.get("finalizers") or []) + list((ns.get("spec") or {}).get("finalizers") or [])
    conditions = [
        str(c.get("message"))
        for c in (ns.get("status") or {}).get("conditions") or []
        if c.get("status") == "True"
        and c.get("type") in ("NamespaceFinalizersRemaining", "NamespaceContentRemaining")
    ]
    held = ", ".join(holders) or "no finalizer on the namespace itself"
    text = (
        f"namespace {meta['name']} is stuck Terminating since {meta.get('deletionTimestamp')}, held by {held}"
    )
    if conditions:
        text += "; " + "; ".join(conditions)
    return text + f" (kubectl get namespace {meta['name']} -o yaml)"


def _parse_micro(text: str | None) -> datetime | None:
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text or "", fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _meta(obj: k8s.V1Namespace) -> k8s.V1ObjectMeta:
    assert obj.metadata is not None, "the API server always returns metadata"
    return obj.metadata
