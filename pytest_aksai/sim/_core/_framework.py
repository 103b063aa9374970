"""The controller framework: reconcile loops fed by in-process watches over the store.

A controller declares the resources it watches and how an event maps to work-queue keys, and implements
`reconcile(key)`. Each controller gets one work queue (deduplicating: a key queued twice is reconciled
once; a key re-added while it is being reconciled runs again afterwards) and one worker, so a controller
never reconciles the same key concurrently. `reconcile` returns None when done or a delay in cluster
seconds after which the key is reconciled again (requeue-after). Conflicts (409) and failures requeue with
a per-key exponential back-off.

The watches are the store's own subscriptions (the same event stream HTTP watchers get), started with a
synthetic ADDED for every existing object, exactly like an informer's initial list.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_aksai.sim._apiserver._errors import ApiError

if TYPE_CHECKING:
    from pytest_aksai.sim._apiserver._store import Store
    from pytest_aksai.sim._clock import VirtualClock

Obj = dict[str, Any]
log = logging.getLogger("pytest_aksai.sim.controllers")

_BACKOFF_BASE = 0.5
_BACKOFF_MAX = 60.0


def object_key(obj: Mapping[str, Any]) -> str:
    """`namespace/name`, or `name` for cluster-scoped objects (the informer's MetaNamespaceKey)."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta['name']}" if namespace else str(meta["name"])


def split_key(key: str) -> tuple[str | None, str]:
    namespace, _, name = key.rpartition("/")
    return (namespace or None), name


def owner_keys(obj: Mapping[str, Any], kind: str) -> list[str]:
    """Keys of the controlling owners of `obj` of the given kind."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return [
        f"{namespace}/{ref['name']}" if namespace else str(ref["name"])
        for ref in meta.get("ownerReferences") or []
        if ref.get("kind") == kind and ref.get("controller")
    ]


Mapper = Callable[[Any, str, Obj], Iterable[str]]


@dataclass(frozen=True)
class Watch:
    """A watched resource and the keys an event on it enqueues (default: the object's own key)."""

    api_version: str
    resource: str
    map: Mapper | None = None


def watch_owned(api_version: str, resource: str, owner_kind: str) -> Watch:
    """Watch dependents and enqueue their controlling owner of `owner_kind`."""
    return Watch(api_version, resource, lambda _self, _type, obj: owner_keys(obj, owner_kind))


class WorkQueue:
    """Deduplicating FIFO of keys with delayed adds (in cluster seconds)."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._order: deque[str] = deque()
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._dirty: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._ready = asyncio.Event()

    def add(self, key: str) -> None:
        """Enqueue now; a pending delayed add of the key still fires (as in client-go's delaying queue)."""
        if key in self._processing:
            self._dirty.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._order.append(key)
            self._ready.set()

    def add_after(self, key: str, cluster_seconds: float) -> None:
        """Enqueue later; an earlier pending timer for the key wins over a later one."""
        if cluster_seconds <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + self._clock.wall_seconds(cluster_seconds)
        timer = self._timers.get(key)
        if timer is not None:
            if timer.when() <= when:
                return
            timer.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def get(self) -> str:
        while not self._order:
            self._ready.clear()
            await self._ready.wait()
        key = self._order.popleft()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def __len__(self) -> int:
        return len(self._order)


class Controller:
    """Base class of the sim's controllers; see the module docstring."""

    name: ClassVar[str] = "controller"
    watches: ClassVar[tuple[Watch, ...]] = ()

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.store: Store = ctx.store
        self.clock: VirtualClock = ctx.clock
        self.queue = WorkQueue(ctx.clock)
        self._failures: dict[str, int] = {}

    # ---- to implement --------------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        raise NotImplementedError

    # ---- helpers -------------------------------------------------------------------------------------
    def rt(self, api_version: str, resource: str) -> Any:
        return self.store.resource(api_version, resource)

    def get(self, api_version: str, resource: str, key: str) -> Obj | None:
        namespace, name = split_key(key)
        return self.store.try_get(self.rt(api_version, resource), name, namespace)

    def list(
        self,
        api_version: str,
        resource: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        return self.store.list(
            self.rt(api_version, resource),
            namespace,
            label_selector=label_selector,
            field_selector=field_selector,
        )

    def event(
        self, obj: Mapping[str, Any], type_: str, reason: str, message: str, component: str, host: str = ""
    ) -> None:
        """Record a core/v1 Event; `host` is the node of kubelet events (not yet carried by the recorder)."""
        self.ctx.record_event(dict(obj), reason, message, type_, component)

    # ---- running -------------------------------------------------------------------------------------
    def start(self) -> builtins.list[asyncio.Task[None]]:
        tasks = [
            asyncio.create_task(self._pump(w), name=f"{self.name}:watch:{w.resource}") for w in self.watches
        ]
        tasks.append(asyncio.create_task(self._work(), name=f"{self.name}:worker"))
        return tasks

    async def _pump(self, spec: Watch) -> None:
        watch = self.store.watch(self.rt(spec.api_version, spec.resource))
        try:
            while True:
                item = await watch.next_raw()
                if item is None:
                    return
                event_type, obj = item
                if event_type == "ERROR":
                    continue
                try:
                    keys = list(spec.map(self, event_type, obj)) if spec.map else [object_key(obj)]
                except Exception:
                    log.exception("%s: mapping a %s event failed", self.name, spec.resource)
                    continue
                for key in keys:
                    self.queue.add(key)
        finally:
            watch.close()

    async def _work(self) -> None:
        try:
            while True:
                key = await self.queue.get()
                try:
                    delay = await self.reconcile(key)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failures = self._failures.get(key, 0) + 1
                    self._failures[key] = failures
                    if not (isinstance(exc, ApiError) and exc.code in (404, 409)):
                        log.exception("%s: reconciling %s failed (attempt %d)", self.name, key, failures)
                    self.queue.add_after(key, min(_BACKOFF_BASE * 2 ** (failures - 1), _BACKOFF_MAX))
                else:
                    self._failures.pop(key, None)
                    if delay is not None:
                        self.queue.add_after(key, delay)
                finally:
                    self.queue.done(key)
        finally:
            self.queue.close()


async def run_all(controllers: Iterable[Controller]) -> list[asyncio.Task[None]]:
    tasks: list[asyncio.Task[None]] = []
    for controller in controllers:
        tasks.extend(controller.start())
    await asyncio.sleep(0)
    return tasks


async def cancel(tasks: Iterable[asyncio.Task[None]]) -> None:
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
