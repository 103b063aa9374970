"""Unknown-field detection for built-in kinds, for `fieldValidation` Strict/Warn/Ignore.

The field tables are package data (`knownfields.json`: model name → JSON field → type name), extracted once
from the official `kubernetes` client's models (themselves generated from the upstream OpenAPI document) by
`tools/gen_knownfields.py`, so the sim loads no client code."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

from ._types import ResourceType

_LIST = re.compile(r"^[Ll]ist\[(.+)\]$")
_DICT = re.compile(r"^(?:dict\(str, (.+)\)|Dict\[str, (.+)\])$")
_SCALARS = frozenset({"str", "int", "float", "bool", "datetime", "date", "object", "bytearray", "bytes"})
_SPECIAL = {("", "Event"): "CoreV1Event", ("events.k8s.io", "Event"): "EventsV1Event"}


@cache
def _tables() -> dict[str, dict[str, str]]:
    text = (resources.files(__package__ or __name__) / "knownfields.json").read_text(encoding="utf-8")
    tables: dict[str, dict[str, str]] = json.loads(text)["models"]
    return tables


def _model(name: str) -> dict[str, str] | None:
    """JSON field name → type name of a built-in model, or None when unknown."""
    return _tables().get(name)


def model_fields(name: str) -> dict[str, str] | None:
    """JSON field name → type name of the built-in model `name` (e.g. `V1PodSpec`), or None."""
    return _model(name)


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
        field_type = fields.get(key)
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
