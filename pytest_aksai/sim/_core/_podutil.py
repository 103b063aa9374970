"""Small helpers on pod and condition objects shared by the controllers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def set_condition(
    conditions: list[Obj],
    type_: str,
    status: str,
    now: str,
    reason: str | None = None,
    message: str | None = None,
    *,
    probe_time: bool = False,
) -> bool:
    """Set a condition in place, keeping `lastTransitionTime` when the status does not change. Returns True
    when anything changed."""
    for cond in conditions:
        if cond.get("type") != type_:
            continue
        changed = (
            cond.get("status") != status or cond.get("reason") != reason or cond.get("message") != message
        )
        if cond.get("status") != status:
            cond["lastTransitionTime"] = now
        cond["status"] = status
        for field, value in (("reason", reason), ("message", message)):
            if value is None:
                cond.pop(field, None)
            else:
                cond[field] = value
        return changed
    fresh: Obj = {"type": type_, "status": status, "lastTransitionTime": now}
    if probe_time:
        fresh["lastProbeTime"] = None
    if reason is not None:
        fresh["reason"] = reason
    if message is not None:
        fresh["message"] = message
    conditions.append(fresh)
    return True


def get_condition(obj: Mapping[str, Any], type_: str) -> Obj | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def condition_true(obj: Mapping[str, Any], type_: str) -> bool:
    cond = get_condition(obj, type_)
    return cond is not None and cond.get("status") == "True"


def is_terminal(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_active(pod: Mapping[str, Any]) -> bool:
    """Counted by workload controllers: not terminal and not being deleted."""
    return not is_terminal(pod) and not (pod.get("metadata") or {}).get("deletionTimestamp")


def is_ready(pod: Mapping[str, Any]) -> bool:
    return condition_true(pod, "Ready")


def ready_since(pod: Mapping[str, Any]) -> str | None:
    cond = get_condition(pod, "Ready")
    return cond.get("lastTransitionTime") if cond and cond.get("status") == "True" else None


def template_hash(template: Mapping[str, Any], collision_count: int = 0) -> str:
    """A stable short hash of a pod template, spelled in the alphabet Kubernetes uses for generated names."""
    digest = hashlib.sha256(
        json.dumps(template, sort_keys=True).encode() + str(collision_count).encode()
    ).digest()
    value = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(10):
        value, index = divmod(value, len(_SAFE_ALPHABET))
        chars.append(_SAFE_ALPHABET[index])
    return "".join(chars)


def selector_string(selector: Mapping[str, Any] | None) -> str:
    """A LabelSelector as the label-selector query syntax."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def owner_reference(owner: Mapping[str, Any]) -> Obj:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_controlled_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    uid = owner["metadata"]["uid"]
    return any(
        ref.get("uid") == uid and ref.get("controller")
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []
    )


def omit_zero(status: Mapping[str, Any], keep: tuple[str, ...] = ()) -> Obj:
    """Drop zero-valued counters, as the API's `omitempty` fields are absent when zero."""
    return {k: v for k, v in status.items() if k in keep or v not in (0, None, "")}
