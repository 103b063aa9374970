"""Structural-schema handling for custom resources: pruning, defaulting, validation (no CEL rules)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ._errors import FieldError

_T = TypeVar("_T")

if TYPE_CHECKING:
    from ._store import Obj
    from ._types import ResourceType

_ROOT_KEEP = ("apiVersion", "kind", "metadata")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _preserves(schema: dict[str, Any]) -> bool:
    return bool(schema.get("x-kubernetes-preserve-unknown-fields"))


def prune(value: Any, schema: dict[str, Any], *, root: bool = False) -> Any:
    if isinstance(value, dict):
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        embedded = schema.get("x-kubernetes-embedded-resource")
        if props is None and additional is None:
            return value
        for key in list(value):
            if (root and key in _ROOT_KEEP) or (embedded and key in _ROOT_KEEP):
                continue
            if props is not None and key in props:
                value[key] = prune(value[key], props[key])
            elif isinstance(additional, dict):
                value[key] = prune(value[key], additional)
            elif additional is True or _preserves(schema):
                continue
            else:
                del value[key]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(item, schema["items"]) for item in value]
    return value


def apply_defaults(value: Any, schema: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in value and "default" in sub:
                value[key] = deepcopy(sub["default"])
            if key in value:
                apply_defaults(value[key], sub)
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for item in value.values():
                apply_defaults(item, additional)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(item, schema["items"])


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def validate(value: Any, schema: dict[str, Any], path: str, errors: list[FieldError]) -> None:
    if value is None:
        if not schema.get("nullable") and schema.get("type"):
            errors.append(
                FieldError(
                    "FieldValueTypeInvalid",
                    path,
                    "null",
                    f'{path} in body must be of type {schema["type"]}: "null"',
                )
            )
        return
    expected = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, int | str) or isinstance(value, bool):
            errors.append(
                FieldError(
                    "FieldValueTypeInvalid",
                    path,
                    _type_name(value),
                    f'{path} in body must be of type integer,string: "{_type_name(value)}"',
                )
            )
            return
    elif expected:
        actual = _type_name(value)
        ok = actual == expected or (expected == "number" and actual == "integer")
        if not ok:
            errors.append(
                FieldError(
                    "FieldValueTypeInvalid",
                    path,
                    actual,
                    f'{path} in body must be of type {expected}: "{actual}"',
                )
            )
            return
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in schema["enum"])
        errors.append(FieldError("FieldValueNotSupported", path, value, f"supported values: {supported}"))
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema:
            low = schema["minimum"]
            if value < low or (schema.get("exclusiveMinimum") and value == low):
                op = "greater than" if schema.get("exclusiveMinimum") else "greater than or equal to"
                errors.append(
                    FieldError("FieldValueInvalid", path, value, f"{path} in body should be {op} {low}")
                )
        if "maximum" in schema:
            high = schema["maximum"]
            if value > high or (schema.get("exclusiveMaximum") and value == high):
                op = "less than" if schema.get("exclusiveMaximum") else "less than or equal to"
                errors.append(
                    FieldError("FieldValueInvalid", path, value, f"{path} in body should be {op} {high}")
                )
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(
                FieldError(
                    "FieldValueTooLong", path, value, f"may not be more than {schema['maxLength']} bytes"
                )
            )
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(
                FieldError(
                    "FieldValueInvalid",
                    path,
                    value,
                    f"{path} in body should be at least {schema['minLength']} chars long",
                )
            )
        pattern = schema.get("pattern")
        if pattern:
            compiled = _regex(pattern)
            if compiled is not None and not compiled.search(value):
                errors.append(
                    FieldError("FieldValueInvalid", path, value, f"{path} in body should match '{pattern}'")
                )
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(
                FieldError(
                    "FieldValueTooMany", path, len(value), f"must have at most {schema['maxItems']} items"
                )
            )
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(
                FieldError(
                    "FieldValueInvalid",
                    path,
                    len(value),
                    f"{path} in body should have at least {schema['minItems']} items",
                )
            )
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                validate(item, items, f"{path}[{i}]", errors)
    if isinstance(value, dict):
        for key in schema.get("required") or []:
            if key not in value:
                errors.append(FieldError("FieldValueRequired", f"{path}.{key}" if path else key))
        props = schema.get("properties") or {}
        for key, item in value.items():
            sub = props.get(key)
            child = f"{path}.{key}" if path else key
            if sub is not None:
                validate(item, sub, child, errors)
            elif isinstance(schema.get("additionalProperties"), dict):
                validate(item, schema["additionalProperties"], f"{path}[{key}]" if path else key, errors)
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            errors.append(
                FieldError(
                    "FieldValueTooMany",
                    path,
                    len(value),
                    f"must have at most {schema['maxProperties']} items",
                )
            )
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            errors.append(
                FieldError(
                    "FieldValueInvalid",
                    path,
                    len(value),
                    f"{path} in body should have at least {schema['minProperties']} properties",
                )
            )
    for sub in schema.get("allOf") or []:
        validate(value, sub, path, errors)
    any_of = schema.get("anyOf")
    if any_of and not any(_passes(value, sub, path) for sub in any_of):
        errors.append(
            FieldError(
                "FieldValueInvalid", path, value, f"{path} in body must validate at least one schema (anyOf)"
            )
        )
    one_of = schema.get("oneOf")
    if one_of and sum(_passes(value, sub, path) for sub in one_of) != 1:
        errors.append(
            FieldError(
                "FieldValueInvalid",
                path,
                value,
                f"{path} in body must validate one and only one schema (oneOf)",
            )
        )


def _passes(value: Any, schema: dict[str, Any], path: str) -> bool:
    errors: list[FieldError] = []
    validate(value, schema, path, errors)
    return not errors


def admit_custom(rt: ResourceType, obj: Obj) -> list[FieldError]:
    schema = rt.schema
    if not schema:
        return []
    prune(obj, schema, root=True)
    apply_defaults(obj, schema)
    errors: list[FieldError] = []
    body = {k: v for k, v in obj.items() if k not in _ROOT_KEEP}
    root_schema = {
        **schema,
        "properties": {k: v for k, v in (schema.get("properties") or {}).items() if k not in _ROOT_KEEP},
    }
    root_schema["required"] = [r for r in schema.get("required") or [] if r not in _ROOT_KEEP]
    validate(body, root_schema, "", errors)
    return errors


def deepcopy(value: _T) -> _T:
    """A fast deep copy for JSON-shaped data (dicts, lists and scalars)."""
    return cast(_T, _copy(value))


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
