"""The Azure Workload Identity mutating webhook, as azure-workload-identity v1.6.0 mutates pods on CREATE.

Selection is by the **pod's** label `azure.workload.identity/use: "true"` only (the MutatingWebhookConfiguration's
objectSelector); a label on the ServiceAccount does nothing. From the ServiceAccount's annotations it injects,
into every init container and container not listed in the pod's `skip-containers` annotation, the env
`AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`, `AZURE_AUTHORITY_HOST` (each only when its
value is non-empty and the container does not set it already) and a read-only mount of a projected
service-account token for audience `api://AzureADTokenExchange`. It refuses pods whose ServiceAccount does
not exist or whose token expiration is outside 3600–86400 s; with the `wi-webhook-down` fault the API server
cannot reach it and, its failurePolicy being Fail, refuses every labelled pod.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from pytest_aksai.sim._apiserver import ApiError, Store
from pytest_aksai.sim._apiserver._types import ResourceType
from pytest_aksai.sim.contract import WEBHOOK_NAME, Fault

USE_LABEL = "azure.workload.identity/use"
CLIENT_ID = "azure.workload.identity/client-id"
TENANT_ID = "azure.workload.identity/tenant-id"
EXPIRATION = "azure.workload.identity/service-account-token-expiration"
SKIP_CONTAINERS = "azure.workload.identity/skip-containers"
TOKEN_MOUNT_PATH = "/var/run/secrets/azure/wi"
TOKEN_PATH = "token/azure-identity-token"
AUDIENCE = "api://AzureADTokenExchange"
MIN_EXPIRATION, MAX_EXPIRATION, DEFAULT_EXPIRATION = 3600, 86400, 3600
SERVICE = "azure-wi-webhook-webhook-service"
NAMESPACE = "kube-system"
"""The AKS managed add-on runs the webhook in kube-system (upstream: azure-workload-identity-system)."""


def volume_name(pod: dict[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    seed = f"{meta['generateName']} (prefix)" if meta.get("generateName") else str(meta.get("name", ""))
    return ("azure-workload-identity-reserved-" + hashlib.sha256(seed.encode()).hexdigest())[:63]


class WorkloadIdentityWebhook:
    def __init__(
        self, store: Store, faults: Any, tenant_id: Callable[[], str], authority_host: Callable[[], str]
    ) -> None:
        self.store = store
        self.faults = faults
        self.tenant_id = tenant_id
        self.authority_host = authority_host

    def __call__(self, rt: ResourceType, pod: dict[str, Any]) -> None:
        if rt.bucket != ("", "pods"):
            return
        meta = pod.get("metadata") or {}
        if (meta.get("labels") or {}).get(USE_LABEL) != "true":
            return
        if self.faults.is_active(Fault.WI_WEBHOOK_DOWN):
            raise ApiError(
                500,
                f'Internal error occurred: failed calling webhook "{WEBHOOK_NAME}": failed to call webhook: '
                f'Post "https://{SERVICE}.{NAMESPACE}.svc:443/mutate-v1-pod?timeout=10s": context deadline '
                "exceeded",
            )
        spec = pod.setdefault("spec", {})
        namespace = meta.get("namespace") or "default"
        sa_name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        sa_rt = self.store.storage_type("", "serviceaccounts")
        assert sa_rt is not None
        sa = self.store.try_get(sa_rt, sa_name, namespace)
        if sa is None:
            raise ApiError(
                400,
                f'admission webhook "{WEBHOOK_NAME}" denied the request: serviceaccounts "{sa_name}" not found',
            )
        sa_annotations = (sa.get("metadata") or {}).get("annotations") or {}
        pod_annotations = meta.get("annotations") or {}
        raw = pod_annotations.get(EXPIRATION) or sa_annotations.get(EXPIRATION)
        expiration = DEFAULT_EXPIRATION
        if raw:
            try:
                expiration = int(raw)
            except ValueError:
                raise ApiError(
                    400,
                    f'admission webhook "{WEBHOOK_NAME}" denied the request: strconv.ParseInt: parsing '
                    f'"{raw}": invalid syntax',
                ) from None
            if not MIN_EXPIRATION <= expiration <= MAX_EXPIRATION:
                raise ApiError(
                    400,
                    f'admission webhook "{WEBHOOK_NAME}" denied the request: token expiration {expiration} '
                    f"not valid. Expected value to be between {MIN_EXPIRATION} and {MAX_EXPIRATION}",
                )
        env = {
            "AZURE_CLIENT_ID": sa_annotations.get(CLIENT_ID, ""),
            "AZURE_TENANT_ID": sa_annotations.get(TENANT_ID) or self.tenant_id(),
            "AZURE_FEDERATED_TOKEN_FILE": f"{TOKEN_MOUNT_PATH}/{TOKEN_PATH}",
            "AZURE_AUTHORITY_HOST": self.authority_host(),
        }
        skipped = {c.strip() for c in str(pod_annotations.get(SKIP_CONTAINERS, "")).split(";") if c.strip()}
        volume = volume_name(pod)
        for field in ("initContainers", "containers"):
            for container in spec.get(field) or []:
                if not isinstance(container, dict) or container.get("name") in skipped:
                    continue
                existing = {e.get("name") for e in container.get("env") or [] if isinstance(e, dict)}
                for name, value in env.items():
                    if value and name not in existing:
                        container.setdefault("env", []).append({"name": name, "value": value})
                mounts = container.setdefault("volumeMounts", [])
                if not any(m.get("name") == volume for m in mounts if isinstance(m, dict)):
                    mounts.append({"name": volume, "mountPath": TOKEN_MOUNT_PATH, "readOnly": True})
        volumes = spec.setdefault("volumes", [])
        if not any(v.get("name") == volume for v in volumes if isinstance(v, dict)):
            volumes.append(
                {
                    "name": volume,
                    "projected": {
                        "sources": [
                            {
                                "serviceAccountToken": {
                                    "path": TOKEN_PATH,
                                    "expirationSeconds": expiration,
                                    "audience": AUDIENCE,
                                }
                            }
                        ],
                        "defaultMode": 420,
                    },
                }
            )
