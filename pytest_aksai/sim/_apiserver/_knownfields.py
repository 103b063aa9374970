"""Unknown-field detection for built-in kinds, from the field tables of the installed `kubernetes` client's
models (generated from the upstream OpenAPI document), for `fieldValidation` Strict/Warn/Ignore."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import kubernetes.client.models as _models

from ._types import ResourceType

_LIST = re.compile(r"^[Ll]ist\[(.+)\]$")
_DICT = re.compile(r"^(?:dict\(str, (.+)\)|Dict\[str, (.+)\])$")
_SCALARS = frozenset({"str", "int", "float", "bool", "datetime", "date", "object", "bytearray", "bytes"})
_SPECIAL = {("", "Event"): "CoreV1Event", ("events.k8s.io", "Event"): "EventsV1Event"}


@lru_cache(maxsize=256)
def _model(name: str) -> tuple[dict[str, str], dict[str, str]] | None:
    """(JSON field name → type name) of a model class, or None when unknown."""
    cls = getattr(_models, name, None)
    types = getattr(cls, "openapi_types", None)
    names = getattr(cls, "attribute_map", None)
    if not isinstance(types, dict) or not isinstance(names, dict):
        return None
    return {names[attr]: kind for attr, kind in types.items() if attr in names}, {}


def model_name(rt: ResourceType) -> str | None:
    name = _SPECIAL.get((rt.group, rt.kind)) or f"{rt.version[:1].upper()}{rt.version[1:]}{rt.kind}"
    return name if _model(name) is not None else None


def unknown_fields(rt: ResourceType, body: Any) -> list[str]:
    """Paths (`spec.replicass`) of the fields in `body` the kind does not declare; [] for custom kinds."""
    name = model_name(rt)
    if name is None or not isinstance(body, dict):
        return []
    out: list[str] = []
    _walk(body, name, "", out)
    return out


def _walk(value: Any, type_name: str, path: str, out: list[str]) -> None:
    if type_name in _SCALARS or value is None:
        return
    m = _LIST.match(type_name)
    if m:
        if isinstance(value, list):
            for i, item in enumerate(value):
                _walk(item, m.group(1), f"{path}[{i}]", out)
        return
    m = _DICT.match(type_name)
    if m:
        if isinstance(value, dict):
            for key, item in value.items():
                _walk(item, m.group(1) or m.group(2), f"{path}[{key}]", out)
        return
    fields = _model(type_name)
    if fields is None or not isinstance(value, dict):
        return
    for key, item in value.items():
        child = f"{path}.{key}" if path else key
        field_type = fields[0].get(key)
        if field_type is None:
            out.append(child)
        else:
            _walk(item, field_type, child, out)


def prune(rt: ResourceType, body: Any, unknown: list[str]) -> None:
    """Drop the `unknown` fields (paths from `unknown_fields`) from `body`."""
    for path in unknown:
        tokens = re.findall(r"([^.\[\]]+)|\[([^\]]*)\]", path)
        parent: Any = body
        keys = [a or b for a, b in tokens]
        for token in keys[:-1]:
            if isinstance(parent, list):
                parent = parent[int(token)] if token.isdigit() and int(token) < len(parent) else None
            elif isinstance(parent, dict):
                parent = parent.get(token)
            if parent is None:
                break
        if isinstance(parent, dict):
            parent.pop(keys[-1], None)
