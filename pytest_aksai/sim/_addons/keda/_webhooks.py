"""KEDA's admission webhooks (`keda-admission-webhooks`, `vscaledobject.kb.io`), for cpu/memory triggers.

As `apis/keda/v1alpha1/scaledobject_webhook.go` (KEDA 2.16), on create: a `cpu`/`memory` trigger on a
Deployment or StatefulSet needs every container it measures (all of them, or `containerName`'s) to request
or limit that resource, unless a LimitRange of the namespace gives containers a default; and a ScaledObject
whose triggers are all cpu/memory cannot have `minReplicaCount` 0 (or unset), since the HPA never scales to
zero. A denial is a 403 with the webhook's message, as controller-runtime answers.
"""

from __future__ import annotations

from typing import Any

from pytest_aksai.sim._apiserver import ApiError, ResourceType
from pytest_aksai.sim._core import _resources
from pytest_aksai.sim._core._framework import Controller, Obj

WEBHOOK = "vscaledobject.kb.io"
_RESOURCE_TRIGGERS = ("cpu", "memory")


def _denied(message: str) -> ApiError:
    return ApiError(403, f'admission webhook "{WEBHOOK}" denied the request: {message}')


def _set(resources: Obj, name: str) -> bool:
    values = [(resources.get(part) or {}).get(name) for part in ("requests", "limits")]
    return any(v is not None and _resources.parse(v) > 0 for v in values)


class KedaAdmissionWebhook:
    def __init__(self, store: Any) -> None:
        self.store = store

    def __call__(self, rt: ResourceType, obj: Obj) -> None:
        if (rt.group, rt.plural) != ("keda.sh", "scaledobjects"):
            return
        spec = obj.get("spec") or {}
        triggers = spec.get("triggers") or []
        if not any(t.get("type") in _RESOURCE_TRIGGERS for t in triggers):
            return
        namespace = (obj.get("metadata") or {}).get("namespace") or "default"
        pod_spec = self._pod_spec(spec.get("scaleTargetRef") or {}, namespace)
        if pod_spec is not None:
            for trigger in triggers:
                kind = trigger.get("type")
                if kind not in _RESOURCE_TRIGGERS:
                    continue
                wanted = str((trigger.get("metadata") or {}).get("containerName") or "")
                for container in pod_spec.get("containers") or []:
                    if wanted and container.get("name") != wanted:
                        continue
                    if not _set(container.get("resources") or {}, kind) and not self._limit_range_default(
                        namespace, kind
                    ):
                        raise _denied(
                            f"the scaledobject has a {kind} trigger but the container {container.get('name')} "
                            f"doesn't have the {kind} request defined"
                        )
        only_resource = all(t.get("type") in _RESOURCE_TRIGGERS for t in triggers)
        if only_resource and not spec.get("minReplicaCount"):
            raise _denied(
                "scaledobject has only cpu/memory triggers AND minReplica is 0 (scale to zero doesn't work in "
                "this case)"
            )

    def _pod_spec(self, ref: Obj, namespace: str) -> Obj | None:
        api_version = ref.get("apiVersion") or "apps/v1"
        kind = ref.get("kind") or "Deployment"
        if api_version != "apps/v1" or kind not in ("Deployment", "StatefulSet"):
            return None
        target = self.store.try_get(
            self.store.resource("apps/v1", kind), str(ref.get("name") or ""), namespace
        )
        if target is None:
            raise ApiError(
                403,
                f'admission webhook "{WEBHOOK}" denied the request: {kind.lower()}s.apps "{ref.get("name")}" '
                "not found",
            )
        return ((target.get("spec") or {}).get("template") or {}).get("spec") or {}

    def _limit_range_default(self, namespace: str, resource: str) -> bool:
        for limit_range in self.store.list(self.store.resource("v1", "limitranges"), namespace):
            for item in (limit_range.get("spec") or {}).get("limits") or []:
                if item.get("type") != "Container":
                    continue
                defaults = [(item.get(k) or {}).get(resource) for k in ("default", "defaultRequest")]
                if any(v is not None and _resources.parse(v) > 0 for v in defaults):
                    return True
        return False


class KedaAdmissionWebhooksController(Controller):
    """Registers the webhook with the API server; it has nothing to reconcile."""

    name = "keda-admission-webhooks"

    def start(self) -> list[Any]:
        self.store.mutating_admission.append(KedaAdmissionWebhook(self.store))
        return super().start()

    async def reconcile(self, key: str) -> float | None:
        return None
