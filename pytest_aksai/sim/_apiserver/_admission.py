"""Defaulting and validation of built-in kinds (the subset the lab uses), and the hooks that run after writes."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from typing import TYPE_CHECKING, Any

from . import _crd, _schema
from ._errors import ApiError, FieldError, invalid
from ._selectors import label_selector_from_dict
from ._types import ResourceType

if TYPE_CHECKING:
    from ._store import Obj, Store

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_NAME_KINDS = frozenset({"Namespace", "Service"})
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def _check_name(kind: str, meta: dict[str, Any], errors: list[FieldError]) -> None:
    name = meta.get("name")
    if not name:
        errors.append(
            FieldError("FieldValueRequired", "metadata.name", detail="name or generateName is required")
        )
        return
    if kind in _LABEL_NAME_KINDS:
        if len(name) > 63 or not _DNS1123_LABEL.match(name):
            errors.append(FieldError("FieldValueInvalid", "metadata.name", name, _LABEL_MSG))
    elif len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        errors.append(FieldError("FieldValueInvalid", "metadata.name", name, _SUBDOMAIN_MSG))
    _check_metadata_maps(meta, errors)


_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation "
    "is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def _check_key(key: str, field: str, errors: list[FieldError]) -> None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        errors.append(FieldError("FieldValueInvalid", field, key, "prefix part " + _SUBDOMAIN_MSG))
    if len(name) > 63:
        errors.append(
            FieldError("FieldValueInvalid", field, key, "name part must be no more than 63 characters")
        )
    elif not _LABEL_NAME.match(name):
        errors.append(FieldError("FieldValueInvalid", field, key, _NAME_PART_MSG))


def _check_metadata_maps(meta: dict[str, Any], errors: list[FieldError]) -> None:
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is None:
            continue
        if not isinstance(value, dict):
            errors.append(FieldError("FieldValueInvalid", f"metadata.{field}", value, "must be a map"))
            continue
        for k, v in value.items():
            _check_key(str(k), f"metadata.{field}", errors)
            if not isinstance(v, str):
                errors.append(
                    FieldError(
                        "FieldValueInvalid", f"metadata.{field}", v, f"value of {k!r} must be a string"
                    )
                )
            elif field == "labels" and v:
                if len(v) > 63:
                    errors.append(
                        FieldError(
                            "FieldValueInvalid", "metadata.labels", v, "must be no more than 63 characters"
                        )
                    )
                elif not _LABEL_NAME.match(v):
                    errors.append(FieldError("FieldValueInvalid", "metadata.labels", v, _LABEL_VALUE_MSG))


def _default_container(c: dict[str, Any]) -> None:
    image = str(c.get("image", ""))
    tag = image.rsplit("/", 1)[-1]
    if "imagePullPolicy" not in c:
        c["imagePullPolicy"] = (
            "Always" if (":" not in tag or tag.endswith(":latest")) and "@" not in tag else "IfNotPresent"
        )
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def _pod_spec(spec: Any, path: str, errors: list[FieldError], *, template: bool) -> None:
    if not isinstance(spec, dict):
        errors.append(FieldError("FieldValueRequired", path))
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    if not template:
        spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        tolerations = spec.setdefault("tolerations", [])
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if not any(isinstance(t, dict) and t.get("key") == key for t in tolerations):
                tolerations.append(
                    {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
                )
    containers = spec.get("containers")
    if not containers:
        errors.append(FieldError("FieldValueRequired", f"{path}.containers"))
        return
    names: set[str] = set()
    for field in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(field) or []):
            cpath = f"{path}.{field}[{i}]"
            if not isinstance(c, dict):
                errors.append(FieldError("FieldValueInvalid", cpath, c, "must be an object"))
                continue
            _default_container(c)
            name = c.get("name")
            if not name:
                errors.append(FieldError("FieldValueRequired", f"{cpath}.name"))
            elif not _DNS1123_LABEL.match(str(name)):
                errors.append(FieldError("FieldValueInvalid", f"{cpath}.name", name, _LABEL_MSG))
            elif name in names:
                errors.append(FieldError("FieldValueDuplicate", f"{cpath}.name", name))
            else:
                names.add(str(name))
            if not c.get("image"):
                errors.append(FieldError("FieldValueRequired", f"{cpath}.image"))
            for j, port in enumerate(c.get("ports") or []):
                cp = port.get("containerPort") if isinstance(port, dict) else None
                if not isinstance(cp, int) or not 0 < cp < 65536:
                    errors.append(
                        FieldError(
                            "FieldValueInvalid" if cp is not None else "FieldValueRequired",
                            f"{cpath}.ports[{j}].containerPort",
                            cp,
                            "must be between 1 and 65535, inclusive",
                        )
                    )
    if spec.get("restartPolicy") not in ("Always", "OnFailure", "Never"):
        errors.append(
            FieldError(
                "FieldValueNotSupported",
                f"{path}.restartPolicy",
                spec.get("restartPolicy"),
                'supported values: "Always", "OnFailure", "Never"',
            )
        )


def _workload(obj: Obj, errors: list[FieldError], old: Obj | None) -> None:
    kind = obj["kind"]
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        errors.append(FieldError("FieldValueInvalid", "spec", spec, "must be an object"))
        return
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    if kind == "Deployment":
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            strategy.setdefault("rollingUpdate", {"maxUnavailable": "25%", "maxSurge": "25%"})
        spec.setdefault("progressDeadlineSeconds", 600)
    elif kind == "StatefulSet":
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        spec.setdefault(
            "persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"}
        )
    elif kind == "ReplicaSet":
        spec.pop("revisionHistoryLimit", None)
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        errors.append(
            FieldError("FieldValueInvalid", "spec.replicas", replicas, "must be greater than or equal to 0")
        )
    selector = spec.get("selector")
    template = spec.get("template")
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        errors.append(FieldError("FieldValueRequired", "spec.selector"))
    if not isinstance(template, dict):
        errors.append(FieldError("FieldValueRequired", "spec.template"))
        return
    labels = (template.get("metadata") or {}).get("labels") or {}
    matcher = label_selector_from_dict(selector) if isinstance(selector, dict) else None
    has_terms = isinstance(selector, dict) and (
        selector.get("matchLabels") or selector.get("matchExpressions")
    )
    if matcher is not None and has_terms and not matcher(labels):
        errors.append(
            FieldError(
                "FieldValueInvalid",
                "spec.template.metadata.labels",
                labels,
                "`selector` does not match template `labels`",
            )
        )
    if (
        old is not None
        and kind in ("Deployment", "ReplicaSet", "StatefulSet")
        and (old.get("spec") or {}).get("selector") != selector
    ):
        errors.append(FieldError("FieldValueInvalid", "spec.selector", selector, "field is immutable"))
    _pod_spec(template.get("spec"), "spec.template.spec", errors, template=True)


def _network_policy(obj: Obj, errors: list[FieldError]) -> None:
    """Defaults and validation of networking/v1 NetworkPolicy (storage only: another part of the sim
    decides what traffic policies allow)."""
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        errors.append(FieldError("FieldValueInvalid", "spec", spec, "must be an object"))
        return
    spec.setdefault("podSelector", {})
    types = spec.get("policyTypes") or []
    for i, value in enumerate(types):
        if value not in ("Ingress", "Egress"):
            errors.append(
                FieldError(
                    "FieldValueNotSupported",
                    f"spec.policyTypes[{i}]",
                    value,
                    'supported values: "Egress", "Ingress"',
                )
            )
    if len(types) > 2:
        errors.append(
            FieldError(
                "FieldValueInvalid", "spec.policyTypes", types, "may not specify more than two policyTypes"
            )
        )
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            base = f"spec.{direction}[{i}]"
            for j, port in enumerate(rule.get("ports") or []):
                path = f"{base}.ports[{j}]"
                port.setdefault("protocol", "TCP")
                if port["protocol"] not in ("TCP", "UDP", "SCTP"):
                    errors.append(
                        FieldError(
                            "FieldValueNotSupported",
                            f"{path}.protocol",
                            port["protocol"],
                            'supported values: "SCTP", "TCP", "UDP"',
                        )
                    )
                number = port.get("port")
                if isinstance(number, int) and not 0 < number < 65536:
                    errors.append(
                        FieldError(
                            "FieldValueInvalid",
                            f"{path}.port",
                            number,
                            "must be between 1 and 65535, inclusive",
                        )
                    )
                end = port.get("endPort")
                if end is not None:
                    if not isinstance(number, int):
                        errors.append(
                            FieldError(
                                "FieldValueRequired",
                                f"{path}.port",
                                detail="must be specified when endPort is specified",
                            )
                        )
                    elif not isinstance(end, int) or end < number:
                        errors.append(
                            FieldError(
                                "FieldValueInvalid",
                                f"{path}.endPort",
                                end,
                                "must be greater than or equal to `port`",
                            )
                        )
            for j, peer in enumerate(rule.get(peers_key) or []):
                path = f"{base}.{peers_key}[{j}]"
                selectors = [k for k in ("podSelector", "namespaceSelector") if k in peer]
                if "ipBlock" in peer and selectors:
                    errors.append(
                        FieldError(
                            "FieldValueForbidden",
                            path,
                            detail="may not specify both ipBlock and another peer",
                        )
                    )
                elif "ipBlock" not in peer and not selectors:
                    errors.append(FieldError("FieldValueRequired", path, detail="must specify a peer"))
                block = peer.get("ipBlock")
                if isinstance(block, dict) and not _cidr(block.get("cidr")):
                    errors.append(
                        FieldError(
                            "FieldValueInvalid",
                            f"{path}.ipBlock.cidr",
                            block.get("cidr"),
                            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                        )
                    )


def _cidr(value: Any) -> bool:
    if not isinstance(value, str) or "/" not in value:
        return False
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


_CRONJOB_DEFAULTS = {
    "concurrencyPolicy": "Allow",
    "suspend": False,
    "successfulJobsHistoryLimit": 3,
    "failedJobsHistoryLimit": 1,
}


def _job(obj: Obj, errors: list[FieldError], old: Obj | None) -> None:
    """The Job strategy's defaults: a selector on the Job's uid and the labels that make it match (so
    `kubectl logs job/x` finds the pod), unless `manualSelector` says the user chose their own."""
    spec = obj.setdefault("spec", {})
    if old is not None:
        if spec.get("selector") != (old.get("spec") or {}).get("selector"):
            errors.append(
                FieldError("FieldValueInvalid", "spec.selector", spec.get("selector"), "field is immutable")
            )
        return
    meta = obj["metadata"]
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    template = spec.setdefault("template", {})
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    if not spec.get("manualSelector"):
        if spec.get("selector"):
            errors.append(
                FieldError(
                    "FieldValueInvalid",
                    "spec.selector",
                    spec["selector"],
                    "`selector` will be auto-generated",
                )
            )
        uid, name = str(meta.get("uid")), str(meta.get("name"))
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        labels.update(
            {
                "batch.kubernetes.io/controller-uid": uid,
                "batch.kubernetes.io/job-name": name,
                "controller-uid": uid,
                "job-name": name,
            }
        )
    restart = (template.get("spec") or {}).get("restartPolicy")
    if restart not in ("OnFailure", "Never"):
        errors.append(
            FieldError(
                "FieldValueNotSupported" if restart else "FieldValueRequired",
                "spec.template.spec.restartPolicy",
                restart,
                'supported values: "OnFailure", "Never"',
            )
        )
    _pod_spec(template.get("spec"), "spec.template.spec", errors, template=True)


def _service(obj: Obj, errors: list[FieldError], store: Store, old: Obj | None) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        errors.append(
            FieldError(
                "FieldValueNotSupported",
                "spec.type",
                spec["type"],
                'supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
            )
        )
    ports = spec.get("ports")
    if spec["type"] != "ExternalName" and not ports and spec.get("clusterIP") != "None":
        errors.append(FieldError("FieldValueRequired", "spec.ports"))
    for i, port in enumerate(ports or []):
        if not isinstance(port, dict):
            continue
        port.setdefault("protocol", "TCP")
        number = port.get("port")
        if not isinstance(number, int) or not 0 < number < 65536:
            errors.append(
                FieldError(
                    "FieldValueInvalid" if number is not None else "FieldValueRequired",
                    f"spec.ports[{i}].port",
                    number,
                    "must be between 1 and 65535, inclusive",
                )
            )
        else:
            port.setdefault("targetPort", number)
        if len(ports) > 1 and not port.get("name"):
            errors.append(FieldError("FieldValueRequired", f"spec.ports[{i}].name"))
    if spec["type"] != "ExternalName":
        if old is not None and (old.get("spec") or {}).get("clusterIP"):
            spec["clusterIP"] = old["spec"]["clusterIP"]
        elif not spec.get("clusterIP"):
            spec["clusterIP"] = store.allocate_cluster_ip()
        spec["clusterIPs"] = [spec["clusterIP"]]
        if spec["type"] in ("NodePort", "LoadBalancer"):
            previous = {
                (p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                for p in ((old or {}).get("spec") or {}).get("ports") or []
            }
            spec.setdefault("externalTrafficPolicy", "Cluster")
            for port in ports or []:
                if isinstance(port, dict) and not port.get("nodePort"):
                    key = (port.get("port"), port.get("protocol", "TCP"))
                    port["nodePort"] = previous.get(key) or store.allocate_node_port()
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    obj.setdefault("status", {"loadBalancer": {}})


def _data_keys(obj: Obj, errors: list[FieldError], *, secret: bool) -> None:
    for field in ("data", "stringData", "binaryData") if secret else ("data", "binaryData"):
        value = obj.get(field)
        if value is None:
            continue
        if not isinstance(value, dict):
            errors.append(FieldError("FieldValueInvalid", field, value, "must be a map"))
            continue
        for key, item in value.items():
            if not _CONFIG_KEY.match(key):
                errors.append(
                    FieldError(
                        "FieldValueInvalid",
                        f"{field}[{key}]",
                        key,
                        "a valid config key must consist of alphanumeric characters, '-', '_' "
                        "or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used "
                        "for validation is '[-._a-zA-Z0-9]+')",
                    )
                )
            if secret and field == "data":
                try:
                    base64.b64decode(str(item), validate=True)
                except (binascii.Error, ValueError):
                    errors.append(
                        FieldError(
                            "FieldValueInvalid",
                            f"data[{key}]",
                            "<secret contents redacted>",
                            "illegal base64 data",
                        )
                    )
    if secret:
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.setdefault("data", {})
            for key, item in string_data.items():
                data[key] = base64.b64encode(str(item).encode()).decode()


# Status fields the real API server always sends (Go int32 fields without omitempty; `required` in OpenAPI),
# so that clients which validate responses (the official Python client does) accept a new object.
_STATUS_ALWAYS_SERIALIZED: dict[str, tuple[str, ...]] = {
    "ReplicaSet": ("replicas",),
    "StatefulSet": ("replicas", "availableReplicas"),
    "DaemonSet": ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady"),
}


def admit(store: Store, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
    """Default and validate `obj` in place (create when `old` is None); raises 422 Invalid."""
    meta = obj["metadata"]
    errors: list[FieldError] = []
    if old is None:
        _check_name(rt.kind, meta, errors)
    elif meta.get("labels") != old["metadata"].get("labels") or meta.get("annotations") != old[
        "metadata"
    ].get("annotations"):
        _check_metadata_maps(meta, errors)
    kind = rt.kind
    if rt.custom:
        errors.extend(_schema.admit_custom(rt, obj))
    elif rt.group == "":
        if kind == "Namespace":
            spec = obj.setdefault("spec", {})
            spec.setdefault("finalizers", ["kubernetes"])
            status = obj.setdefault("status", {})
            status.setdefault("phase", "Active")
            if old is not None and old.get("status", {}).get("phase") == "Terminating":
                status["phase"] = "Terminating"
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name", "")
        elif kind == "Pod":
            if old is None:
                _pod_spec(obj.get("spec"), "spec", errors, template=False)
                status = obj.setdefault("status", {})
                status.setdefault("phase", "Pending")
                status.setdefault("qosClass", _qos_class(obj.get("spec") or {}))
            elif obj.get("spec") != old.get("spec"):
                _pod_update(obj, old, errors)
        elif kind == "Service":
            _service(obj, errors, store, old)
        elif kind == "ConfigMap":
            _data_keys(obj, errors, secret=False)
        elif kind == "Secret":
            _data_keys(obj, errors, secret=True)
        elif kind == "Node":
            obj.setdefault("spec", {})
            obj.setdefault("status", {})
        elif kind == "PersistentVolumeClaim" and old is None:
            spec = obj.setdefault("spec", {})
            spec.setdefault("volumeMode", "Filesystem")
            if "storageClassName" not in spec:
                # the DefaultStorageClass admission plugin (the newest default class wins)
                classes = [
                    sc
                    for sc in store.list(store.resource("storage.k8s.io/v1", "storageclasses"))
                    if ((sc.get("metadata") or {}).get("annotations") or {}).get(
                        "storageclass.kubernetes.io/is-default-class"
                    )
                    == "true"
                ]
                if classes:
                    newest = max(classes, key=lambda sc: str(sc["metadata"].get("creationTimestamp", "")))
                    spec["storageClassName"] = newest["metadata"]["name"]
            obj.setdefault("status", {}).setdefault("phase", "Pending")
        elif kind == "PersistentVolume" and old is None:
            obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
            obj.setdefault("status", {}).setdefault("phase", "Available")
    elif rt.group == "apps" and kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
        if kind == "DaemonSet":
            obj.setdefault("spec", {}).setdefault("updateStrategy", {"type": "RollingUpdate"})
        else:
            _workload(obj, errors, old)
        status = obj.setdefault("status", {})
        for field in _STATUS_ALWAYS_SERIALIZED.get(kind, ()):
            status.setdefault(field, 0)
    elif rt.group == "networking.k8s.io" and kind == "NetworkPolicy":
        _network_policy(obj, errors)
    elif rt.group == "batch" and kind == "Job":
        _job(obj, errors, old)
    elif rt.group == "batch" and kind == "CronJob":
        spec = obj.setdefault("spec", {})
        for field, value in _CRONJOB_DEFAULTS.items():
            spec.setdefault(field, value)
        obj.setdefault("status", {})  # a struct, not a pointer: always serialized
        if not spec.get("schedule"):
            errors.append(FieldError("FieldValueRequired", "spec.schedule"))
        else:
            fields = str(spec["schedule"]).split()
            if not str(spec["schedule"]).startswith("@") and len(fields) != 5:
                # robfig/cron's ParseStandard, as the CronJob strategy validates the schedule
                errors.append(
                    FieldError(
                        "FieldValueInvalid",
                        "spec.schedule",
                        spec["schedule"],
                        f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]",
                    )
                )
    elif rt.group == "autoscaling" and kind == "HorizontalPodAutoscaler":
        # `desiredReplicas` has no omitempty: a real server always serializes it (the client requires it).
        obj.setdefault("status", {}).setdefault("desiredReplicas", 0)
        if rt.version == "v1":
            obj["status"].setdefault("currentReplicas", 0)
    elif rt.group == "apiextensions.k8s.io":
        errors.extend(_crd.validate(store, obj, old))
    if errors:
        kind_name = rt.kind
        raise invalid(kind_name, rt.group, meta.get("name") or meta.get("generateName") or "", errors)


def _qos_class(spec: dict[str, Any]) -> str:
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    requests = [c.get("resources", {}).get("requests") or {} for c in containers]
    limits = [c.get("resources", {}).get("limits") or {} for c in containers]
    if not any(requests) and not any(limits):
        return "BestEffort"
    if all(lim.get("cpu") and lim.get("memory") for lim in limits) and all(
        (req.get("cpu", lim.get("cpu")), req.get("memory", lim.get("memory")))
        == (lim.get("cpu"), lim.get("memory"))
        for req, lim in zip(requests, limits, strict=True)
    ):
        return "Guaranteed"
    return "Burstable"


def _pod_update(obj: Obj, old: Obj, errors: list[FieldError]) -> None:
    """Pod spec is immutable except images, activeDeadlineSeconds, tolerations additions and nodeName binding."""
    new_spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
    allowed = (
        "containers",
        "initContainers",
        "activeDeadlineSeconds",
        "tolerations",
        "nodeName",
        "schedulingGates",
        "ephemeralContainers",
    )
    stripped_new = {k: v for k, v in new_spec.items() if k not in allowed}
    stripped_old = {k: v for k, v in old_spec.items() if k not in allowed}
    if old_spec.get("nodeName") and new_spec.get("nodeName") != old_spec.get("nodeName"):
        errors.append(
            FieldError(
                "FieldValueForbidden",
                "spec.nodeName",
                detail="pod updates may not change "
                "fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
                "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing "
                "tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if "
                "it was previously negative)",
            )
        )
    if stripped_new != stripped_old:
        errors.append(
            FieldError(
                "FieldValueForbidden",
                "spec",
                detail="pod updates may not change fields other "
                "than `spec.containers[*].image`,`spec.initContainers[*].image`,"
                "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing "
                "tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it "
                "was previously negative)",
            )
        )


def after_create(store: Store, rt: ResourceType, obj: Obj) -> None:
    if rt.bucket == ("", "namespaces"):
        sa = store.storage_type("", "serviceaccounts")
        assert sa is not None
        name = obj["metadata"]["name"]
        if store.try_get(sa, "default", name) is None:
            store.create_raw(sa, {"metadata": {"name": "default", "namespace": name}}, namespace=name)
    elif rt.bucket == ("apiextensions.k8s.io", "customresourcedefinitions"):
        _crd.install(store, obj)


def after_update(store: Store, rt: ResourceType, obj: Obj, old: Obj) -> None:
    if rt.bucket == ("apiextensions.k8s.io", "customresourcedefinitions") and obj.get("spec") != old.get(
        "spec"
    ):
        _crd.install(store, obj)


def after_delete(store: Store, rt: ResourceType, obj: Obj) -> None:
    if rt.bucket == ("apiextensions.k8s.io", "customresourcedefinitions"):
        spec = obj.get("spec") or {}
        store.unregister_types(spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))


def answer_review(store: Store, rt: ResourceType, obj: Obj) -> Obj:
    """TokenReview and (Self)SubjectAccessReview: answered, never stored."""
    spec = obj.get("spec") or {}
    if rt.kind == "TokenReview":
        token = spec.get("token")
        if not token:
            raise invalid("TokenReview", rt.group, "", [FieldError("FieldValueRequired", "spec.token")])
        if store.tokens is None:
            raise ApiError(500, "token review is not available")
        obj["status"] = store.tokens.review(str(token), spec.get("audiences") or [])
    else:
        obj["status"] = {"allowed": True, "reason": "the simulated cluster authorizes every request"}
    obj["metadata"].setdefault("creationTimestamp", None)
    return obj
