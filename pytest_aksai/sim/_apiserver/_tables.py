"""`meta.k8s.io/v1` Table responses, which `kubectl get` asks for (`Accept: ...;as=Table`)."""

from __future__ import annotations

import re
from collections.abc import Callable
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


_AGE = "__age__"
Cell = Any
Column = tuple[dict[str, Any], Any]  # definition, cell function (or _AGE)


def _g(obj: Any, *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return default
        obj = obj.get(key)
    return default if obj is None else obj


def _pod_cells(obj: dict[str, Any], now: datetime) -> list[Any]:
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
    last = max(
        (
            str(_g(s, "lastState", "terminated", "finishedAt"))
            for s in statuses
            if _g(s, "lastState", "terminated", "finishedAt")
        ),
        default=None,
    )
    restart_text = f"{restarts} ({human_age(last, now)} ago)" if restarts and last else str(restarts)
    return [f"{ready}/{len(spec.get('containers') or [])}", reason, restart_text]


def _ports(spec: dict[str, Any]) -> str:
    parts = []
    for p in spec.get("ports") or []:
        text = f"{p.get('port')}"
        if p.get("nodePort"):
            text += f":{p['nodePort']}"
        parts.append(f"{text}/{p.get('protocol', 'TCP')}")
    return ",".join(parts) or "<none>"


def _selector(selector: Any) -> str:
    if not isinstance(selector, dict):
        return "<none>"
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        return ",".join(f"{k}={v}" for k, v in selector.items()) or "<none>"
    parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key"), ",".join(expr.get("values") or [])
        parts.append(
            {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": str(key)}.get(
                str(op), f"!{key}"
            )
        )
    return ",".join(parts) or "<none>"


def _containers(obj: dict[str, Any], *path: str) -> tuple[str, str]:
    containers = _g(obj, *path, "containers", default=[])
    return (
        ",".join(str(c.get("name", "")) for c in containers),
        ",".join(str(c.get("image", "")) for c in containers),
    )


def _wide_workload(path: tuple[str, ...], selector: bool = True) -> list[Column]:
    columns: list[Column] = [
        (_col("Containers", 1), lambda o, n: _containers(o, *path)[0]),
        (_col("Images", 1), lambda o, n: _containers(o, *path)[1]),
    ]
    if selector:
        columns.append((_col("Selector", 1), lambda o, n: _selector(_g(o, "spec", "selector"))))
    return columns


def _node_address(o: dict[str, Any], kind: str) -> str:
    return next(
        (a.get("address", "") for a in _g(o, "status", "addresses", default=[]) if a.get("type") == kind),
        "<none>",
    )


def _node_cells(o: dict[str, Any], n: datetime) -> list[Any]:
    conds = {c.get("type"): c.get("status") for c in _g(o, "status", "conditions", default=[])}
    state = "Ready" if conds.get("Ready") == "True" else "NotReady" if conds else "Unknown"
    if _g(o, "spec", "unschedulable"):
        state += ",SchedulingDisabled"
    labels = o["metadata"].get("labels") or {}
    roles = (
        ",".join(sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")))
        or "<none>"
    )
    return [state, roles]


def _duration(start: str | None, end: str | None, now: datetime) -> str:
    if not start:
        return ""
    if not end:
        return human_age(start, now)
    stop = datetime.strptime(end[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return human_age(start, stop)


def _job_status(o: dict[str, Any]) -> str:
    conds = {c.get("type"): c.get("status") for c in _g(o, "status", "conditions", default=[])}
    if conds.get("Complete") == "True":
        return "Complete"
    if conds.get("Failed") == "True":
        return "Failed"
    if conds.get("FailureTarget") == "True" or conds.get("SuccessCriteriaMet") == "True":
        return "Terminating" if conds.get("FailureTarget") == "True" else "Complete"
    if _g(o, "spec", "suspend"):
        return "Suspended"
    return "Running"


def _subjects(o: dict[str, Any], kind: str) -> str:
    names = []
    for s in o.get("subjects") or []:
        if s.get("kind") == kind:
            names.append(
                f"{s.get('namespace', '')}/{s.get('name', '')}"
                if kind == "ServiceAccount"
                else s.get("name", "")
            )
    return ", ".join(str(n) for n in names)


CellFn = Callable[[dict[str, Any], datetime], Any]


def _at(*path: str, default: Any = 0, key: str | None = None) -> CellFn:
    """A cell showing the value at `path` (and `key`), or `default`."""
    full = (*path, key) if key is not None else path

    def cell(obj: dict[str, Any], now: datetime) -> Any:
        return _g(obj, *full, default=default)

    return cell


def _builtin(rt: ResourceType) -> list[Column] | None:
    kind = rt.kind
    if kind == "Pod":
        return [
            (_col("Ready"), lambda o, n: _pod_cells(o, n)[0]),
            (_col("Status"), lambda o, n: _pod_cells(o, n)[1]),
            (_col("Restarts"), lambda o, n: _pod_cells(o, n)[2]),
            (_AGE_COL, _AGE),
            (_col("IP", 1), _at("status", "podIP", default="<none>")),
            (_col("Node", 1), _at("spec", "nodeName", default="<none>")),
            (_col("Nominated Node", 1), _at("status", "nominatedNodeName", default="<none>")),
            (
                _col("Readiness Gates", 1),
                lambda o, n: _readiness_gates(o),
            ),
        ]
    if kind == "Node":
        return [
            (_col("Status"), lambda o, n: _node_cells(o, n)[0]),
            (_col("Roles"), lambda o, n: _node_cells(o, n)[1]),
            (_AGE_COL, _AGE),
            (_col("Version"), _at("status", "nodeInfo", default="<unknown>", key="kubeletVersion")),
            (_col("Internal-IP", 1), lambda o, n: _node_address(o, "InternalIP")),
            (_col("External-IP", 1), lambda o, n: _node_address(o, "ExternalIP")),
            (_col("OS-Image", 1), _at("status", "nodeInfo", default="<unknown>", key="osImage")),
            (_col("Kernel-Version", 1), _at("status", "nodeInfo", default="<unknown>", key="kernelVersion")),
            (
                _col("Container-Runtime", 1),
                _at("status", "nodeInfo", default="<unknown>", key="containerRuntimeVersion"),
            ),
        ]
    if kind == "Deployment":
        return [
            (
                _col("Ready"),
                lambda o, n: (
                    f"{_g(o, 'status', 'readyReplicas', default=0)}/{_g(o, 'spec', 'replicas', default=0)}"
                ),
            ),
            (_col("Up-to-date", type_="integer"), _at("status", "updatedReplicas")),
            (_col("Available", type_="integer"), _at("status", "availableReplicas")),
            (_AGE_COL, _AGE),
            *_wide_workload(("spec", "template", "spec")),
        ]
    if kind in ("ReplicaSet", "ReplicationController"):
        return [
            (_col("Desired", type_="integer"), _at("spec", "replicas", default=0)),
            (_col("Current", type_="integer"), _at("status", "replicas")),
            (_col("Ready", type_="integer"), _at("status", "readyReplicas")),
            (_AGE_COL, _AGE),
            *_wide_workload(("spec", "template", "spec")),
        ]
    if kind == "StatefulSet":
        return [
            (
                _col("Ready"),
                lambda o, n: (
                    f"{_g(o, 'status', 'readyReplicas', default=0)}/{_g(o, 'spec', 'replicas', default=0)}"
                ),
            ),
            (_AGE_COL, _AGE),
            *_wide_workload(("spec", "template", "spec"), selector=False),
        ]
    if kind == "DaemonSet":
        return [
            (_col("Desired", type_="integer"), _at("status", "desiredNumberScheduled")),
            (_col("Current", type_="integer"), _at("status", "currentNumberScheduled")),
            (_col("Ready", type_="integer"), _at("status", "numberReady")),
            (_col("Up-to-date", type_="integer"), _at("status", "updatedNumberScheduled")),
            (_col("Available", type_="integer"), _at("status", "numberAvailable")),
            (
                _col("Node Selector"),
                lambda o, n: (
                    ",".join(
                        f"{k}={v}"
                        for k, v in _g(o, "spec", "template", "spec", "nodeSelector", default={}).items()
                    )
                    or "<none>"
                ),
            ),
            (_AGE_COL, _AGE),
            *_wide_workload(("spec", "template", "spec")),
        ]
    if kind == "Job":
        return [
            (_col("Status"), lambda o, n: _job_status(o)),
            (
                _col("Completions"),
                lambda o, n: (
                    f"{_g(o, 'status', 'succeeded', default=0)}/{_g(o, 'spec', 'completions', default=1) if _g(o, 'spec', 'completions') is not None else '1 of ' + str(_g(o, 'spec', 'parallelism', default=1))}"
                ),
            ),
            (
                _col("Duration"),
                lambda o, n: _duration(_g(o, "status", "startTime"), _g(o, "status", "completionTime"), n),
            ),
            (_AGE_COL, _AGE),
            *_wide_workload(("spec", "template", "spec")),
        ]
    if kind == "CronJob":
        return [
            (_col("Schedule"), _at("spec", "schedule", default="")),
            (_col("Timezone"), _at("spec", "timeZone", default="<none>")),
            (_col("Suspend"), lambda o, n: "True" if _g(o, "spec", "suspend") else "False"),
            (_col("Active", type_="integer"), lambda o, n: len(_g(o, "status", "active", default=[]))),
            (
                _col("Last Schedule"),
                lambda o, n: (
                    human_age(_g(o, "status", "lastScheduleTime"), n)
                    if _g(o, "status", "lastScheduleTime")
                    else "<none>"
                ),
            ),
            (_AGE_COL, _AGE),
            *_wide_workload(("spec", "jobTemplate", "spec", "template", "spec"), selector=False),
            (_col("Selector", 1), lambda o, n: _selector(_g(o, "spec", "jobTemplate", "spec", "selector"))),
        ]
    if kind == "HorizontalPodAutoscaler":
        return [
            (
                _col("Reference"),
                lambda o, n: (
                    f"{_g(o, 'spec', 'scaleTargetRef', 'kind')}/{_g(o, 'spec', 'scaleTargetRef', 'name')}"
                ),
            ),
            (_col("Targets"), lambda o, n: _hpa_targets(o)),
            (_col("MinPods", type_="integer"), _at("spec", "minReplicas", default=1)),
            (_col("MaxPods", type_="integer"), _at("spec", "maxReplicas", default=0)),
            (_col("Replicas", type_="integer"), _at("status", "currentReplicas")),
            (_AGE_COL, _AGE),
        ]
    if kind == "Namespace":
        return [(_col("Status"), _at("status", "phase", default="")), (_AGE_COL, _AGE)]
    if kind == "Service":
        return [
            (_col("Type"), _at("spec", "type", default="")),
            (_col("Cluster-IP"), _at("spec", "clusterIP", default="<none>")),
            (
                _col("External-IP"),
                lambda o, n: (
                    ",".join(
                        i.get("ip", "") or i.get("hostname", "")
                        for i in _g(o, "status", "loadBalancer", "ingress", default=[])
                    )
                    or ("<pending>" if _g(o, "spec", "type") == "LoadBalancer" else "<none>")
                ),
            ),
            (_col("Port(s)"), lambda o, n: _ports(o.get("spec") or {})),
            (_AGE_COL, _AGE),
            (_col("Selector", 1), lambda o, n: _selector(_g(o, "spec", "selector"))),
        ]
    if kind == "ConfigMap":
        return [
            (
                _col("Data", type_="integer"),
                lambda o, n: len(o.get("data") or {}) + len(o.get("binaryData") or {}),
            ),
            (_AGE_COL, _AGE),
        ]
    if kind == "Secret":
        return [
            (_col("Type"), lambda o, n: o.get("type", "")),
            (_col("Data", type_="integer"), lambda o, n: len(o.get("data") or {})),
            (_AGE_COL, _AGE),
        ]
    if kind == "ServiceAccount":
        return [
            (_col("Secrets", type_="integer"), lambda o, n: len(o.get("secrets") or [])),
            (_AGE_COL, _AGE),
        ]
    if kind == "Endpoints":
        return [(_col("Endpoints"), lambda o, n: _endpoints(o)), (_AGE_COL, _AGE)]
    if kind == "PersistentVolumeClaim":
        return [
            (_col("Status"), _at("status", "phase", default="")),
            (_col("Volume"), _at("spec", "volumeName", default="")),
            (_col("Capacity"), lambda o, n: _g(o, "status", "capacity", "storage", default="")),
            (_col("Access Modes"), lambda o, n: _access_modes(_g(o, "status", "accessModes", default=[]))),
            (_col("StorageClass"), _at("spec", "storageClassName", default="<unset>")),
            (_col("VolumeAttributesClass"), _at("spec", "volumeAttributesClassName", default="<unset>")),
            (_AGE_COL, _AGE),
            (_col("VolumeMode", 1), _at("spec", "volumeMode", default="Filesystem")),
        ]
    if kind == "PersistentVolume":
        return [
            (_col("Capacity"), lambda o, n: _g(o, "spec", "capacity", "storage", default="")),
            (_col("Access Modes"), lambda o, n: _access_modes(_g(o, "spec", "accessModes", default=[]))),
            (_col("Reclaim Policy"), _at("spec", "persistentVolumeReclaimPolicy", default="Retain")),
            (_col("Status"), _at("status", "phase", default="")),
            (
                _col("Claim"),
                lambda o, n: (
                    f"{_g(o, 'spec', 'claimRef', 'namespace')}/{_g(o, 'spec', 'claimRef', 'name')}"
                    if _g(o, "spec", "claimRef")
                    else ""
                ),
            ),
            (_col("StorageClass"), _at("spec", "storageClassName", default="")),
            (_col("VolumeAttributesClass"), _at("spec", "volumeAttributesClassName", default="<unset>")),
            (_col("Reason"), _at("status", "reason", default="")),
            (_AGE_COL, _AGE),
            (_col("VolumeMode", 1), _at("spec", "volumeMode", default="Filesystem")),
        ]
    if kind == "PodDisruptionBudget":
        return [
            (_col("Min Available"), _at("spec", "minAvailable", default="N/A")),
            (_col("Max Unavailable"), _at("spec", "maxUnavailable", default="N/A")),
            (_col("Allowed Disruptions", type_="integer"), _at("status", "disruptionsAllowed")),
            (_AGE_COL, _AGE),
        ]
    if kind == "ResourceQuota":
        return [
            (_AGE_COL, _AGE),
            (_col("Request"), lambda o, n: _quota(o, request=True)),
            (_col("Limit"), lambda o, n: _quota(o, request=False)),
        ]
    if kind == "Ingress":
        return [
            (_col("Class"), _at("spec", "ingressClassName", default="<none>")),
            (
                _col("Hosts"),
                lambda o, n: (
                    ",".join(str(r.get("host", "*")) for r in _g(o, "spec", "rules", default=[])) or "*"
                ),
            ),
            (
                _col("Address"),
                lambda o, n: ",".join(
                    i.get("ip", "") or i.get("hostname", "")
                    for i in _g(o, "status", "loadBalancer", "ingress", default=[])
                ),
            ),
            (_col("Ports"), lambda o, n: "80, 443" if _g(o, "spec", "tls") else "80"),
            (_AGE_COL, _AGE),
        ]
    if kind == "IngressClass":
        return [
            (_col("Controller"), _at("spec", "controller", default="")),
            (_col("Parameters"), lambda o, n: "<none>"),
            (_AGE_COL, _AGE),
        ]
    if kind == "StorageClass":
        return [
            (_col("Provisioner"), lambda o, n: o.get("provisioner", "")),
            (_col("ReclaimPolicy"), lambda o, n: o.get("reclaimPolicy", "Delete")),
            (_col("VolumeBindingMode"), lambda o, n: o.get("volumeBindingMode", "Immediate")),
            (_col("AllowVolumeExpansion"), lambda o, n: str(bool(o.get("allowVolumeExpansion"))).lower()),
            (_AGE_COL, _AGE),
        ]
    if kind == "PriorityClass":
        return [
            (_col("Value", type_="integer"), lambda o, n: o.get("value", 0)),
            (_col("Global-Default"), lambda o, n: str(bool(o.get("globalDefault"))).lower()),
            (_AGE_COL, _AGE),
            (_col("PreemptionPolicy"), lambda o, n: o.get("preemptionPolicy", "PreemptLowerPriority")),
        ]
    if kind in ("Role", "ClusterRole", "LimitRange"):
        return [(_col("Created At", type_="date"), lambda o, n: o["metadata"].get("creationTimestamp", ""))]
    if kind in ("RoleBinding", "ClusterRoleBinding"):
        return [
            (_col("Role"), lambda o, n: f"{_g(o, 'roleRef', 'kind')}/{_g(o, 'roleRef', 'name')}"),
            (_AGE_COL, _AGE),
            (_col("Users", 1), lambda o, n: _subjects(o, "User")),
            (_col("Groups", 1), lambda o, n: _subjects(o, "Group")),
            (_col("ServiceAccounts", 1), lambda o, n: _subjects(o, "ServiceAccount")),
        ]
    if kind == "NetworkPolicy":
        return [
            (
                _col("Pod-Selector"),
                lambda o, n: (
                    _selector(_g(o, "spec", "podSelector"))
                    if _selector(_g(o, "spec", "podSelector")) != "<none>"
                    else "<none>"
                ),
            ),
            (_AGE_COL, _AGE),
        ]
    if kind == "ControllerRevision":
        return [
            (_col("Controller"), lambda o, n: _controller(o)),
            (_col("Revision", type_="integer"), lambda o, n: o.get("revision", 0)),
            (_AGE_COL, _AGE),
        ]
    if kind == "APIService":
        return [
            (
                _col("Service"),
                lambda o, n: (
                    f"{_g(o, 'spec', 'service', 'namespace')}/{_g(o, 'spec', 'service', 'name')}"
                    if _g(o, "spec", "service")
                    else "Local"
                ),
            ),
            (
                _col("Available"),
                lambda o, n: next(
                    (
                        c.get("status")
                        for c in _g(o, "status", "conditions", default=[])
                        if c.get("type") == "Available"
                    ),
                    "Unknown",
                ),
            ),
            (_AGE_COL, _AGE),
        ]
    if kind == "CertificateSigningRequest":
        return [
            (_AGE_COL, _AGE),
            (_col("SignerName"), _at("spec", "signerName", default="")),
            (_col("Requestor"), _at("spec", "username", default="")),
            (
                _col("RequestedDuration"),
                lambda o, n: (
                    f"{_g(o, 'spec', 'expirationSeconds')}s"
                    if _g(o, "spec", "expirationSeconds")
                    else "<none>"
                ),
            ),
            (
                _col("Condition"),
                lambda o, n: (
                    ",".join(str(c.get("type")) for c in _g(o, "status", "conditions", default=[]))
                    or "Pending"
                ),
            ),
        ]
    if kind == "Lease":
        return [(_col("Holder"), _at("spec", "holderIdentity", default="")), (_AGE_COL, _AGE)]
    return None


def _controller(o: dict[str, Any]) -> str:
    for ref in o["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            return f"{str(ref.get('kind', '')).lower()}{'.' + group if group else ''}/{ref.get('name', '')}"
    return "<none>"


def _readiness_gates(o: dict[str, Any]) -> str:
    gates = _g(o, "spec", "readinessGates", default=[])
    if not gates:
        return "<none>"
    conds = {c.get("type"): c.get("status") for c in _g(o, "status", "conditions", default=[])}
    ready = sum(1 for g in gates if conds.get(g.get("conditionType")) == "True")
    return f"{ready}/{len(gates)}"


def _hpa_targets(o: dict[str, Any]) -> str:
    """`formatHPAMetrics` of the server's table printer: per metric `current/target`, matched to the status by
    index; `<unknown>` until the controller has a value; more than two metrics end with `+ N more...`."""
    out = []
    statuses = _g(o, "status", "currentMetrics", default=[]) or []
    for i, metric in enumerate(_g(o, "spec", "metrics", default=[]) or []):
        kind = metric.get("type")
        field = {
            "Resource": "resource",
            "ContainerResource": "containerResource",
            "External": "external",
            "Pods": "pods",
            "Object": "object",
        }.get(str(kind), "")
        source = metric.get(field) or {}
        target = source.get("target") or {}
        status = statuses[i] if i < len(statuses) and statuses[i].get("type") == kind else {}
        current = (status.get(field) or {}).get("current") or {}
        if kind in ("Resource", "ContainerResource"):
            name = source.get("name")
            if target.get("averageValue") is not None:
                seen = current.get("averageValue", "<unknown>")
                out.append(f"{name}: {seen}/{target['averageValue']}")
            else:
                seen = current.get("averageUtilization")
                shown = f"{seen}%" if seen is not None else "<unknown>"
                out.append(f"{name}: {shown}/{target.get('averageUtilization')}%")
        elif kind == "External" and target.get("averageValue") is not None:
            out.append(f"{current.get('averageValue', '<unknown>')}/{target['averageValue']} (avg)")
        else:
            want = target.get("value") or target.get("averageValue")
            out.append(f"{current.get('value') or current.get('averageValue') or '<unknown>'}/{want}")
    if not out and _g(o, "spec", "targetCPUUtilizationPercentage") is not None:
        seen = _g(o, "status", "currentCPUUtilizationPercentage")
        out.append(
            f"cpu: {f'{seen}%' if seen is not None else '<unknown>'}/{_g(o, 'spec', 'targetCPUUtilizationPercentage')}%"
        )
    if len(out) > 2:
        return f"{', '.join(out[:2])} + {len(out) - 2} more..."
    return ", ".join(out) or "<none>"


def _endpoints(o: dict[str, Any]) -> str:
    items = [
        f"{a.get('ip')}:{p.get('port')}"
        for subset in o.get("subsets") or []
        for a in subset.get("addresses") or []
        for p in subset.get("ports") or [{}]
    ]
    text = ",".join(items[:3]) + (f" + {len(items) - 3} more..." if len(items) > 3 else "")
    return text or "<none>"


def _access_modes(modes: list[str]) -> str:
    short = {
        "ReadWriteOnce": "RWO",
        "ReadOnlyMany": "ROX",
        "ReadWriteMany": "RWX",
        "ReadWriteOncePod": "RWOP",
    }
    return ",".join(short.get(m, m) for m in modes)


def _quota(o: dict[str, Any], *, request: bool) -> str:
    hard = _g(o, "status", "hard", default=None) or _g(o, "spec", "hard", default={})
    used = _g(o, "status", "used", default={})
    keys = sorted(k for k in hard if k.startswith("limits.") != request)
    return ", ".join(f"{k}: {used.get(k, '0')}/{hard[k]}" for k in keys)


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


def _custom_cell(path: str, date: bool) -> Any:
    def cell(obj: dict[str, Any], now: datetime) -> Any:
        value = _json_path(obj, path)
        return human_age(value, now) if date and isinstance(value, str) else value

    return cell


def _row_object(obj: dict[str, Any], include: str) -> dict[str, Any]:
    """`includeObject`: None (no object), Metadata (the default: PartialObjectMetadata) or Object."""
    if include == "None":
        return {}
    if include == "Object":
        return {"object": obj}
    return {
        "object": {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"],
        }
    }


def table(
    rt: ResourceType,
    objs: list[dict[str, Any]],
    clock: Any,
    list_meta: dict[str, Any] | None,
    include: str = "Metadata",
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
                {"cells": cells, **_row_object(o, include)} for cells, o in zip(cell_rows, objs, strict=True)
            ],
        }
    columns: list[dict[str, Any]] = [_NAME_COL]
    rows = []
    builtin = None if rt.custom else _builtin(rt)
    # A CRD's additionalPrinterColumns replace the default Age column (an Age column is usually among them).
    custom_cols = list(rt.printer_columns)
    cells_of: list[Any] = []
    if builtin is not None:
        for definition, cell in builtin:
            columns.append(definition)
            cells_of.append(cell)
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
        cells_of.append(_custom_cell(str(c.get("jsonPath", "")), c.get("type") == "date"))
    if not custom_cols and _AGE not in cells_of:
        columns.append(_AGE_COL)
        cells_of.append(_AGE)
    for obj in objs:
        meta = obj["metadata"]
        cells: list[Any] = [meta.get("name", "")]
        for cell in cells_of:
            if cell is _AGE:
                cells.append(human_age(meta.get("creationTimestamp"), now))
            else:
                cells.append(cell(obj, now))
        rows.append({"cells": cells, **_row_object(obj, include)})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta
        or {"resourceVersion": objs[0]["metadata"].get("resourceVersion", "") if objs else ""},
        "columnDefinitions": columns,
        "rows": rows,
    }
