"""The REST API over aiohttp: routing, content negotiation, CRUD, subresources, watch streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import yaml
from aiohttp import web

from . import _aggregated, _discovery, _knownfields, _openapi, _protobuf, _tables
from ._errors import ApiError, invalid, method_not_allowed
from ._store import Obj, Store, Watch
from ._streams import StreamHandlers
from ._types import ResourceType

if TYPE_CHECKING:
    from ._server import ApiServer

_JSON = "application/json"
_PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/json-patch+json": "json",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply-cbor",
}
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Go's json.Encoder, which the API server writes with, ends every document with a newline.
    return web.Response(
        body=_dumps(body).encode() + b"\n", status=status, content_type=_JSON, headers=headers
    )


def error_response(error: ApiError) -> web.Response:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
    return json_response(error.status(), error.code, headers)


class _Route:
    __slots__ = ("name", "namespace", "rest", "rt", "subresource")

    def __init__(
        self, rt: ResourceType, namespace: str | None, name: str | None, subresource: str | None, rest: str
    ) -> None:
        self.rt = rt
        self.namespace = namespace
        self.name = name
        self.subresource = subresource
        self.rest = rest


def _bool(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


def _include(request: web.Request) -> str:
    return request.query.get("includeObject") or "Metadata"


def _wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


class Handlers:
    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.store: Store = server.store
        self.streams = StreamHandlers(server)
        self._lines: dict[tuple[int, str, str], tuple[Obj, bytes]] = {}

    # ---- routing ---------------------------------------------------------------------------------------
    def _route(self, group: str, version: str, path: str) -> tuple[_Route, bool]:
        segments = [s for s in path.split("/")]
        legacy_watch = False
        if segments and segments[0] == "watch":
            legacy_watch = True
            segments = segments[1:]
        if not segments or not segments[0]:
            raise ApiError(404, "the server could not find the requested resource")
        namespace = None
        if segments[0] == "namespaces" and len(segments) >= 3 and segments[2] not in ("status", "finalize"):
            namespace = segments[1]
            segments = segments[2:]
        plural, name_part = segments[0], segments[1] if len(segments) > 1 else None
        sub = segments[2] if len(segments) > 2 else None
        rest = "/".join(segments[3:]) if len(segments) > 3 else ""
        rt = self.store.find_type(group, version, plural)
        if rt is None:
            raise ApiError(404, "the server could not find the requested resource")
        if namespace is not None and not rt.namespaced:
            raise ApiError(404, "the server could not find the requested resource")
        if sub is not None and sub not in rt.subresources:
            raise ApiError(404, "the server could not find the requested resource")
        if sub is not None and sub != "proxy" and rest:
            raise ApiError(404, "the server could not find the requested resource")
        return _Route(rt, namespace, name_part or None, sub, rest), legacy_watch

    async def core(self, request: web.Request) -> web.StreamResponse:
        return await self._dispatch(request, "", "v1", request.match_info["path"])

    async def grouped(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        return await self._dispatch(request, info["group"], info["version"], info["path"])

    async def _dispatch(
        self, request: web.Request, group: str, version: str, path: str
    ) -> web.StreamResponse:
        try:
            route, legacy_watch = self._route(group, version, path)
            self.server.authorize(request, route.rt, route.namespace, route.name, route.subresource)
            if route.rt.extra.get(_aggregated.AGGREGATED):
                return _aggregated.serve(
                    self.store, request, route.rt, route.namespace, route.name, _wants_table(request)
                )
            if route.subresource:
                return await self._subresource(request, route)
            method = request.method
            if route.name is None:
                if method == "GET":
                    if legacy_watch or _bool(request.query.get("watch")):
                        return await self._watch(request, route)
                    return self._list(request, route)
                if method == "POST":
                    return await self._create(request, route)
                if method == "DELETE":
                    return await self._delete_collection(request, route)
                raise method_not_allowed()
            if legacy_watch and method == "GET":
                return await self._watch(request, route, single=route.name)
            if method == "GET":
                return self._get(request, route)
            if method == "PUT":
                return await self._update(request, route)
            if method == "PATCH":
                return await self._patch(request, route)
            if method == "DELETE":
                return await self._delete(request, route)
            raise method_not_allowed()
        except ApiError as error:
            return error_response(error)

    # ---- bodies ----------------------------------------------------------------------------------------
    async def _body(self, request: web.Request) -> Any:
        ctype = request.content_type
        raw = await request.read()
        if "protobuf" in ctype:
            # kubectl's imperative generators (`kubectl create namespace|configmap|deployment ...`) send protobuf.
            return _protobuf.decode(raw, ctype)
        if "cbor" in ctype:
            raise ApiError(
                415,
                f"the body of the request was in an unknown format ({ctype}) - accepted media types "
                "include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
            )
        try:
            if ctype.endswith("yaml"):
                return yaml.safe_load(raw.decode() or "null")
            return json.loads(raw or b"null")
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError(400, f"error decoding request body: {exc}") from None

    def _obj_response(
        self, request: web.Request, rt: ResourceType, obj: Obj, status: int = 200
    ) -> web.Response:
        if _wants_table(request):
            return json_response(_tables.table(rt, [obj], self.store.clock, None, _include(request)), status)
        return json_response(obj, status)

    # ---- verbs -----------------------------------------------------------------------------------------
    def _list(self, request: web.Request, route: _Route) -> web.Response:
        q = request.query
        limit_text = q.get("limit")
        try:
            limit = int(limit_text) if limit_text else None
        except ValueError:
            raise ApiError(400, f"invalid limit: {limit_text!r}") from None
        rt = route.rt
        page = self.store.list_page(
            rt,
            route.namespace,
            label_selector=q.get("labelSelector"),
            field_selector=q.get("fieldSelector"),
            limit=limit,
            continue_token=q.get("continue"),
        )
        meta: dict[str, Any] = {"resourceVersion": page.resource_version}
        if page.continue_token:
            meta["continue"] = page.continue_token
            meta["remainingItemCount"] = page.remaining
        if _wants_table(request):
            return json_response(_tables.table(rt, page.items, self.store.clock, meta, _include(request)))
        return json_response(
            {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": page.items}
        )

    def _get(self, request: web.Request, route: _Route) -> web.Response:
        assert route.name is not None
        obj = self.store.get_raw(route.rt, route.name, route.namespace)
        return self._obj_response(request, route.rt, obj)

    def _check_dry_run(self, request: web.Request) -> bool:
        values = request.query.getall("dryRun", [])
        for value in values:
            if value != "All":
                raise ApiError(
                    400, f'Invalid dryRun value: "{value}": supported values: "All"', reason="BadRequest"
                )
        return bool(values)

    def _field_validation(self, request: web.Request, rt: ResourceType, body: Any) -> list[str]:
        """`fieldValidation`: Strict answers 400 for unknown fields; Warn (the default) and Ignore drop them,
        Warn with a `Warning` header each (returned). Custom resources: their schema; built-in kinds: the
        fields the upstream OpenAPI declares."""
        mode = request.query.get("fieldValidation") or "Warn"
        if mode not in ("Strict", "Warn", "Ignore"):
            raise ApiError(
                400,
                f'fieldValidation parameter unsupported: "{mode}"; supported values: "Ignore", '
                '"Strict", "Warn"',
            )
        if rt.custom:
            unknown = _unknown_fields(body, rt.schema, "") if rt.schema else []
        else:
            unknown = _knownfields.unknown_fields(rt, body)
        if not unknown:
            return []
        if mode == "Strict":
            joined = ", ".join(f'unknown field "{f}"' for f in unknown)
            raise ApiError(
                400,
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"strict decoding error: {joined}",
            )
        if not rt.custom:
            _knownfields.prune(rt, body, unknown)
        return [] if mode == "Ignore" else [f'299 - "unknown field \\"{f}\\""' for f in unknown]

    async def _create(self, request: web.Request, route: _Route) -> web.Response:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request was not a JSON object")
        dry_run = self._check_dry_run(request)
        warnings = self._field_validation(request, route.rt, body)
        if route.rt.kind in ("SelfSubjectReview", "SelfSubjectAccessReview", "SelfSubjectRulesReview"):
            return json_response(self.server.self_review(request, route.rt, body), 201)
        obj = self.store.create_raw(route.rt, body, namespace=route.namespace, dry_run=dry_run)
        return _warn(self._obj_response(request, route.rt, obj, 201), warnings)

    async def _update(
        self, request: web.Request, route: _Route, subresource: str | None = None
    ) -> web.Response:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request was not a JSON object")
        dry_run = self._check_dry_run(request)
        warnings = self._field_validation(request, route.rt, body)
        assert route.name is not None
        existed = self.store.try_get(route.rt, route.name, route.namespace) is not None
        obj = self.store.update_raw(
            route.rt,
            body,
            namespace=route.namespace,
            subresource=subresource,
            dry_run=dry_run,
            name=route.name,
            field_manager=_manager(request),
        )
        return _warn(self._obj_response(request, route.rt, obj, 200 if existed else 201), warnings)

    def _patch_type(self, request: web.Request) -> str:
        patch_type = _PATCH_TYPES.get(request.content_type)
        if patch_type is None or patch_type == "apply-cbor":
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml",
            )
        return patch_type

    async def _patch(
        self, request: web.Request, route: _Route, subresource: str | None = None
    ) -> web.Response:
        patch_type = self._patch_type(request)
        body = await self._body(request)
        dry_run = self._check_dry_run(request)
        warnings = self._field_validation(request, route.rt, body) if patch_type == "apply" else []
        assert route.name is not None
        existed = self.store.try_get(route.rt, route.name, route.namespace) is not None
        obj = self.store.patch_raw(
            route.rt,
            route.name,
            body,
            patch_type,
            namespace=route.namespace,
            subresource=subresource,
            field_manager=request.query.get("fieldManager") if patch_type == "apply" else _manager(request),
            dry_run=dry_run,
            force=_bool(request.query.get("force")),
        )
        return _warn(self._obj_response(request, route.rt, obj, 200 if existed else 201), warnings)

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if request.can_read_body:
            body = await self._body(request)
            if isinstance(body, dict):
                options.update(body)
        q = request.query
        if "propagationPolicy" in q:
            options["propagationPolicy"] = q["propagationPolicy"]
        if "gracePeriodSeconds" in q:
            options["gracePeriodSeconds"] = q["gracePeriodSeconds"]
        if options.get("orphanDependents") is True or _bool(q.get("orphanDependents")):
            options.setdefault("propagationPolicy", "Orphan")
        if "gracePeriodSeconds" in options and options["gracePeriodSeconds"] is not None:
            try:
                options["gracePeriodSeconds"] = int(options["gracePeriodSeconds"])
            except (TypeError, ValueError):
                raise ApiError(400, "invalid gracePeriodSeconds") from None
        return options

    async def _delete(self, request: web.Request, route: _Route) -> web.Response:
        options = await self._delete_options(request)
        dry_run = self._check_dry_run(request) or options.get("dryRun") == ["All"]
        assert route.name is not None
        obj = self.store.delete_raw(
            route.rt,
            route.name,
            route.namespace,
            propagation_policy=options.get("propagationPolicy"),
            grace_period_seconds=options.get("gracePeriodSeconds"),
            preconditions=options.get("preconditions"),
            dry_run=dry_run,
        )
        still_there = (
            bool(obj["metadata"].get("deletionTimestamp"))
            and self.store.try_get(route.rt, route.name, route.namespace) is not None
        )
        return self._obj_response(request, route.rt, obj, 202 if still_there else 200)

    async def _delete_collection(self, request: web.Request, route: _Route) -> web.Response:
        options = await self._delete_options(request)
        q = request.query
        deleted = self.store.delete_collection(
            route.rt,
            route.namespace,
            label_selector=q.get("labelSelector"),
            field_selector=q.get("fieldSelector"),
            propagation_policy=options.get("propagationPolicy"),
            dry_run=self._check_dry_run(request),
        )
        return json_response(
            {
                "kind": route.rt.list_kind,
                "apiVersion": route.rt.api_version,
                "metadata": {"resourceVersion": self.store.resource_version},
                "items": deleted,
            }
        )

    # ---- watch -----------------------------------------------------------------------------------------
    async def _watch(
        self, request: web.Request, route: _Route, single: str | None = None
    ) -> web.StreamResponse:
        q = request.query
        field_selector = q.get("fieldSelector")
        if single:
            field_selector = f"metadata.name={single}" + (f",{field_selector}" if field_selector else "")
        try:
            timeout = float(q.get("timeoutSeconds") or 1800)
        except ValueError:
            raise ApiError(400, f"invalid timeoutSeconds: {q.get('timeoutSeconds')!r}") from None
        bookmarks = _bool(q.get("allowWatchBookmarks"))
        send_initial = _bool(q.get("sendInitialEvents"))
        table = _wants_table(request)
        rt = route.rt
        error: ApiError | None = None
        watch: Watch | None = None
        rv = q.get("resourceVersion")
        try:
            watch = self.store.watch(
                rt,
                route.namespace,
                label_selector=q.get("labelSelector"),
                field_selector=field_selector,
                resource_version=None if send_initial else rv,
            )
        except ApiError as exc:
            if exc.code != 410:
                raise
            error = exc
        response = web.StreamResponse(
            status=200, headers={"Content-Type": _JSON, "Cache-Control": "no-cache"}
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        if error is not None or watch is None:
            await response.write(
                _dumps({"type": "ERROR", "object": error.status() if error else {}}).encode() + b"\n"
            )
            return response
        server = self.server
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        interval = server.bookmark_interval
        next_bookmark = loop.time() + interval
        initial_pending = send_initial
        try:
            server.watches.add(watch)
            while True:
                if watch.queue.empty():
                    if initial_pending and bookmarks:
                        initial_pending = False
                        await response.write(self._bookmark(rt, watch, initial_end=True))
                        continue
                    now = loop.time()
                    if now >= deadline:
                        break
                    wait = min(deadline, next_bookmark if bookmarks else deadline) - now
                    try:
                        async with asyncio.timeout(max(wait, 0.001)):
                            item = await watch.queue.get()
                    except TimeoutError:
                        if bookmarks and loop.time() >= next_bookmark:
                            next_bookmark = loop.time() + interval
                            await response.write(self._bookmark(rt, watch))
                        continue
                else:
                    item = watch.queue.get_nowait()
                if item is None:
                    break
                event_type, obj = item
                if table:
                    if obj["apiVersion"] != rt.api_version:
                        obj = {**obj, "apiVersion": rt.api_version}
                    payload = _tables.table(rt, [obj], server.store.clock, None, _include(request))
                    line = _dumps({"type": event_type, "object": payload}).encode() + b"\n"
                else:
                    line = self._event_line(event_type, obj, rt.api_version)
                await response.write(line)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            server.watches.discard(watch)
            watch.close()
        return response

    def _event_line(self, event_type: str, obj: Obj, api_version: str) -> bytes:
        """One watch event as a JSON line, encoded once for all the watchers that receive it."""
        key = (id(obj), event_type, api_version)
        cached = self._lines.get(key)
        if cached is not None and cached[0] is obj:
            return cached[1]
        body = obj if obj["apiVersion"] == api_version else {**obj, "apiVersion": api_version}
        line = _dumps({"type": event_type, "object": body}).encode() + b"\n"
        self._lines[key] = (obj, line)  # holding `obj` keeps its id from being reused while cached
        if len(self._lines) > 512:
            self._lines.pop(next(iter(self._lines)))
        return line

    def _bookmark(self, rt: ResourceType, watch: Watch, *, initial_end: bool = False) -> bytes:
        # Sent only while the queue is empty: every event up to the store's resourceVersion was delivered.
        meta: dict[str, Any] = {"resourceVersion": self.store.resource_version}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return (
            _dumps(
                {
                    "type": "BOOKMARK",
                    "object": {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta},
                }
            ).encode()
            + b"\n"
        )

    # ---- subresources ----------------------------------------------------------------------------------
    async def _subresource(self, request: web.Request, route: _Route) -> web.StreamResponse:
        sub = route.subresource
        method = request.method
        rt = route.rt
        assert route.name is not None
        if sub in ("status", "approval"):  # a CSR's approval lives in its status
            if method == "GET":
                return self._get(request, route)
            if method == "PUT":
                return await self._update(request, route, "status")
            if method == "PATCH":
                return await self._patch(request, route, "status")
            raise method_not_allowed()
        if sub == "scale":
            return await self._scale(request, route)
        if sub == "finalize" and method == "PUT":
            return await self._update(request, route)
        if sub == "log" and method == "GET":
            return await self.server.pod_log(request, route.namespace or "default", route.name)
        if sub == "token" and method == "POST":
            body = await self._body(request)
            return json_response(
                self.server.token_request(route.namespace or "default", route.name, body), 201
            )
        if sub == "proxy":
            return await self.server.proxy(request, rt, route.namespace or "default", route.name, route.rest)
        if sub == "portforward" and method in ("GET", "POST"):
            return await self.streams.port_forward(request, route.namespace or "default", route.name)
        if sub in ("exec", "attach") and method in ("GET", "POST"):
            return await self.streams.exec(request, route.namespace or "default", route.name, sub == "attach")
        if sub == "binding" and method == "POST":
            body = await self._body(request)
            target = (body or {}).get("target") or {}
            pod = self.store.get_raw(rt, route.name, route.namespace)
            if (pod.get("spec") or {}).get("nodeName"):
                raise ApiError(
                    409,
                    f'Operation cannot be fulfilled on pods/binding "{route.name}": pod '
                    f'{route.name} is already assigned to node "{pod["spec"]["nodeName"]}"',
                )
            self.store.patch_raw(
                rt, route.name, {"spec": {"nodeName": target.get("name")}}, "merge", namespace=route.namespace
            )
            return json_response(
                {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201
            )
        if sub == "eviction" and method == "POST":
            body = await self._body(request) or {}
            options = body.get("deleteOptions") or {}
            dry_run = self._check_dry_run(request) or "All" in (options.get("dryRun") or [])
            pod = self.store.get_raw(rt, route.name, route.namespace)
            if self.store.eviction_check is not None:
                self.store.eviction_check(self.store, pod, dry_run=dry_run)
            if not dry_run:
                grace = options.get("gracePeriodSeconds")
                self.store.delete_raw(
                    rt,
                    route.name,
                    route.namespace,
                    grace_period_seconds=None if grace is None else int(grace),
                )
            return json_response(
                {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201
            )
        raise method_not_allowed()

    async def _scale(self, request: web.Request, route: _Route) -> web.Response:
        rt = route.rt
        spec = rt.scale
        assert spec is not None
        assert route.name is not None
        if request.method == "GET":
            return json_response(_scale_of(rt, self.store.get_raw(rt, route.name, route.namespace)))
        current = _scale_of(rt, self.store.get_raw(rt, route.name, route.namespace))
        if request.method == "PUT":
            body = await self._body(request)
        elif request.method == "PATCH":
            from ._patch import apply_patch

            body = apply_patch(
                rt,
                current,
                await self._body(request),
                self._patch_type(request) if self._patch_type(request) != "strategic" else "merge",
            )
        else:
            raise method_not_allowed()
        replicas = ((body or {}).get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            from ._errors import FieldError

            raise invalid(
                "Scale",
                "autoscaling",
                route.name,
                [
                    FieldError(
                        "FieldValueInvalid", "spec.replicas", replicas, "must be greater than or equal to 0"
                    )
                ],
            )
        given_rv = ((body or {}).get("metadata") or {}).get("resourceVersion")
        obj = self.store.get(rt, route.name, route.namespace)
        if given_rv and given_rv != obj["metadata"]["resourceVersion"]:
            from ._errors import conflict

            raise conflict(rt.plural, rt.group, route.name)
        _set_path(obj, spec.spec_replicas_path, replicas)
        obj["metadata"].pop("resourceVersion", None)
        stored = self.store.update_raw(
            rt,
            obj,
            namespace=route.namespace,
            name=route.name,
            dry_run=self._check_dry_run(request),
            field_manager=_manager(request),
        )
        return json_response(_scale_of(rt, stored))


def _warn(response: web.Response, warnings: list[str]) -> web.Response:
    for warning in warnings:
        response.headers.add("Warning", warning)
    return response


def _manager(request: web.Request) -> str:
    """The field manager of an update: `fieldManager`, else the User-Agent's product (kube-apiserver's rule)."""
    return (
        request.query.get("fieldManager")
        or request.headers.get("User-Agent", "unknown").split("/")[0]
        or "unknown"
    )


def _get_path(obj: Obj, path: str) -> Any:
    current: Any = obj
    for part in path.lstrip(".").split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def _set_path(obj: Obj, path: str, value: Any) -> None:
    parts = path.lstrip(".").split(".")
    current = obj
    for part in parts[:-1]:
        current = current.setdefault(part, {})
    current[parts[-1]] = value


def _scale_of(rt: ResourceType, obj: Obj) -> dict[str, Any]:
    spec = rt.scale
    assert spec is not None
    meta = obj["metadata"]
    status: dict[str, Any] = {"replicas": _get_path(obj, spec.status_replicas_path) or 0}
    if spec.label_selector_path:
        selector = _get_path(obj, spec.label_selector_path)
        if selector is None and not rt.custom:
            from ._selectors import selector_to_string

            selector = selector_to_string((obj.get("spec") or {}).get("selector"))
        if selector:
            status["selector"] = selector
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta.get("namespace"),
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": _get_path(obj, spec.spec_replicas_path) or 0},
        "status": status,
    }


def _unknown_fields(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    out: list[str] = []
    if isinstance(value, dict):
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        if props is None and additional is None:
            return []
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if not path and key in ("apiVersion", "kind", "metadata"):
                continue
            if props is not None and key in props:
                out.extend(_unknown_fields(item, props[key], child))
            elif isinstance(additional, dict):
                out.extend(_unknown_fields(item, additional, child))
            elif additional is not True:
                out.append(child)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            out.extend(_unknown_fields(item, schema["items"], f"{path}[{i}]"))
    return out


def discovery_routes(server: ApiServer) -> list[web.RouteDef]:
    store = server.store

    async def version(_: web.Request) -> web.Response:
        return json_response(_discovery.KUBERNETES_VERSION)

    async def api(request: web.Request) -> web.Response:
        return json_response(_discovery.api_versions(request.host))

    async def api_v1(_: web.Request) -> web.Response:
        return json_response(_discovery.resource_list(store, "", "v1"))

    async def apis(_: web.Request) -> web.Response:
        return json_response(_discovery.api_group_list(store))

    async def group(request: web.Request) -> web.Response:
        doc = _discovery.api_group(store, request.match_info["group"])
        if doc is None:
            return error_response(ApiError(404, "the server could not find the requested resource"))
        return json_response(doc)

    async def group_version(request: web.Request) -> web.Response:
        api = _aggregated.api_for(store, request.match_info["group"], request.match_info["version"])
        if api is not None and not api.available():
            return _aggregated.unavailable()
        doc = _discovery.resource_list(store, request.match_info["group"], request.match_info["version"])
        if doc is None:
            return error_response(ApiError(404, "the server could not find the requested resource"))
        return json_response(doc)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def openapi_v2(request: web.Request) -> web.Response:
        if _openapi.PROTOBUF_V2 in request.headers.get("Accept", ""):
            return web.Response(
                body=_openapi.v2_protobuf(store), content_type=f"{_openapi.PROTOBUF_V2}.v1.0+protobuf"
            )
        return json_response(_openapi.v2(store))

    async def openapi_v3(_: web.Request) -> web.Response:
        return json_response(_openapi.v3_index(store))

    async def openapi_v3_gv(request: web.Request) -> web.Response:
        doc = _openapi.v3_group_version(store, request.match_info["path"])
        if doc is None:
            return error_response(ApiError(404, "the server could not find the requested resource"))
        return json_response(doc)

    handlers = Handlers(server)
    return [
        web.get("/version", version),
        web.get("/version/", version),
        web.get("/healthz", healthz),
        web.get("/livez", healthz),
        web.get("/readyz", healthz),
        web.get("/api", api),
        web.get("/api/", api),
        web.get("/api/v1", api_v1),
        web.get("/api/v1/", api_v1),
        web.get("/apis", apis),
        web.get("/apis/", apis),
        web.get("/apis/{group}", group),
        web.get("/apis/{group}/", group),
        web.get("/apis/{group}/{version}", group_version),
        web.get("/apis/{group}/{version}/", group_version),
        web.get("/openapi/v2", openapi_v2),
        web.get("/openapi/v3", openapi_v3),
        web.get("/openapi/v3/{path:.+}", openapi_v3_gv),
        web.route("*", "/api/v1/{path:.+}", handlers.core),
        web.route("*", "/apis/{group}/{version}/{path:.+}", handlers.grouped),
    ]


Middleware = Callable[
    [web.Request, Callable[[web.Request], Awaitable[web.StreamResponse]]], Awaitable[web.StreamResponse]
]
