"""Minimal OpenAPI documents (v2 and v3) for the kinds the server serves, enough for `kubectl apply`/`explain`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._store import Store
    from ._types import ResourceType


def _definition_name(rt: ResourceType) -> str:
    group = rt.group or "core"
    reversed_group = (
        ".".join(reversed(group.split("."))) if rt.custom else f"io.k8s.api.{group.split('.')[0]}"
    )
    return f"{reversed_group}.{rt.version}.{rt.kind}"


def _schema(rt: ResourceType) -> dict[str, Any]:
    gvk = [{"group": rt.group, "version": rt.version, "kind": rt.kind}]
    if rt.schema:
        return {**rt.schema, "x-kubernetes-group-version-kind": gvk}
    return {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "x-kubernetes-group-version-kind": gvk,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
        },
    }


def v2(store: Store) -> dict[str, Any]:
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.32.4-aksai-sim"},
        "paths": {},
        "definitions": {_definition_name(rt): _schema(rt) for rt in store.types()},
    }


def _gv_path(rt: ResourceType) -> str:
    return f"api/{rt.version}" if not rt.group else f"apis/{rt.group}/{rt.version}"


def v3_index(store: Store) -> dict[str, Any]:
    paths = {}
    for rt in store.types():
        path = _gv_path(rt)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={store.resource_version}"}
    return {"paths": paths}


def v3_group_version(store: Store, path: str) -> dict[str, Any] | None:
    types = [rt for rt in store.types() if _gv_path(rt) == path]
    if not types:
        return None
    field_validation = {
        "name": "fieldValidation",
        "in": "query",
        "schema": {"type": "string", "uniqueItems": True},
        "description": "fieldValidation instructs the server on how to handle objects in the request "
        "containing unknown or duplicate fields.",
    }
    paths: dict[str, Any] = {}
    for rt in types:
        base = f"/{path}/" + ("namespaces/{namespace}/" if rt.namespaced else "") + rt.plural
        ref = {"$ref": f"#/components/schemas/{_definition_name(rt)}"}
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}

        def _op(
            action: str, code: str, gvk: dict[str, str] = gvk, ref: dict[str, str] = ref
        ) -> dict[str, Any]:
            return {
                "parameters": [field_validation],
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "responses": {code: {"content": {"application/json": {"schema": ref}}}},
            }

        paths[base] = {"post": _op("post", "201")}
        paths[base + "/{name}"] = {"put": _op("put", "200"), "patch": _op("patch", "200")}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.4-aksai-sim"},
        "paths": paths,
        "components": {"schemas": {_definition_name(rt): _schema(rt) for rt in types}},
    }
