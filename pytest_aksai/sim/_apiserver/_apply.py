"""Server-side apply: field ownership per apply manager (FieldsV1), conflicts, and removal of fields a
manager stops applying.

Updates (PUT/PATCH) by a named manager take ownership of the fields they change once an object has apply
managers, so a later apply of a different value conflicts with them, as on a real server. Simplifications:
lists merged by key (containers by name, env by name, ...) are tracked per element, every other list is one
atomic field; status is not tracked.
"""

from __future__ import annotations

import json
from typing import Any

from ._errors import ApiError
from ._patch import MERGE_KEYS, ports_key

Path = tuple[Any, ...]
_IGNORED_META = frozenset(
    {
        "name",
        "namespace",
        "resourceVersion",
        "uid",
        "generation",
        "creationTimestamp",
        "managedFields",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generateName",
    }
)


def _list_key(field: str, items: list[Any]) -> str | None:
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    key = MERGE_KEYS.get(field) or (ports_key(items) if field == "ports" else None)
    if key is None or not all(key in i for i in items):
        return None
    return key


def field_set(obj: dict[str, Any]) -> set[Path]:
    """The leaf fields an applied configuration sets."""
    out: set[Path] = set()
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
    meta = {k: v for k, v in (body.pop("metadata", None) or {}).items() if k not in _IGNORED_META}
    if meta:
        body["metadata"] = meta
    _walk(body, (), out)
    return out


