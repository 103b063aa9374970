"""Aggregated APIs: groups an extension API server serves behind an `APIService`, as kube-aggregator proxies.

An add-on registers an `AggregatedApi` (`store.register_aggregated`); its resource types then appear in
discovery like any other, and requests for them go to the add-on's `list`/`get` instead of the store. While
the add-on says it is unavailable (the `APIService`'s `Available` condition is False), the aggregator answers
503 `service unavailable` in plain text, for discovery of the group-version too: client-go turns that into
`the server is currently unable to handle the request`, and kubectl warns `couldn't get resource list for …`.
Only get and list are served (metrics-server v0.7 serves nothing else); other verbs get 405.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from ._errors import ApiError, method_not_allowed
from ._selectors import parse_field_selector, parse_label_selector
from ._types import ResourceType

if TYPE_CHECKING:
    from ._store import Store

Obj = dict[str, Any]
AGGREGATED = "aggregated"
"""`ResourceType.extra` key marking a type an aggregated API serves."""


class AggregatedApi(Protocol):
    group: str
    version: str

    def types(self) -> Sequence[ResourceType]: ...

    def available(self) -> bool: ...

    def items(self, rt: ResourceType, namespace: str | None) -> list[Obj]:
        """Every object of `rt` (in `namespace`, or all namespaces when None), sorted as the server lists."""
        ...

    def get(self, rt: ResourceType, name: str, namespace: str | None) -> Obj:
        """One object; raises ApiError 404 as the extension server does."""
        ...

    def table(self, rt: ResourceType, items: list[Obj]) -> Obj:
        """The server-side Table (`kubectl get nodemetrics`)."""
        ...


def aggregated_type(api_version: str, plural: str, kind: str, *, namespaced: bool) -> ResourceType:
    group, _, version = api_version.rpartition("/")
    return ResourceType(
        group=group,
        version=version,
        plural=plural,
        kind=kind,
        namespaced=namespaced,
        singular="",
        verbs=("get", "list"),
        has_generation=False,
        extra={AGGREGATED: True},
    )


def unavailable() -> web.Response:
    return web.Response(status=503, text="service unavailable\n", content_type="text/plain")


def api_for(store: Store, group: str, version: str) -> AggregatedApi | None:
    return store.aggregated.get((group, version))


def serve(
    store: Store,
    request: web.Request,
    rt: ResourceType,
    namespace: str | None,
    name: str | None,
    wants_table: bool,
) -> web.Response:
    from ._http import json_response

    api = api_for(store, rt.group, rt.version)
    if api is None or not api.available():
        return unavailable()
    if request.method != "GET" or request.query.get("watch") in ("1", "true"):
        raise method_not_allowed()
    if name is not None:
        obj = api.get(rt, name, namespace)
        return json_response(api.table(rt, [obj]) if wants_table else obj)
    items = api.items(rt, namespace)
    labels = parse_label_selector(request.query.get("labelSelector"))
    field_text = request.query.get("fieldSelector")
    # The extension server matches against the object's metadata fields only; another key reads "" there.
    keys = frozenset(re.findall(r"([A-Za-z0-9_.]+)\s*(?:==|!=|=)", field_text or ""))
    fields = parse_field_selector(field_text, keys, rt.kind)
    items = [
        obj
        for obj in items
        if (labels is None or labels((obj.get("metadata") or {}).get("labels") or {}))
        and (fields is None or fields({"metadata": obj.get("metadata") or {}}))
    ]
    if wants_table:
        return json_response(api.table(rt, items))
    return json_response({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": {}, "items": items})


def not_found(rt: ResourceType, name: str) -> ApiError:
    """`podmetrics.metrics.k8s.io "ns/name" not found`: the extension server names the object as it likes."""
    singular = rt.kind.lower()
    return ApiError(
        404,
        f'{singular}.{rt.group} "{name}" not found',
        details={"name": name, "group": rt.group, "kind": singular},
    )
