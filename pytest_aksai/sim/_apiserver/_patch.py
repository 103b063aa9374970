"""JSON merge patch (RFC 7386), strategic merge patch (built-in kinds), JSON patch (RFC 6902), and apply."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jsonpatch

from ._errors import ApiError

if TYPE_CHECKING:
    from ._types import ResourceType

# Lists merged by key in strategic merge patches (field name → merge key), from the Kubernetes API types.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "secrets": "name",
    "addresses": "type",
}
_SET_LISTS = frozenset({"finalizers"})
"""Primitive lists with patchStrategy=merge: merged as sets."""


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def ports_key(items: list[Any]) -> str:
    for item in items:
        if isinstance(item, dict) and "containerPort" in item:
            return "containerPort"
    return "port"


def strategic_merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    if patch.get("$patch") == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    deletions: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            deletions[key.split("/", 1)[1]] = value if isinstance(value, list) else []
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        else:
            result[key] = strategic_merge(result.get(key), value)
    for key, values in deletions.items():
        if isinstance(result.get(key), list):
            result[key] = [v for v in result[key] if v not in values]
    return result


def _merge_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    if not isinstance(current, list):
        current = []
    if field in _SET_LISTS:
        merged = list(current)
        for item in patch:
            if item not in merged:
                merged.append(item)
        return merged
    key = MERGE_KEYS.get(field) or (ports_key(patch + current) if field == "ports" else None)
    if key is None or not all(isinstance(i, dict) for i in patch):
        if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
            return [i for i in patch if not (isinstance(i, dict) and "$patch" in i)]
        return patch
    merged = [dict(i) if isinstance(i, dict) else i for i in current]
    for item in patch:
        if item.get("$patch") == "replace":
            return [i for i in patch if "$patch" not in i]
        match = next(
            (
                i
                for i, existing in enumerate(merged)
                if isinstance(existing, dict) and existing.get(key) == item.get(key)
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if match is not None:
                merged.pop(match)
            continue
        if match is None:
            merged.append(strategic_merge({}, item))
        else:
            merged[match] = strategic_merge(merged[match], item)
    return merged


def apply_patch(rt: ResourceType, current: dict[str, Any], patch: Any, patch_type: str) -> Any:
    if patch_type == "json":
        if not isinstance(patch, list):
            raise ApiError(400, "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        try:
            return jsonpatch.apply_patch(current, patch)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException):
            # kube-apiserver answers every failed application (a `test` that does not hold, a missing path)
            # with this generic 422 and no details.
            raise ApiError(
                422, "the server rejected our request due to an error in our request", reason="Invalid"
            ) from None
    if not isinstance(patch, dict):
        raise ApiError(
            400,
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, "
            "application/apply-patch+yaml",
        )
    if patch_type == "merge":
        return merge_patch(current, patch)
    if patch_type == "strategic":
        if rt.custom:
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml",
            )
        return strategic_merge(current, patch)
    if patch_type == "apply":
        # Server-side apply without field ownership tracking: the applied config is merged into the live object.
        applied = {k: v for k, v in patch.items() if k not in ("status",)}
        meta = dict(applied.get("metadata") or {})
        meta.pop("resourceVersion", None)
        applied["metadata"] = meta
        return merge_patch(current, applied) if rt.custom else strategic_merge(current, applied)
    raise ApiError(415, f"unsupported patch type {patch_type!r}")
