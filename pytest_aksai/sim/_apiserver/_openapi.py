"""The OpenAPI documents kubectl reads: `/openapi/v3` (explain, field-validation support) and `/openapi/v2`
(client-side validation, in the protobuf kubectl asks for or in JSON).

Built-in kinds get structural schemas built from the upstream field tables (`knownfields.json`: every field
and its type, without descriptions), custom resources their CRD's schema. A kind the server does not serve
has no schema at all, so kubectl's client-side validation skips it and its apply then fails with kubectl's
own `resource mapping not found … ensure CRDs are installed first`, as on a real cluster.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

import yaml

from . import _knownfields

if TYPE_CHECKING:
    from ._store import Store
    from ._types import ResourceType

VERSION = "v1.32.4-aksai-sim"
PROTOBUF_V2 = "application/com.github.proto-openapi.spec.v2"
_MODEL = re.compile(r"^([A-Z][a-z]+)?(V\d+(?:alpha\d+|beta\d+)?)([A-Z].*)$")
_LIST = re.compile(r"^[Ll]ist\[(.+)\]$")
_DICT = re.compile(r"^(?:dict\(str, (.+)\)|Dict\[str, (.+)\])$")
_SCALARS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer", "format": "int64"},
    "float": {"type": "number", "format": "double"},
    "bool": {"type": "boolean"},
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "bytes": {"type": "string", "format": "byte"},
    "bytearray": {"type": "string", "format": "byte"},
    "object": {"x-kubernetes-preserve-unknown-fields": True},
}


def _definition_name(rt: ResourceType) -> str:
    group = rt.group or "core"
    reversed_group = (
        ".".join(reversed(group.split("."))) if rt.custom else f"io.k8s.api.{group.split('.')[0]}"
    )
    return f"{reversed_group}.{rt.version}.{rt.kind}"


def _nested_name(model: str) -> str:
    match = _MODEL.match(model)
    if match is None:
        return f"io.k8s.api.{model}"
    group, version, name = match.groups()
    return f"io.k8s.api.{(group or 'core').lower()}.{version.lower()}.{name}"


def _gvk(rt: ResourceType) -> list[dict[str, str]]:
    return [{"group": rt.group, "version": rt.version, "kind": rt.kind}]


class _Builder:
    """Schemas of built-in models and every model they reference, named for `#/<prefix>/<name>`."""

    def __init__(self, prefix: str, names: dict[str, str]) -> None:
        self.prefix = prefix
        self.names = names  # top-level model → its definition name
        self.schemas: dict[str, dict[str, Any]] = {}

    def name(self, model: str) -> str:
        return self.names.get(model) or _nested_name(model)

    def ref(self, type_name: str) -> dict[str, Any]:
        if type_name in _SCALARS:
            return dict(_SCALARS[type_name])
        match = _LIST.match(type_name)
        if match:
            return {"type": "array", "items": self.ref(match.group(1))}
        match = _DICT.match(type_name)
        if match:
            return {"type": "object", "additionalProperties": self.ref(match.group(1) or match.group(2))}
        if _knownfields.model_fields(type_name) is None:
            return {"x-kubernetes-preserve-unknown-fields": True}
        self.add(type_name)
        return {"$ref": f"#/{self.prefix}/{self.name(type_name)}"}

    def add(self, model: str, extra: dict[str, Any] | None = None) -> None:
        name = self.name(model)
        if name in self.schemas:
            if extra:
                self.schemas[name].update(extra)
            return
        schema: dict[str, Any] = {"type": "object", "properties": {}}
        self.schemas[name] = schema
        for field, type_name in sorted((_knownfields.model_fields(model) or {}).items()):
            schema["properties"][field] = self.ref(type_name)
        if extra:
            schema.update(extra)


def _schemas(store: Store, types: list[ResourceType], prefix: str) -> dict[str, dict[str, Any]]:
    builtin = {rt: _knownfields.model_name(rt) for rt in types if not rt.custom}
    builder = _Builder(prefix, {m: _definition_name(rt) for rt, m in builtin.items() if m})
    custom: dict[str, dict[str, Any]] = {}
    for rt in types:
        model = builtin.get(rt)
        if model:
            builder.add(model, {"x-kubernetes-group-version-kind": _gvk(rt)})
        elif rt.custom and rt.schema:
            custom[_definition_name(rt)] = {**rt.schema, "x-kubernetes-group-version-kind": _gvk(rt)}
        else:
            custom[_definition_name(rt)] = {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "x-kubernetes-group-version-kind": _gvk(rt),
            }
    return {**builder.schemas, **custom}


def v2(store: Store) -> dict[str, Any]:
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": VERSION},
        "paths": {},
        "definitions": _schemas(store, list(store.types()), "definitions"),
    }


def v2_protobuf(store: Store) -> bytes:
    """The v2 document as a gnostic `openapi.v2.Document` (what kubectl asks for), encoded by hand: only
    the handful of messages a schema tree needs."""
    document = v2(store)
    definitions = b"".join(
        _field(1, _field(1, name.encode()) + _field(2, _schema_pb(schema)))
        for name, schema in document["definitions"].items()
    )
    info = _field(1, b"Kubernetes") + _field(2, VERSION.encode())
    return _field(1, b"2.0") + _field(2, info) + _field(8, b"") + _field(9, definitions)


def _schema_pb(schema: dict[str, Any]) -> bytes:
    out = b""
    if "$ref" in schema:
        out += _field(1, str(schema["$ref"]).encode())
    if schema.get("format"):
        out += _field(2, str(schema["format"]).encode())
    if schema.get("description"):
        out += _field(4, str(schema["description"]).encode())
    for required in schema.get("required") or []:
        out += _field(19, str(required).encode())
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        out += _field(21, _field(1, _schema_pb(additional)))
    elif isinstance(additional, bool):
        out += _field(21, bytes((0x10, int(additional))))
    if schema.get("type"):
        out += _field(22, _field(1, str(schema["type"]).encode()))
    if isinstance(schema.get("items"), dict):
        out += _field(23, _field(1, _schema_pb(schema["items"])))
    if schema.get("properties"):
        named = b"".join(
            _field(1, _field(1, k.encode()) + _field(2, _schema_pb(v)))
            for k, v in schema["properties"].items()
        )
        out += _field(25, named)
    for key, value in schema.items():
        if key.startswith("x-kubernetes-"):
            out += _field(31, _field(1, key.encode()) + _field(2, _field(2, yaml.safe_dump(value).encode())))
    return out


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (strings and messages)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _gv_path(rt: ResourceType) -> str:
    return f"api/{rt.version}" if not rt.group else f"apis/{rt.group}/{rt.version}"


def v3_index(store: Store) -> dict[str, Any]:
    paths = {}
    for rt in store.types():
        path = _gv_path(rt)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={_hash(store, path)}"}
    return {"paths": paths}


def _hash(store: Store, path: str) -> str:
    """Changes when the group-version's kinds change (a CRD added), so kubectl's cache stays right."""
    kinds = sorted(
        (rt.kind, json.dumps(rt.schema, sort_keys=True) if rt.schema else "")
        for rt in store.types()
        if _gv_path(rt) == path
    )
    return hashlib.sha256(json.dumps(kinds).encode()).hexdigest()[:32].upper()


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
    schemas = _schemas(store, types, "components/schemas")
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
        "info": {"title": "Kubernetes", "version": VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    }