def _walk(value: Any, path: Path, out: set[Path]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _walk(item, (*path, key), out)
        return
    if isinstance(value, list) and path:
        key = _list_key(str(path[-1]), value)
        if key is not None:
            for item in value:
                element = (*path, (key, item[key]))
                out.add((*element, "."))
                _walk({k: v for k, v in item.items()}, element, out)
            return
    out.add(path)


def encode(paths: set[Path]) -> dict[str, Any]:
    """FieldsV1: `f:<field>` for fields, `k:{"<key>":<value>}` for list elements, `.` for the element itself."""
    root: dict[str, Any] = {}
    for path in paths:
        node = root
        for token in path:
            if token == ".":
                name = "."
            elif isinstance(token, tuple):
                name = "k:" + json.dumps({token[0]: token[1]}, separators=(",", ":"))
            else:
                name = f"f:{token}"
            node = node.setdefault(name, {})
    return root


def decode(fields: dict[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for name, child in fields.items():
        if name == ".":
            out.add((*prefix, "."))
            continue
        if name.startswith("k:"):
            key, value = next(iter(json.loads(name[2:]).items()))
            token: Any = (key, value)
        else:
            token = name[2:]
        if child:
            out |= decode(child, (*prefix, token))
        else:
            out.add((*prefix, token))
    return out


_MISSING = object()


def _get(obj: Any, path: Path) -> Any:
    current = obj
    for token in path:
        if token == ".":
            return current
        if isinstance(token, tuple):
            if not isinstance(current, list):
                return _MISSING
            current = next(
                (i for i in current if isinstance(i, dict) and i.get(token[0]) == token[1]), _MISSING
            )
        elif isinstance(current, dict) and token in current:
            current = current[token]
        else:
            return _MISSING
        if current is _MISSING:
            return _MISSING
    return current


def _remove(obj: Any, path: Path) -> None:
    parent = _get(obj, path[:-1])
    last = path[-1]
    if last == ".":
        grand = _get(obj, path[:-2])
        token = path[-2]
        if isinstance(grand, list) and isinstance(token, tuple):
            grand[:] = [i for i in grand if not (isinstance(i, dict) and i.get(token[0]) == token[1])]
        return
    if isinstance(parent, dict) and not isinstance(last, tuple):
        parent.pop(last, None)


def _path_text(path: Path) -> str:
    parts = []
    for token in path:
        if token == ".":
            continue
        parts.append(f"[{token[0]}={token[1]}]" if isinstance(token, tuple) else f".{token}")
    return "".join(parts)


def apply(
    current: dict[str, Any], applied: dict[str, Any], merged: dict[str, Any], manager: str, force: bool
) -> dict[str, Any]:
    """Ownership bookkeeping for an apply of `applied` by `manager` onto `current`, `merged` being the
    applied configuration merged into it; returns `merged` with removed fields dropped and managedFields set."""
    entries = list((current.get("metadata") or {}).get("managedFields") or [])
    owned = {e["manager"]: decode(e.get("fieldsV1") or {}) for e in entries if e.get("operation") == "Apply"}
    updaters = {
        e["manager"]: decode(e.get("fieldsV1") or {}) for e in entries if e.get("operation") == "Update"
    }
    mine = field_set(applied)
    conflicts: list[tuple[str, Path]] = []
    rivals = [(m, p) for m, p in owned.items() if m != manager] + [
        (m, p) for m, p in updaters.items() if m != manager
    ]
    for other, paths in rivals:
        for path in mine & paths:
            if path[-1] != "." and _get(current, path) != _get(applied, path):
                conflicts.append((other, path))
    if conflicts and not force:
        causes = [
            {
                "reason": "FieldManagerConflict",
                "message": f'conflict with "{m}": {_path_text(p)}',
                "field": _path_text(p),
            }
            for m, p in sorted(conflicts, key=lambda c: (c[0], _path_text(c[1])))
        ]
        noun = "conflict" if len(causes) == 1 else "conflicts"
        raise ApiError(
            409,
            f"Apply failed with {len(causes)} {noun}: " + "\n".join(c["message"] for c in causes),
            reason="Conflict",
            details={"causes": causes},
        )
    for other, path in conflicts:
        owned.get(other, set()).discard(path)
        updaters.get(other, set()).discard(path)
    others = set().union(*(p for m, p in owned.items() if m != manager), *updaters.values())
    # Whole list elements first (an element's key field is among its removed leaves), then leaves.
    for path in sorted(owned.get(manager, set()) - mine - others, key=lambda p: (p[-1] != ".", -len(p))):
        _remove(merged, path)
    owned[manager] = mine
    kept = []
    for entry in entries:
        if entry.get("operation") == "Update" and entry["manager"] in updaters:
            kept.append({**entry, "fieldsV1": encode(updaters[entry["manager"]])})
        elif entry.get("operation") != "Apply":
            kept.append(entry)
    for name, paths in owned.items():
        previous = next(
            (e for e in entries if e.get("manager") == name and e.get("operation") == "Apply"), None
        )
        entry = {
            "manager": name,
            "operation": "Apply",
            "apiVersion": merged.get("apiVersion", ""),
            "time": previous.get("time") if previous and name != manager else None,
            "fieldsType": "FieldsV1",
            "fieldsV1": encode(paths),
        }
        kept.append(entry)
    merged.setdefault("metadata", {})["managedFields"] = kept
    return merged


def record_update(old: dict[str, Any], new: dict[str, Any], manager: str, now: str) -> None:
    """Record `manager`'s update in `new`'s managedFields; once the object has apply managers, the fields it
    changes move to `manager` (so a later apply of another value conflicts with it)."""
    meta = new.setdefault("metadata", {})
    entries = [dict(e) for e in meta.get("managedFields") or []]
    tracked = any(e.get("operation") == "Apply" for e in entries)
    changed: set[Path] = set()
    if tracked:
        changed = {
            p for p in field_set(old) | field_set(new) if p[-1] != "." and _get(old, p) != _get(new, p)
        }
        for entry in entries:
            if entry.get("operation") == "Apply" or entry.get("manager") != manager:
                entry["fieldsV1"] = encode(decode(entry.get("fieldsV1") or {}) - changed)
    previous = next(
        (e for e in entries if e.get("manager") == manager and e.get("operation") == "Update"), None
    )
    owned = decode(previous.get("fieldsV1") or {}) if previous else set()
    entries = [e for e in entries if e is not previous]
    entries.append(
        {
            "manager": manager,
            "operation": "Update",
            "apiVersion": new.get("apiVersion", ""),
            "time": now,
            "fieldsType": "FieldsV1",
            "fieldsV1": encode(owned | changed),
        }
    )
    meta["managedFields"] = entries
