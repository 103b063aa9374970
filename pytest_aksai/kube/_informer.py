"""A watched set of objects kept current in the background (what client-go calls an informer).

A wait that must notice a change on any of several objects (a Workspace, its pods, its NodeClaims, the GPU
nodes) keeps one `Informer` per kind: a thread lists, then watches from that resourceVersion, updates its
cache and wakes the waiter. Evaluating the cache costs no API call, so the waiter can re-check time-based
rules (a pod unschedulable for some seconds) as often as it likes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from kubernetes.client.exceptions import ApiException

from pytest_aksai.kube import _rest
from pytest_aksai.kube._connect import Cluster
from pytest_aksai.kube._rest import Kind, Obj
from pytest_aksai.kube._retry import STREAM_ERRORS, backoff

_WATCH_SECONDS = 5
"""Wall seconds per watch request: how long a stopped informer's thread may linger."""


class Informer:
    """`kind` objects in `namespace` (None: every namespace, or cluster-scoped) matching the selectors."""

    def __init__(
        self,
        cluster: Cluster,
        kind: Kind,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.cluster, self.kind, self.namespace = cluster, kind, namespace
        self.label_selector, self.field_selector = label_selector, field_selector
        self._on_change = on_change
        self._objects: dict[str, Obj] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.synced = threading.Event()
        """Set once the first list is in the cache."""
        self.error: BaseException | None = None
        """The last error of the list or watch (the thread retries)."""
        self._thread = threading.Thread(target=self._run, name=f"informer {kind.plural}", daemon=True)

    def start(self) -> Informer:
        self._list()  # the first list in the caller's thread: its errors are the caller's
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()

    def items(self) -> list[Obj]:
        with self._lock:
            return list(self._objects.values())

    def get(self, name: str) -> Obj | None:
        with self._lock:
            for obj in self._objects.values():
                if obj["metadata"]["name"] == name:
                    return obj
        return None

    @staticmethod
    def _key(obj: Obj) -> str:
        meta = obj.get("metadata") or {}
        return f"{meta.get('namespace') or ''}/{meta.get('name')}"

    def _list(self) -> str:
        listed = _rest.list_(
            self.cluster._api,
            self.kind,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        with self._lock:
            self._objects = {self._key(o): o for o in listed.get("items") or []}
        self.synced.set()
        self._on_change()
        return str((listed.get("metadata") or {}).get("resourceVersion", ""))

    def _run(self) -> None:
        resource_version = ""
        failures = 0
        while not self._stopped.is_set():
            try:
                if not resource_version:
                    resource_version = self._list()
                for event in _rest.watch(
                    self.cluster._api,
                    self.kind,
                    self.namespace,
                    resource_version=resource_version,
                    timeout_seconds=_WATCH_SECONDS,
                    label_selector=self.label_selector,
                    field_selector=self.field_selector,
                ):
                    obj = event.get("object") or {}
                    resource_version = str(
                        (obj.get("metadata") or {}).get("resourceVersion", resource_version)
                    )
                    if event.get("type") == "BOOKMARK":
                        continue
                    with self._lock:
                        if event.get("type") == "DELETED":
                            self._objects.pop(self._key(obj), None)
                        else:
                            self._objects[self._key(obj)] = obj
                    self._on_change()
                    if self._stopped.is_set():
                        return
                failures = 0
            except ApiException as exc:
                if exc.status != 410:
                    self.error = exc
                    failures += 1
                    self._stopped.wait(backoff(failures) / self.cluster.time_scale)
                resource_version = ""  # list again
            except STREAM_ERRORS as exc:  # the stream broke: resume from the last resourceVersion seen
                self.error = exc
                failures += 1
                self._stopped.wait(backoff(failures) / self.cluster.time_scale)
            except Exception as exc:  # anything else: list again after a pause
                self.error = exc
                resource_version = ""
                failures += 1
                self._stopped.wait(backoff(failures) / self.cluster.time_scale)
