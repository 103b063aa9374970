"""What the Kubernetes objects say about Workload Identity: the ServiceAccounts, the pod templates that use
them and the SecretProviderClasses those pods mount. Pure functions over objects, so the same checks run on
a live cluster's objects and on YAML files (static mode)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from pytest_aksai._public import public

USE_LABEL = "azure.workload.identity/use"
CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"
TENANT_ID_ANNOTATION = "azure.workload.identity/tenant-id"
EXPIRATION_ANNOTATION = "azure.workload.identity/service-account-token-expiration"
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
MIN_EXPIRATION, MAX_EXPIRATION = 3600, 86400
CSI_DRIVER = "secrets-store.csi.k8s.io"
_WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod")

Obj = dict[str, Any]


@public
@dataclass(frozen=True)
class PodTemplate:
    """The pod template of a workload (or a bare pod) that runs as a ServiceAccount."""

    workload: str
    """`Kind namespace/name`."""
    source: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    provider_classes: tuple[str, ...] = ()
    """Names of the SecretProviderClasses its CSI volumes mount."""

    @property
    def labelled(self) -> bool:
        return self.labels.get(USE_LABEL) == "true"


@public
@dataclass(frozen=True)
class ProviderClass:
    """An Azure SecretProviderClass: which identity it uses and which vault objects it mounts."""

    namespace: str
    name: str
    source: str
    client_id: str
    tenant_id: str
    keyvault: str
    objects: tuple[str, ...]
    problem: str = ""
    files: tuple[str, ...] = ()
    """The file each object is mounted as (its objectAlias, else its objectName), in `objects` order."""
    synced: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """`secretObjects`: (secretName, its data keys)."""

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@public
@dataclass(frozen=True)
class WorkloadIdentity:
    """A ServiceAccount that (by annotation, label or use) takes part in Azure Workload Identity."""

    namespace: str
    name: str
    source: str
    annotations: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    templates: tuple[PodTemplate, ...] = ()
    provider_classes: tuple[ProviderClass, ...] = ()
    exists: bool = True

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def subject(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    @property
    def client_id(self) -> str:
        return self.annotations.get(CLIENT_ID_ANNOTATION, "")

    @property
    def tenant_id(self) -> str:
        return self.annotations.get(TENANT_ID_ANNOTATION, "")

    def __str__(self) -> str:
        return self.ref


def _pod_template(obj: Obj) -> Obj | None:
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "Pod":
        return obj if not (obj.get("metadata") or {}).get("ownerReferences") else None
    if kind == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
    if kind == "Job" and (obj.get("metadata") or {}).get("ownerReferences"):
        return None
    return spec.get("template") if isinstance(spec.get("template"), dict) else None


def _templates(objects: Iterable[tuple[str, Obj]]) -> list[tuple[str, str, PodTemplate]]:
    """(namespace, service account, template) for every workload's pod template."""
    out = []
    for source, obj in objects:
        if obj.get("kind") not in _WORKLOAD_KINDS:
            continue
        template = _pod_template(obj)
        if not template:
            continue
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        spec = template.get("spec") or {}
        classes = tuple(
            str(((v.get("csi") or {}).get("volumeAttributes") or {}).get("secretProviderClass", ""))
            for v in spec.get("volumes") or []
            if isinstance(v, dict) and (v.get("csi") or {}).get("driver") == CSI_DRIVER
        )
        tmeta = template.get("metadata") or {}
        out.append(
            (
                namespace,
                str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"),
                PodTemplate(
                    workload=f"{obj.get('kind')} {namespace}/{meta.get('name', '?')}",
                    source=source,
                    labels=dict(tmeta.get("labels") or {}),
                    annotations=dict(tmeta.get("annotations") or {}),
                    provider_classes=tuple(c for c in classes if c),
                ),
            )
        )
    return out


def provider_class(source: str, obj: Obj) -> ProviderClass | None:
    """The Azure SecretProviderClass's identity, vault and objects; None for another provider."""
    spec = obj.get("spec") or {}
    if obj.get("kind") != "SecretProviderClass" or spec.get("provider") != "azure":
        return None
    meta = obj.get("metadata") or {}
    parameters = spec.get("parameters") or {}
    names: list[str] = []
    files: list[str] = []
    problem = ""
    try:
        array = (yaml.safe_load(str(parameters.get("objects") or "")) or {}).get("array") or []
        for item in array:
            entry = yaml.safe_load(item) if isinstance(item, str) else item
            if isinstance(entry, dict) and entry.get("objectName"):
                names.append(str(entry["objectName"]))
                files.append(str(entry.get("objectAlias") or entry["objectName"]))
    except (yaml.YAMLError, AttributeError) as exc:
        problem = f"failed to yaml unmarshal objects, error: {exc}"
    return ProviderClass(
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta.get("name", "?")),
        source=source,
        client_id=str(parameters.get("clientID", "")),
        tenant_id=str(parameters.get("tenantID") or parameters.get("tenantId") or ""),
        keyvault=str(parameters.get("keyvaultName", "")),
        objects=tuple(names),
        problem=problem,
        files=tuple(files),
        synced=tuple(
            (str(s.get("secretName", "")), tuple(str(d.get("key", "")) for d in s.get("data") or []))
            for s in spec.get("secretObjects") or []
            if isinstance(s, dict)
        ),
    )


def workload_identities(
    objects: Iterable[tuple[str, Obj]], refs: Iterable[str] = ()
) -> list[WorkloadIdentity]:
    """The ServiceAccounts under test: those named in `refs` (`namespace/name`), else every ServiceAccount
    that carries a Workload Identity annotation or label, or that a labelled pod template runs as."""
    objects = list(objects)
    templates = _templates(objects)
    classes = [c for c in (provider_class(s, o) for s, o in objects) if c is not None]
    accounts: dict[str, tuple[str, Obj]] = {}
    for source, obj in objects:
        if obj.get("kind") == "ServiceAccount":
            meta = obj.get("metadata") or {}
            accounts[f"{meta.get('namespace') or 'default'}/{meta.get('name')}"] = (source, obj)
    wanted = list(refs)
    if not wanted:
        for ref, (_, obj) in accounts.items():
            meta = obj.get("metadata") or {}
            keys = set(meta.get("annotations") or {}) | set(meta.get("labels") or {})
            if keys & {CLIENT_ID_ANNOTATION, TENANT_ID_ANNOTATION, USE_LABEL}:
                wanted.append(ref)
        for namespace, sa, template in templates:
            if template.labelled and f"{namespace}/{sa}" not in wanted:
                wanted.append(f"{namespace}/{sa}")
    out = []
    for ref in wanted:
        namespace, _, name = ref.partition("/")
        source, obj = accounts.get(ref, ("", {}))
        meta = obj.get("metadata") or {}
        used_by = tuple(t for ns, sa, t in templates if ns == namespace and sa == name)
        mounted = {c for t in used_by for c in t.provider_classes}
        out.append(
            WorkloadIdentity(
                namespace=namespace,
                name=name,
                source=source,
                annotations=dict(meta.get("annotations") or {}),
                labels=dict(meta.get("labels") or {}),
                templates=used_by,
                provider_classes=tuple(c for c in classes if c.namespace == namespace and c.name in mounted),
                exists=bool(obj),
            )
        )
    return sorted(out, key=lambda i: i.ref)
