"""The object store: global resourceVersion, optimistic concurrency, watches, deletion semantics.

Every write replaces the stored dict with a new one (stored objects are never mutated in place), so the
watch history can share them. Methods that hand objects to in-process callers return deep copies.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import random
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from . import _admission, _apply, _patch
from ._errors import ApiError, already_exists, conflict, expired, not_found
from ._schema import deepcopy
from ._selectors import FieldMatcher, Matcher, parse_field_selector, parse_label_selector
from ._types import BUILTIN_TYPES, VIRTUAL_KINDS, ResourceType

if TYPE_CHECKING:
    from ._aggregated import AggregatedApi
    from ._tokens import TokenIssuer

_T = TypeVar("_T")
Obj = dict[str, Any]
ObjList = list[Obj]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
Bucket = tuple[str, str]  # (group, plural)

_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
FOREGROUND_FINALIZER = "foregroundDeletion"
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
ORPHAN_FINALIZER = "orphan"


@dataclass(slots=True)
class _Event:
    rv: int
    bucket: Bucket
    type: str
    obj: Obj
    old: Obj | None


@dataclass
class ListResult:
    items: list[Obj]
    """The stored objects themselves: serialize, never mutate."""
    resource_version: str
    continue_token: str | None
    remaining: int | None


class Watch:
    """A watch subscription: async-iterate it for `(event_type, object)` pairs; `close()` ends it.

    Event types: ADDED, MODIFIED, DELETED, and ERROR (a Status object, e.g. 410 Expired) when resuming from a
    compacted resourceVersion. Objects are copies, safe to mutate.
    """

    def __init__(
        self,
        store: Store,
        rt: ResourceType,
        namespace: str | None,
        labels: Matcher | None,
        fields: FieldMatcher | None,
    ) -> None:
        self._store = store
        self.rt = rt
        self.namespace = namespace
        self._labels = labels
        self._fields = fields
        self.queue: asyncio.Queue[tuple[str, Obj] | None] = asyncio.Queue()
        self.closed = False
        self.last_rv = 0

    def matches(self, obj: Obj) -> bool:
        meta = obj["metadata"]
        if self.namespace and meta.get("namespace") != self.namespace:
            return False
        if self._labels is not None and not self._labels(meta.get("labels") or {}):
            return False
        return self._fields is None or self._fields(obj)

    def _offer(self, event: _Event) -> None:
        new_match = self.matches(event.obj)
        if event.type == "MODIFIED" and event.old is not None:
            # An object that starts or stops matching the selectors is ADDED to or DELETED from this watch.
            old_match = self.matches(event.old)
            if new_match and not old_match:
                self.queue.put_nowait(("ADDED", event.obj))
            elif old_match and not new_match:
                self.queue.put_nowait(("DELETED", event.obj))
            elif new_match:
                self.queue.put_nowait(("MODIFIED", event.obj))
        elif new_match:
            self.queue.put_nowait((event.type, event.obj))
        self.last_rv = event.rv

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._store._unsubscribe(self)
            self.queue.put_nowait(None)

    async def next_raw(self) -> tuple[str, Obj] | None:
        """The next event with the stored object itself (serialize, never mutate); None once closed."""
        if self.closed and self.queue.empty():
            return None
        return await self.queue.get()

    def __aiter__(self) -> AsyncIterator[tuple[str, Obj]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[tuple[str, Obj]]:
        try:
            while True:
                item = await self.next_raw()
                if item is None:
                    return
                yield item[0], deepcopy(item[1])
        finally:
            self.close()


def _meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


class Store:
    """All API objects of the simulated cluster; see the package docstring for the in-process API."""

    def __init__(self, clock: Any, *, history_window: int = 10_000) -> None:
        self.clock = clock
        self._rv = 1000
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._buckets: dict[Bucket, dict[Key, Obj]] = {}
        self._node_ports = 0
        self._history: deque[_Event] = deque(maxlen=history_window)
        self._compacted_rv = self._rv
        self._watches: dict[Bucket, set[Watch]] = {}
        self._dependents: dict[str, set[tuple[Bucket, Key]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.on_types_changed: list[Callable[[], None]] = []
        self._ip_counter = 10
        self.tokens: TokenIssuer | None = None
        self.mutating_admission: list[Callable[[ResourceType, Obj], None]] = []
        """Mutating admission webhooks (an add-on's, e.g. Workload Identity's): called on CREATE before
        validation with the object to mutate in place; an ApiError they raise refuses the request."""
        self.container_runtime: Any = None
        """The core's container runtime (exec, attach, port-forward), set once the kubelets run."""
        self.eviction_check: Callable[..., None] | None = None
        """The disruption rules `pods/eviction` applies before deleting (set by the core's disruption controller):
        `(store, pod, dry_run=) -> None`, raising the ApiError the eviction answers with."""
        self.aggregated: dict[tuple[str, str], AggregatedApi] = {}
        """(group, version) → the extension API server an `APIService` points at (see `_aggregated.py`)."""
        for rt in BUILTIN_TYPES:
            self._add_type(rt)

    # ---- types -----------------------------------------------------------------------------------------
    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def _add_type(self, rt: ResourceType) -> None:
        self._types[(rt.group, rt.version, rt.plural)] = rt
        self._buckets.setdefault(rt.bucket, {})

    def types(self) -> list[ResourceType]:
        return list(self._types.values())

    def resource(self, api_version: str, name: str) -> ResourceType:
        """The served type for `api_version` ("v1", "apps/v1", "kaito.sh/v1beta1") and a plural, kind,
        singular or short name. Raises ApiError 404 when the server does not serve it."""
        group, _, version = api_version.rpartition("/")
        rt = self._types.get((group, version, name))
        if rt is not None:
            return rt
        lowered = name.lower()
        for candidate in self._types.values():
            if (
                candidate.group == group
                and candidate.version == version
                and (
                    candidate.kind == name
                    or candidate.singular == lowered
                    or lowered in candidate.short_names
                )
            ):
                return candidate
        raise ApiError(404, f"the server could not find the requested resource ({name} in {api_version})")

    def find_type(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def storage_type(self, group: str, plural: str) -> ResourceType | None:
        versions = [rt for rt in self._types.values() if rt.group == group and rt.plural == plural]
        for rt in versions:
            if rt.storage:
                return rt
        return versions[0] if versions else None

    # ---- reads -----------------------------------------------------------------------------------------
    @property
    def resource_version(self) -> str:
        return str(self._rv)

    def _bucket(self, rt: ResourceType) -> dict[Key, Obj]:
        return self._buckets.setdefault(rt.bucket, {})

    def _key(self, rt: ResourceType, name: str, namespace: str | None) -> Key:
        return ((namespace or "") if rt.namespaced else "", name)

    def get_raw(self, rt: ResourceType, name: str, namespace: str | None = None) -> Obj:
        obj = self._bucket(rt).get(self._key(rt, name, namespace))
        if obj is None:
            raise not_found(rt.plural, rt.group, name)
        return obj if obj["apiVersion"] == rt.api_version else {**obj, "apiVersion": rt.api_version}

    def get(self, rt: ResourceType, name: str, namespace: str | None = None) -> Obj:
        return deepcopy(self.get_raw(rt, name, namespace))

    def try_get(self, rt: ResourceType, name: str, namespace: str | None = None) -> Obj | None:
        obj = self._bucket(rt).get(self._key(rt, name, namespace))
        return None if obj is None else self.get(rt, name, namespace)

    def list_page(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> ListResult:
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector, rt.field_selectors, rt.kind)
        start_after: Key | None = None
        list_rv = self._rv
        if continue_token:
            try:
                token = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                list_rv = int(token["rv"])
                start_after = (str(token["start"][0]), str(token["start"][1]))
            except (ValueError, KeyError, TypeError, IndexError):
                raise ApiError(
                    400,
                    "continue key is not valid: incorrect encoded start resourceVersion "
                    "(version meta.k8s.io/v1)",
                ) from None
            if list_rv < self._compacted_rv:
                raise expired(
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter, or use the continue "
                    "token in this response to retrieve the remainder of the results. Continuing with "
                    "the provided token results in an inconsistent list - objects that were created, "
                    "modified, or deleted between the time the first chunk was returned and now may "
                    "show up in the list."
                )
        bucket = self._bucket(rt)
        keys = sorted(bucket)
        matched: list[Obj] = []
        remaining = 0
        for key in keys:
            if start_after is not None and key <= start_after:
                continue
            obj = bucket[key]
            if namespace and rt.namespaced and key[0] != namespace:
                continue
            if labels is not None and not labels(_meta(obj).get("labels") or {}):
                continue
            if fields is not None and not fields(obj):
                continue
            if limit and len(matched) >= limit:
                remaining += 1
                continue
            matched.append(
                obj if obj["apiVersion"] == rt.api_version else {**obj, "apiVersion": rt.api_version}
            )
        token_out = None
        if remaining:
            last = matched[-1]["metadata"]
            raw = json.dumps(
                {"rv": list_rv, "start": [last.get("namespace", "") if rt.namespaced else "", last["name"]]}
            )
            token_out = base64.urlsafe_b64encode(raw.encode()).decode()
        return ListResult(matched, str(list_rv), token_out, remaining or None)

    def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        page = self.list_page(rt, namespace, label_selector=label_selector, field_selector=field_selector)
        return [deepcopy(o) for o in page.items]

    # ---- writes ----------------------------------------------------------------------------------------
    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _commit(self, rt: ResourceType, key: Key, obj: Obj | None, old: Obj | None, event_type: str) -> Obj:
        """Store (or remove, when `obj` is None) and notify watchers. Returns the object the event carries."""
        rv = self._next_rv()
        bucket = self._bucket(rt)
        if obj is None:
            assert old is not None
            carried = {**old, "metadata": {**old["metadata"], "resourceVersion": str(rv)}}
            del bucket[key]
        else:
            obj["metadata"]["resourceVersion"] = str(rv)
            bucket[key] = obj
            carried = obj
        self._index_owners(rt.bucket, key, old, obj)
        event = _Event(rv, rt.bucket, event_type, carried, old)
        if len(self._history) == self._history.maxlen:
            self._compacted_rv = self._history[0].rv
        self._history.append(event)
        for watch in tuple(self._watches.get(rt.bucket, ())):
            watch._offer(event)
        return carried

    def _index_owners(self, bucket: Bucket, key: Key, old: Obj | None, new: Obj | None) -> None:
        if old is not None:
            for ref in _meta(old).get("ownerReferences") or []:
                deps = self._dependents.get(ref.get("uid", ""))
                if deps is not None:
                    deps.discard((bucket, key))
                    if not deps:
                        del self._dependents[ref.get("uid", "")]
        if new is not None:
            for ref in _meta(new).get("ownerReferences") or []:
                self._dependents.setdefault(ref.get("uid", ""), set()).add((bucket, key))

    def _check_namespace(self, rt: ResourceType, namespace: str, name: str) -> None:
        if not rt.namespaced:
            return
        ns = self._buckets[("", "namespaces")].get(("", namespace))
        if ns is None:
            raise not_found("namespaces", "", namespace)
        if ns.get("status", {}).get("phase") == "Terminating":
            raise ApiError(
                403,
                f'{rt.group_resource} "{name}" is forbidden: unable to create new content in namespace '
                f"{namespace} because it is being terminated",
                details={
                    "name": name,
                    "kind": rt.plural,
                    "causes": [
                        {
                            "reason": "NamespaceTerminating",
                            "message": f"namespace {namespace} is being terminated",
                            "field": "metadata.namespace",
                        }
                    ],
                },
            )

    def create(
        self, rt: ResourceType, obj: Mapping[str, Any], *, namespace: str | None = None, dry_run: bool = False
    ) -> Obj:
        """Create; returns the stored object (a copy). 409 AlreadyExists, 404 for a missing namespace, 422."""
        return deepcopy(self.create_raw(rt, cast(Obj, deepcopy(obj)), namespace=namespace, dry_run=dry_run))

    def create_raw(
        self, rt: ResourceType, obj: Obj, *, namespace: str | None = None, dry_run: bool = False
    ) -> Obj:
        """Like `create`, but takes ownership of `obj` and returns the stored object itself."""
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata", {}), dict):
            raise ApiError(400, "the body of the request was not a JSON object")
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if namespace and body_ns and body_ns != namespace:
                raise ApiError(
                    400,
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            namespace = namespace or body_ns or "default"
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
            namespace = ""
        kind = obj.get("kind")
        if kind and kind != rt.kind:
            raise ApiError(
                400,
                f"the API version in the data ({obj.get('apiVersion')}) does not match the expected "
                f"API version ({rt.api_version})"
                if obj.get("apiVersion") != rt.api_version
                else f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})",
            )
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(_GENERATE_ALPHABET, k=5))
        if rt.kind in VIRTUAL_KINDS:
            return _admission.answer_review(self, rt, obj)
        for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self.clock.timestamp()
        if rt.has_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        for webhook in self.mutating_admission:
            webhook(rt, obj)
        _admission.admit(self, rt, obj, None)
        name = meta["name"]
        self._check_namespace(rt, namespace, name)
        key = (namespace, name)
        if key in self._bucket(rt):
            raise already_exists(rt.plural, rt.group, name)
        if dry_run:
            return obj
        stored = self._commit(rt, key, obj, None, "ADDED")
        _admission.after_create(self, rt, stored)
        return stored

    def update(
        self,
        rt: ResourceType,
        obj: Mapping[str, Any],
        *,
        namespace: str | None = None,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """PUT semantics: replace the object; a `metadata.resourceVersion` that is not the current one → 409.
        `subresource="status"` changes only `status`; otherwise `status` is kept when the type has a status
        subresource."""
        return deepcopy(
            self.update_raw(
                rt, cast(Obj, deepcopy(obj)), namespace=namespace, subresource=subresource, dry_run=dry_run
            )
        )

    def update_status(self, rt: ResourceType, obj: Mapping[str, Any], *, namespace: str | None = None) -> Obj:
        return self.update(rt, obj, namespace=namespace, subresource="status")

    def update_raw(
        self,
        rt: ResourceType,
        obj: Obj,
        *,
        namespace: str | None = None,
        subresource: str | None = None,
        dry_run: bool = False,
        name: str | None = None,
        create_missing: bool = False,
        field_manager: str | None = None,
    ) -> Obj:
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            raise ApiError(400, "the body of the request was not a JSON object with metadata")
        body_name = meta.get("name") or ""
        name = name or body_name
        if body_name and body_name != name:
            raise ApiError(
                400, f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        if rt.namespaced:
            namespace = namespace or meta.get("namespace") or "default"
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise ApiError(
                    400,
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
        key = self._key(rt, name, namespace)
        old = self._bucket(rt).get(key)
        if old is None:
            if create_missing and subresource is None:
                meta["name"] = name
                return self.create_raw(rt, obj, namespace=namespace, dry_run=dry_run)
            raise not_found(rt.plural, rt.group, name)
        given_rv = meta.get("resourceVersion")
        if given_rv and given_rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt.plural, rt.group, name)
        new = self._merge_update(rt, old, obj, subresource)
        if field_manager:
            _apply.record_update(old, new, field_manager, self.clock.timestamp())
        _admission.admit(self, rt, new, old)
        return self._finish_update(rt, key, old, new, dry_run)

    def _merge_update(self, rt: ResourceType, old: Obj, obj: Obj, subresource: str | None) -> Obj:
        old_meta = old["metadata"]
        if subresource == "status":
            new = {**old, "status": obj.get("status", {})}
            new["metadata"] = dict(old_meta)
            new = deepcopy(new)
            return new
        new = obj
        new["apiVersion"] = rt.api_version
        new["kind"] = rt.kind
        meta = new["metadata"]
        if "managedFields" not in meta and "managedFields" in old_meta:
            meta["managedFields"] = old_meta["managedFields"]
        for field in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "namespace",
            "name",
        ):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        if "status" in rt.subresources:
            if "status" in old:
                new["status"] = deepcopy(old["status"])
            else:
                new.pop("status", None)
        if rt.has_generation:
            before = {k: v for k, v in old.items() if k not in ("metadata", "status", "apiVersion", "kind")}
            after = {k: v for k, v in new.items() if k not in ("metadata", "status", "apiVersion", "kind")}
            if before != after:
                meta["generation"] = int(old_meta.get("generation", 1)) + 1
        return new

    def _finish_update(self, rt: ResourceType, key: Key, old: Obj, new: Obj, dry_run: bool) -> Obj:
        if dry_run:
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            return new
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._remove(rt, key, new)
        if _strip_volatile(old) == _strip_volatile(new):
            return old  # a no-op write does not bump resourceVersion, as on a real server
        stored = self._commit(rt, key, new, old, "MODIFIED")
        _admission.after_update(self, rt, stored, old)
        return stored

    def patch(
        self,
        rt: ResourceType,
        name: str,
        patch: Any,
        patch_type: str = "merge",
        *,
        namespace: str | None = None,
        subresource: str | None = None,
        field_manager: str | None = None,
        dry_run: bool = False,
        force: bool = False,
    ) -> Obj:
        """Patch types: "merge" (RFC 7386), "strategic", "json" (RFC 6902), "apply" (server-side apply:
        creates when absent)."""
        return deepcopy(
            self.patch_raw(
                rt,
                name,
                patch,
                patch_type,
                namespace=namespace,
                subresource=subresource,
                field_manager=field_manager,
                dry_run=dry_run,
                force=force,
            )
        )

    def patch_raw(
        self,
        rt: ResourceType,
        name: str,
        patch: Any,
        patch_type: str,
        *,
        namespace: str | None = None,
        subresource: str | None = None,
        field_manager: str | None = None,
        dry_run: bool = False,
        force: bool = False,
    ) -> Obj:
        key = self._key(rt, name, namespace)
        old = self._bucket(rt).get(key)
        if patch_type == "apply":
            if not field_manager:
                raise ApiError(400, "PATCH, application/apply-patch+yaml requires fieldManager to be set")
            if not isinstance(patch, dict):
                raise ApiError(400, "apply patch must be a YAML or JSON object")
            raw_meta = patch.get("metadata")
            applied_meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
            if rt.namespaced and applied_meta.get("namespace") and applied_meta["namespace"] != namespace:
                raise ApiError(
                    400,
                    "the namespace of the provided object does not match the namespace sent on the request",
                    reason="BadRequest",
                )
            if applied_meta.get("name") and applied_meta["name"] != name:
                raise ApiError(
                    400,
                    f"the name of the object ({applied_meta['name']}) does not match the name on the URL ({name})",
                    reason="BadRequest",
                )
            if old is None:
                if subresource:
                    raise not_found(rt.plural, rt.group, name)
                body = deepcopy(patch)
                body.setdefault("metadata", {})["name"] = name
                if rt.namespaced:
                    body["metadata"]["namespace"] = namespace
                body.setdefault("metadata", {})["managedFields"] = [
                    {
                        "manager": field_manager,
                        "operation": "Apply",
                        "apiVersion": rt.api_version,
                        "time": self.clock.timestamp(),
                        "fieldsType": "FieldsV1",
                        "fieldsV1": _apply.encode(_apply.field_set(patch)),
                    }
                ]
                return self.create_raw(rt, body, namespace=namespace, dry_run=dry_run)
        if old is None:
            raise not_found(rt.plural, rt.group, name)
        current = deepcopy(
            old if old["apiVersion"] == rt.api_version else {**old, "apiVersion": rt.api_version}
        )
        patched = _patch.apply_patch(rt, current, patch, patch_type)
        if patch_type == "apply" and field_manager:
            patched = _apply.apply(current, patch, patched, field_manager, force)
            for entry in patched["metadata"]["managedFields"]:
                if entry["manager"] == field_manager and entry["operation"] == "Apply":
                    entry["time"] = self.clock.timestamp()
        if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
            raise ApiError(422, "patched object is not an object with metadata")
        if patched["metadata"].get("name", name) != name:
            raise ApiError(
                400,
                f"the name of the object ({patched['metadata'].get('name')}) does not match the "
                f"name on the URL ({name})",
            )
        given_rv = patched["metadata"].get("resourceVersion")
        if given_rv and given_rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt.plural, rt.group, name)
        new = self._merge_update(rt, old, patched, subresource)
        if field_manager and patch_type != "apply":
            _apply.record_update(old, new, field_manager, self.clock.timestamp())
        _admission.admit(self, rt, new, old)
        return self._finish_update(rt, key, old, new, dry_run)

    # ---- deletion --------------------------------------------------------------------------------------
    def delete(
        self,
        rt: ResourceType,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: Mapping[str, str] | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Delete with finalizers, graceful pod deletion and ownerReference garbage collection.

        Returns the object as of the deletion: removed (the DELETED event's object), or still present with
        `metadata.deletionTimestamp` set (finalizers pending, foreground deletion, pods bound to a node, or a
        namespace that is Terminating)."""
        return deepcopy(
            self.delete_raw(
                rt,
                name,
                namespace,
                propagation_policy=propagation_policy,
                grace_period_seconds=grace_period_seconds,
                preconditions=preconditions,
                dry_run=dry_run,
            )
        )

    def delete_raw(
        self,
        rt: ResourceType,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: Mapping[str, str] | None = None,
        dry_run: bool = False,
    ) -> Obj:
        key = self._key(rt, name, namespace)
        old = self._bucket(rt).get(key)
        if old is None:
            raise not_found(rt.plural, rt.group, name)
        meta = old["metadata"]
        if preconditions:
            if preconditions.get("uid") and preconditions["uid"] != meta["uid"]:
                raise ApiError(
                    409,
                    f"Precondition failed: UID in precondition: {preconditions['uid']}, UID in "
                    f"object meta: {meta['uid']}",
                    reason="Conflict",
                )
            if (
                preconditions.get("resourceVersion")
                and preconditions["resourceVersion"] != meta["resourceVersion"]
            ):
                raise ApiError(
                    409,
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{preconditions['resourceVersion']}, ResourceVersion in object meta: "
                    f"{meta['resourceVersion']}",
                    reason="Conflict",
                )
        if propagation_policy not in (None, "Background", "Foreground", "Orphan"):
            raise ApiError(
                422,
                f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: '
                f'"{propagation_policy}": supported values: "Foreground", "Background", "Orphan", '
                "nil",
                reason="Invalid",
            )
        if dry_run:
            return old
        if rt.bucket == ("", "namespaces"):
            if key[1] in PROTECTED_NAMESPACES:
                raise ApiError(
                    403,
                    f'namespaces "{key[1]}" is forbidden: this namespace may not be deleted',
                    details={"name": key[1], "kind": "namespaces"},
                )
            return self._terminate_namespace(rt, key, old)
        if propagation_policy == "Orphan":
            self._orphan_dependents(meta["uid"])
        finalizers = list(meta.get("finalizers") or [])
        if (
            propagation_policy == "Foreground"
            and self._dependents.get(meta["uid"])
            and FOREGROUND_FINALIZER not in finalizers
        ):
            finalizers.append(FOREGROUND_FINALIZER)
        if finalizers:
            if meta.get("deletionTimestamp") and finalizers == meta.get("finalizers"):
                return old
            new = {
                **old,
                "metadata": {
                    **meta,
                    "finalizers": finalizers,
                    "deletionTimestamp": meta.get("deletionTimestamp") or self.clock.timestamp(),
                    "deletionGracePeriodSeconds": 0,
                },
            }
            stored = self._commit(rt, key, new, old, "MODIFIED")
            if FOREGROUND_FINALIZER in finalizers:
                self._schedule(lambda: self._collect_dependents(meta["uid"]))
            return stored
        if rt.bucket == ("", "pods") and (old.get("spec") or {}).get("nodeName"):
            grace = grace_period_seconds
            if grace is None:
                grace = int((old.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
            if grace > 0 and old.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
                return self._graceful_pod_delete(rt, key, old, grace)
        return self._remove(rt, key, old)

    def _graceful_pod_delete(self, rt: ResourceType, key: Key, old: Obj, grace: int) -> Obj:
        meta = old["metadata"]
        if meta.get("deletionTimestamp") and int(meta.get("deletionGracePeriodSeconds", grace)) <= grace:
            return old
        when = self.clock.now().timestamp() + grace
        stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        new = {**old, "metadata": {**meta, "deletionTimestamp": stamp, "deletionGracePeriodSeconds": grace}}
        stored = self._commit(rt, key, new, old, "MODIFIED")
        uid = meta["uid"]

        def _expire() -> None:
            current = self._bucket(rt).get(key)
            if (
                current is not None
                and current["metadata"]["uid"] == uid
                and not current["metadata"].get("finalizers")
            ):
                self._remove(rt, key, current)

        if self._loop is not None:
            self._loop.call_later(self.clock.wall_seconds(grace), _expire)
        return stored

    def _remove(self, rt: ResourceType, key: Key, old: Obj) -> Obj:
        carried = self._commit(rt, key, None, old, "DELETED")
        uid = old["metadata"]["uid"]
        if uid in self._dependents:
            self._schedule(lambda: self._collect_dependents(uid))
        _admission.after_delete(self, rt, carried)
        namespace = key[0]
        if namespace:
            ns = self._buckets[("", "namespaces")].get(("", namespace))
            if ns is not None and ns.get("status", {}).get("phase") == "Terminating":
                self._schedule(lambda: self._finish_namespace(namespace))
        for owner_ref in _meta(old).get("ownerReferences") or []:
            self._schedule(functools.partial(self._check_foreground_owner, owner_ref))
        return carried

    def _schedule(self, fn: Callable[[], None]) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon(fn)
        else:
            fn()

    def _find_by_uid(self, uid: str) -> tuple[ResourceType, Key, Obj] | None:
        for (group, plural), bucket in self._buckets.items():
            for key, obj in bucket.items():
                if obj["metadata"]["uid"] == uid:
                    rt = self.storage_type(group, plural)
                    if rt is not None:
                        return rt, key, obj
        return None

    def _owner_exists(self, ref: Mapping[str, Any], namespace: str) -> bool:
        api_version, kind = ref.get("apiVersion", ""), ref.get("kind", "")
        try:
            rt = self.resource(api_version, kind)
        except ApiError:
            return False
        obj = self._bucket(rt).get(self._key(rt, ref.get("name", ""), namespace))
        return obj is not None and obj["metadata"]["uid"] == ref.get("uid")

    def _collect_dependents(self, owner_uid: str) -> None:
        """Garbage collection of the dependents of a deleted (or foreground-deleting) owner."""
        for bucket, key in list(self._dependents.get(owner_uid, ())):
            rt = self.storage_type(*bucket)
            dep = self._buckets.get(bucket, {}).get(key)
            if rt is None or dep is None:
                continue
            refs = dep["metadata"].get("ownerReferences") or []
            remaining = [r for r in refs if r.get("uid") != owner_uid and self._owner_exists(r, key[0])]
            owner_deleting = self._uid_is_foreground_deleting(owner_uid)
            if remaining and not owner_deleting:
                new = {**dep, "metadata": {**dep["metadata"], "ownerReferences": remaining}}
                self._commit(rt, key, new, dep, "MODIFIED")
                continue
            if dep["metadata"].get("deletionTimestamp"):
                continue
            try:
                self.delete_raw(
                    rt,
                    key[1],
                    key[0] or None,
                    propagation_policy="Foreground" if owner_deleting else "Background",
                )
            except ApiError:
                continue

    def _uid_is_foreground_deleting(self, uid: str) -> bool:
        found = self._find_by_uid(uid)
        return found is not None and FOREGROUND_FINALIZER in (found[2]["metadata"].get("finalizers") or [])

    def _check_foreground_owner(self, ref: Mapping[str, Any]) -> None:
        uid = ref.get("uid", "")
        if self._dependents.get(uid):
            return
        found = self._find_by_uid(uid)
        if found is None:
            return
        rt, key, owner = found
        finalizers = owner["metadata"].get("finalizers") or []
        if FOREGROUND_FINALIZER in finalizers and owner["metadata"].get("deletionTimestamp"):
            rest = [f for f in finalizers if f != FOREGROUND_FINALIZER]
            new = {**owner, "metadata": {**owner["metadata"], "finalizers": rest}}
            if rest:
                self._commit(rt, key, new, owner, "MODIFIED")
            else:
                self._remove(rt, key, new)

    def _orphan_dependents(self, owner_uid: str) -> None:
        for bucket, key in list(self._dependents.get(owner_uid, ())):
            rt = self.storage_type(*bucket)
            dep = self._buckets.get(bucket, {}).get(key)
            if rt is None or dep is None:
                continue
            refs = [r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") != owner_uid]
            meta = {**dep["metadata"], "ownerReferences": refs}
            if not refs:
                del meta["ownerReferences"]
            self._commit(rt, key, {**dep, "metadata": meta}, dep, "MODIFIED")

    def _terminate_namespace(self, rt: ResourceType, key: Key, old: Obj) -> Obj:
        if old.get("status", {}).get("phase") == "Terminating":
            return old
        new = {
            **old,
            "metadata": {
                **old["metadata"],
                "deletionTimestamp": self.clock.timestamp(),
                "deletionGracePeriodSeconds": 0,
            },
            "status": {**old.get("status", {}), "phase": "Terminating"},
        }
        stored = self._commit(rt, key, new, old, "MODIFIED")
        namespace = key[1]
        self._schedule(lambda: self._empty_namespace(namespace))
        return stored

    def _empty_namespace(self, namespace: str) -> None:
        for (group, plural), bucket in list(self._buckets.items()):
            rt = self.storage_type(group, plural)
            if rt is None or not rt.namespaced:
                continue
            for key in [k for k in bucket if k[0] == namespace]:
                obj = bucket.get(key)
                if obj is None or obj["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    self.delete_raw(rt, key[1], namespace)
                except ApiError:
                    continue
        self._finish_namespace(namespace)

    def _finish_namespace(self, namespace: str) -> None:
        ns_bucket = self._buckets[("", "namespaces")]
        ns = ns_bucket.get(("", namespace))
        if ns is None or ns.get("status", {}).get("phase") != "Terminating":
            return
        for bucket in self._buckets.values():
            if any(k[0] == namespace for k in bucket):
                return
        rt = self.storage_type("", "namespaces")
        assert rt is not None
        new = {**ns, "spec": {**ns.get("spec", {}), "finalizers": []}}
        if ns["metadata"].get("finalizers"):
            self._commit(rt, ("", namespace), new, ns, "MODIFIED")
        else:
            self._remove(rt, ("", namespace), new)

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        propagation_policy: str | None = None,
        dry_run: bool = False,
    ) -> ObjList:
        page = self.list_page(rt, namespace, label_selector=label_selector, field_selector=field_selector)
        out = []
        for obj in list(page.items):
            meta = obj["metadata"]
            try:
                out.append(
                    self.delete_raw(
                        rt,
                        meta["name"],
                        meta.get("namespace"),
                        propagation_policy=propagation_policy,
                        dry_run=dry_run,
                    )
                )
            except ApiError:
                continue
        return out

    # ---- watch -----------------------------------------------------------------------------------------
    def watch(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
    ) -> Watch:
        """Subscribe. `resource_version` None or "0": synthetic ADDED events for the current objects first;
        "N": every change after N (a compacted N raises ApiError 410 Expired)."""
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector, rt.field_selectors, rt.kind)
        watch = Watch(self, rt, namespace if rt.namespaced else None, labels, fields)
        if resource_version in (None, "", "0"):
            for obj in self._bucket(rt).values():
                if watch.matches(obj):
                    watch.queue.put_nowait(("ADDED", obj))
            watch.last_rv = self._rv
        else:
            try:
                since = int(resource_version)
            except ValueError:
                raise ApiError(400, f"invalid resource version: {resource_version!r}") from None
            if since < self._compacted_rv:
                raise expired(f"too old resource version: {since} ({self._compacted_rv + 1})")
            for event in self._history:
                if event.rv > since and event.bucket == rt.bucket:
                    watch._offer(event)
            watch.last_rv = max(since, watch.last_rv)
        self._watches.setdefault(rt.bucket, set()).add(watch)
        return watch

    def _unsubscribe(self, watch: Watch) -> None:
        self._watches.get(watch.rt.bucket, set()).discard(watch)

    def close_all_watches(self) -> None:
        for watches in list(self._watches.values()):
            for watch in list(watches):
                watch.close()

    # ---- CRDs ------------------------------------------------------------------------------------------
    def register_types(self, group: str, plural: str, types: Iterable[ResourceType]) -> None:
        for k in [k for k, rt in self._types.items() if rt.group == group and rt.plural == plural]:
            del self._types[k]
        for rt in types:
            self._add_type(rt)
        for callback in self.on_types_changed:
            callback()

    def register_aggregated(self, api: AggregatedApi) -> None:
        """Serve `api`'s types from the add-on behind it (kube-aggregator's proxying)."""
        self.aggregated[(api.group, api.version)] = api
        for rt in api.types():
            self.register_types(rt.group, rt.plural, [rt])

    def unregister_aggregated(self, api: AggregatedApi) -> None:
        if self.aggregated.get((api.group, api.version)) is api:
            del self.aggregated[(api.group, api.version)]
            for rt in api.types():
                self.register_types(rt.group, rt.plural, [])

    def unregister_types(self, group: str, plural: str) -> None:
        bucket = self._buckets.get((group, plural), {})
        rt = self.storage_type(group, plural)
        if rt is not None:
            for key, obj in list(bucket.items()):
                self._remove(rt, key, obj)
        self.register_types(group, plural, [])
        self._buckets.pop((group, plural), None)

    def allocate_node_port(self) -> int:
        """A free port of the default NodePort range (30000-32767), as the service allocator gives one."""
        services = self._buckets.get(("", "services"), {})
        used = {
            int(p["nodePort"])
            for svc in services.values()
            for p in (svc.get("spec") or {}).get("ports") or []
            if p.get("nodePort")
        }
        while True:
            self._node_ports += 1
            candidate = 30000 + (self._node_ports * 7919) % 2768  # spread like the random allocator
            if candidate not in used:
                return candidate

    def allocate_cluster_ip(self) -> str:
        self._ip_counter += 1
        return f"10.0.{self._ip_counter // 250}.{self._ip_counter % 250 + 1}"


def _strip_volatile(obj: Obj) -> Obj:
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k not in ("resourceVersion", "managedFields")}
    return {**obj, "metadata": meta}
