"""Regenerate `pytest_aksai/sim/_apiserver/protofields.json`: the protobuf field numbers and types of the
built-in kinds kubectl's imperative commands send as protobuf, and of every message they contain.

Run with checkouts of kubernetes/api and kubernetes/apimachinery (any recent tag):

    python tools/gen_protofields.py ../api ../apimachinery

Only the field table (message → field name, number, type, label) is written; no .proto file is copied.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

# apiVersion/kind → message, for the bodies the simulated API server decodes.
KINDS = {
    "v1/Namespace": "k8s.io.api.core.v1.Namespace",
    "v1/ConfigMap": "k8s.io.api.core.v1.ConfigMap",
    "v1/Secret": "k8s.io.api.core.v1.Secret",
    "v1/ServiceAccount": "k8s.io.api.core.v1.ServiceAccount",
    "v1/Service": "k8s.io.api.core.v1.Service",
    "v1/Pod": "k8s.io.api.core.v1.Pod",
    "v1/ResourceQuota": "k8s.io.api.core.v1.ResourceQuota",
    "v1/PersistentVolumeClaim": "k8s.io.api.core.v1.PersistentVolumeClaim",
    "v1/Binding": "k8s.io.api.core.v1.Binding",
    "apps/v1/Deployment": "k8s.io.api.apps.v1.Deployment",
    "batch/v1/Job": "k8s.io.api.batch.v1.Job",
    "batch/v1/CronJob": "k8s.io.api.batch.v1.CronJob",
    "autoscaling/v1/HorizontalPodAutoscaler": "k8s.io.api.autoscaling.v1.HorizontalPodAutoscaler",
    "autoscaling/v1/Scale": "k8s.io.api.autoscaling.v1.Scale",
    "authentication.k8s.io/v1/TokenRequest": "k8s.io.api.authentication.v1.TokenRequest",
    "authentication.k8s.io/v1/SelfSubjectReview": "k8s.io.api.authentication.v1.SelfSubjectReview",
    "authorization.k8s.io/v1/SelfSubjectAccessReview": "k8s.io.api.authorization.v1.SelfSubjectAccessReview",
    "authorization.k8s.io/v1/SelfSubjectRulesReview": "k8s.io.api.authorization.v1.SelfSubjectRulesReview",
    "policy/v1/Eviction": "k8s.io.api.policy.v1.Eviction",
    "policy/v1/PodDisruptionBudget": "k8s.io.api.policy.v1.PodDisruptionBudget",
    "rbac.authorization.k8s.io/v1/Role": "k8s.io.api.rbac.v1.Role",
    "rbac.authorization.k8s.io/v1/RoleBinding": "k8s.io.api.rbac.v1.RoleBinding",
    "rbac.authorization.k8s.io/v1/ClusterRole": "k8s.io.api.rbac.v1.ClusterRole",
    "rbac.authorization.k8s.io/v1/ClusterRoleBinding": "k8s.io.api.rbac.v1.ClusterRoleBinding",
    "networking.k8s.io/v1/Ingress": "k8s.io.api.networking.v1.Ingress",
    "scheduling.k8s.io/v1/PriorityClass": "k8s.io.api.scheduling.v1.PriorityClass",
    "certificates.k8s.io/v1/CertificateSigningRequest": "k8s.io.api.certificates.v1.CertificateSigningRequest",
    "meta.k8s.io/v1/DeleteOptions": "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "v1/DeleteOptions": "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
}
_SCALARS = {
    "string",
    "int32",
    "int64",
    "bool",
    "bytes",
    "double",
    "float",
    "uint32",
    "uint64",
    "fixed64",
    "sint64",
}
_MESSAGE = re.compile(r"^message (\w+) \{(.*?)^\}", re.S | re.M)
_FIELD = re.compile(r"^\s*(optional|repeated|required)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)", re.M)
_MAP = re.compile(r"^\s*map<\s*(\w+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)", re.M)


def _parse(root: Path) -> dict[str, list[list[object]]]:
    messages: dict[str, list[list[object]]] = {}
    for path in root.rglob("generated.proto"):
        text = path.read_text()
        package = re.search(r"^package ([\w.]+);", text, re.M)
        if package is None:
            continue
        for name, body in _MESSAGE.findall(text):
            fields: list[list[object]] = []
            for label, kind, field, number in _FIELD.findall(body):
                fields.append([field, int(number), _qualify(kind, package.group(1)), label])
            for key, value, field, number in _MAP.findall(body):
                fields.append(
                    [
                        field,
                        int(number),
                        "map",
                        _qualify(key, package.group(1)),
                        _qualify(value, package.group(1)),
                    ]
                )
            messages[f"{package.group(1)}.{name}"] = sorted(fields, key=lambda f: int(str(f[1])))
    return messages


def _qualify(kind: str, package: str) -> str:
    kind = kind.lstrip(".")
    if kind in _SCALARS or "." in kind:
        return kind
    return f"{package}.{kind}"


def main(roots: list[str]) -> None:
    messages: dict[str, list[list[object]]] = {}
    for root in roots:
        messages.update(_parse(Path(root)))
    wanted: dict[str, list[list[object]]] = {}
    todo = [*KINDS.values(), "k8s.io.apimachinery.pkg.runtime.Unknown"]
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted[name] = messages[name]
        for field in wanted[name]:
            for kind in field[2:]:
                if (
                    isinstance(kind, str)
                    and kind not in _SCALARS
                    and kind not in ("map", "optional", "repeated")
                ):
                    todo.append(kind)
    out = Path(__file__).parent.parent / "pytest_aksai/sim/_apiserver/protofields.json"
    payload = {
        "_source": "field numbers of kubernetes/api and kubernetes/apimachinery (tools/gen_protofields.py)",
        "kinds": KINDS,
        "messages": dict(sorted(wanted.items())),
    }
    out.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
    print(f"{out}: {len(wanted)} messages")


if __name__ == "__main__":
    main(sys.argv[1:])
