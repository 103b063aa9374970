"""`meta.k8s.io/v1` Table responses, which `kubectl get` asks for (`Accept: ...;as=Table`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from ._types import ResourceType

_NAME_COL = {"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}
_AGE_COL = {"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp", "priority": 0}


def _col(name: str, priority: int = 0, type_: str = "string") -> dict[str, Any]:
    return {"name": name, "type": type_, "format": "", "description": name, "priority": priority}


def human_age(stamp: str | None, now: datetime) -> str:
    if not stamp:
        return "<unknown>"
    try:
        then = datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    return f"{days}d{hours % 24}h" if days < 8 and hours % 24 else f"{days}d"


def _pod_cells(obj: dict[str, Any]) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    reason = status.get("reason") or status.get("phase") or "Pending"
    for s in statuses:
        state = s.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state and state["terminated"].get("reason"):
            reason = state["terminated"]["reason"]
    if obj["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return [f"{ready}/{len(spec.get('containers') or [])}", reason, restarts]


def _ports(spec: dict[str, Any]) -> str:
    parts = []
    for p in spec.get("ports") or []:
        text = f"{p.get('port')}"
        if p.get("nodePort"):
            text += f":{p['nodePort']}"
        parts.append(f"{text}/{p.get('protocol', 'TCP')}")
    return ",".join(parts) or "<none>"


def _builtin(rt: ResourceType) -> tuple[list[dict[str, Any]], Any] | None:
    kind = rt.kind
    if kind == "Pod":
        return [_col("Ready"), _col("Status"), _col("Restarts", type_="integer")], _pod_cells
    if kind == "Deployment":
        return [
            _col("Ready"),
            _col("Up-to-date", type_="integer"),
            _col("Available", type_="integer"),
        ], lambda o: [
            f"{(o.get('status') or {}).get('readyReplicas', 0)}/{(o.get('spec') or {}).get('replicas', 0)}",
            (o.get("status") or {}).get("updatedReplicas", 0),
            (o.get("status") or {}).get("availableReplicas", 0),
        ]
    if kind in ("ReplicaSet",):
        return [
            _col("Desired", type_="integer"),
            _col("Current", type_="integer"),
            _col("Ready", type_="integer"),
        ], lambda o: [
            (o.get("spec") or {}).get("replicas", 0),
            (o.get("status") or {}).get("replicas", 0),
            (o.get("status") or {}).get("readyReplicas", 0),
        ]
    if kind == "StatefulSet":
        return [_col("Ready")], lambda o: [
            f"{(o.get('status') or {}).get('readyReplicas', 0)}/{(o.get('spec') or {}).get('replicas', 0)}"
        ]
    if kind == "DaemonSet":
        return [
            _col("Desired", type_="integer"),
            _col("Current", type_="integer"),
            _col("Ready", type_="integer"),
            _col("Available", type_="integer"),
        ], lambda o: [
            (o.get("status") or {}).get(k, 0)
            for k in ("desiredNumberScheduled", "currentNumberScheduled", "numberReady", "numberAvailable")
        ]
    if kind == "HorizontalPodAutoscaler":

        def _hpa(o: dict[str, Any]) -> list[Any]:
            spec, status = o.get("spec") or {}, o.get("status") or {}
            ref = spec.get("scaleTargetRef") or {}
            return [
                f"{ref.get('kind', '')}/{ref.get('name', '')}",
                spec.get("minReplicas", 1),
                spec.get("maxReplicas", 0),
                status.get("currentReplicas", 0),
            ]

        return [
            _col("Reference"),
            _col("MinPods", type_="integer"),
            _col("MaxPods", type_="integer"),
            _col("Replicas", type_="integer"),
        ], _hpa
    if kind == "Namespace":
        return [_col("Status")], lambda o: [(o.get("status") or {}).get("phase", "")]
    if kind == "Node":

        def _node(o: dict[str, Any]) -> list[Any]:
            conds = {c.get("type"): c.get("status") for c in (o.get("status") or {}).get("conditions") or []}
            state = "Ready" if conds.get("Ready") == "True" else "NotReady" if conds else "Unknown"
            if (o.get("spec") or {}).get("unschedulable"):
                state += ",SchedulingDisabled"
            labels = o["metadata"].get("labels") or {}
            roles = (
                ",".join(
                    sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
                )
                or "<none>"
            )
            version = ((o.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")
            return [state, roles, version]

        return [_col("Status"), _col("Roles"), _col("Version")], _node
    if kind == "Service":
        return [_col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)")], lambda o: [
            (o.get("spec") or {}).get("type", ""),
            (o.get("spec") or {}).get("clusterIP", ""),
            ",".join(
                i.get("ip", "")
                for i in ((o.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            )
            or "<none>",
            _ports(o.get("spec") or {}),
        ]
    if kind in ("ConfigMap", "Secret"):

        def _data(o: dict[str, Any]) -> list[Any]:
            count = len(o.get("data") or {}) + len(o.get("binaryData") or {})
            return [o.get("type", ""), count] if kind == "Secret" else [count]

        cols = (
            [_col("Type"), _col("Data", type_="integer")]
            if kind == "Secret"
            else [_col("Data", type_="integer")]
        )
        return cols, _data
    return None


def _json_path(obj: Any, path: str) -> Any:
    """The subset of JSONPath additionalPrinterColumns use: `.a.b`, `.a[0].b`, `.a[?(@.type=="X")].status`."""
    current: Any = obj
    escaped = path.replace("\\.", "\x00")
    for token in re.findall(r"\.([^.\[]+)|\[(\d+)\]|\[\?\(@\.(\w+)==[\"']([^\"']*)[\"']\)\]", escaped):
        key, index, fkey, fval = token
        if key:
            key = key.replace("\x00", ".")
            current = current.get(key) if isinstance(current, dict) else None
        elif index:
            current = current[int(index)] if isinstance(current, list) and int(index) < len(current) else None
        else:
            current = (
                next((i for i in current or [] if isinstance(i, dict) and str(i.get(fkey)) == fval), None)
                if isinstance(current, list)
                else None
            )
        if current is None:
            return None
    return current


def _event_table(objs: list[dict[str, Any]], now: datetime) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    """core/v1 Events print without a leading Name column, as `kubectl get events` shows them."""
    columns = [
        _col("Last Seen"),
        _col("Type"),
        _col("Reason"),
        _col("Object"),
        _col("Message"),
        _col("First Seen", 1),
        _col("Count", 1, "integer"),
        _col("Name", 1),
    ]
    rows = []
    for o in objs:
        ref = o.get("involvedObject") or {}
        last = o.get("lastTimestamp") or o.get("eventTime") or o["metadata"].get("creationTimestamp")
        rows.append(
            [
                human_age(last, now),
                o.get("type", ""),
                o.get("reason", ""),
                f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}",
                o.get("message", ""),
                human_age(o.get("firstTimestamp") or last, now),
                o.get("count", 1),
                o["metadata"]["name"],
            ]
        )
    return columns, rows


def table(
    rt: ResourceType, objs: list[dict[str, Any]], clock: Any, list_meta: dict[str, Any] | None
) -> dict[str, Any]:
    now = clock.now()
    if rt.kind == "Event" and rt.group == "":
        event_columns, cell_rows = _event_table(objs, now)
        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": list_meta or {},
            "columnDefinitions": event_columns,
            "rows": [
                {
                    "cells": cells,
                    "object": {
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": o["metadata"],
                    },
                }
                for cells, o in zip(cell_rows, objs, strict=True)
            ],
        }
    columns: list[dict[str, Any]] = [_NAME_COL]
    rows = []
    builtin = None if rt.custom else _builtin(rt)
    # A CRD's additionalPrinterColumns replace the default Age column (an Age column is usually among them).
    custom_cols = list(rt.printer_columns)
    has_age = not custom_cols
    if builtin is not None:
        columns += builtin[0]
    for c in custom_cols:
        columns.append(
            {
                "name": c.get("name", ""),
                "type": c.get("type", "string"),
                "format": c.get("format", ""),
                "description": c.get("description", ""),
                "priority": int(c.get("priority", 0)),
            }
        )
    if has_age:
        columns.append(_AGE_COL)
    for obj in objs:
        meta = obj["metadata"]
        cells: list[Any] = [meta.get("name", "")]
        if builtin is not None:
            cells += builtin[1](obj)
        for c in custom_cols:
            value = _json_path(obj, str(c.get("jsonPath", "")))
            if c.get("type") == "date" and isinstance(value, str):
                value = human_age(value, now)
            cells.append(value)
        if has_age:
            cells.append(human_age(meta.get("creationTimestamp"), now))
        partial = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}
        rows.append({"cells": cells, "object": partial})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta
        or {"resourceVersion": objs[0]["metadata"].get("resourceVersion", "") if objs else ""},
        "columnDefinitions": columns,
        "rows": rows,
    }
