"""The HTTP add-on's operator: each HTTPScaledObject gets a ScaledObject of the same name and a route.

As kedacore/http-add-on v0.15 (`operator/controllers/http/`, `pkg/k8s/scaledobject.go`): the ScaledObject
targets `scaleTargetRef` as given (no kind means Deployment), with one `external-push` trigger against the
external scaler Service, `pollingInterval: 15`, `restoreToOriginalReplicaCount: true` and min/max/cooldown
copied over; the HTTPScaledObject reports `Ready=True/Reconciled`. The route's demand (pending plus
in-flight requests at the interceptor, the `concurrency` metric) is what the external scaler returns.
"""

from __future__ import annotations

from typing import Any

from pytest_aksai.sim._addons.http_addon._interceptor import Interceptor, interceptor_of
from pytest_aksai.sim._addons.keda._shared import ExternalPushScaler, shared
from pytest_aksai.sim._core._framework import Controller, Obj, Watch, object_key
from pytest_aksai.sim.contract import FAULTS_CONFIGMAP, SIM_NAMESPACE, Fault

API = "http.keda.sh/v1alpha1"
KEDA_API = "keda.sh/v1alpha1"
NAMESPACE = "keda"
SCALER_SERVICE = "keda-add-ons-http-external-scaler"
SCALER_PORT = 9090
COMPONENT = "keda-add-ons-http-operator"


def target_value(spec: Obj) -> float:
    metric = spec.get("scalingMetric") or {}
    for kind in ("concurrency", "requestRate"):
        if kind in metric:
            return float((metric[kind] or {}).get("targetValue") or 100)
    return float(spec.get("targetPendingRequests") or 100)


class HTTPScaledObjectController(Controller):
    name = "keda-add-ons-http-operator"
    watches = (
        Watch(API, "httpscaledobjects"),
        Watch(KEDA_API, "scaledobjects", lambda self, _t, so: self.owner_of(so)),
        Watch("v1", "configmaps", lambda self, _t, cm: self.keys_on_fault_change(cm)),
    )

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.interceptor: Interceptor = interceptor_of(ctx)

    @staticmethod
    def owner_of(so: Obj) -> list[str]:
        meta = so.get("metadata") or {}
        return [
            f"{meta.get('namespace')}/{ref['name']}"
            for ref in meta.get("ownerReferences") or []
            if ref.get("kind") == "HTTPScaledObject"
        ]

    def keys_on_fault_change(self, cm: Obj) -> list[str]:
        meta = cm.get("metadata") or {}
        if (meta.get("namespace"), meta.get("name")) != (SIM_NAMESPACE, FAULTS_CONFIGMAP):
            return []
        return [object_key(h) for h in self.list(API, "httpscaledobjects")]

    async def reconcile(self, key: str) -> float | None:
        httpso = self.get(API, "httpscaledobjects", key)
        registry = shared(self.ctx)
        if httpso is None or httpso["metadata"].get("deletionTimestamp"):
            registry.push_scalers.pop(key, None)
            self.interceptor.routes.pop(key, None)
            return None
        meta = httpso["metadata"]
        spec = httpso.get("spec") or {}
        self.interceptor.routes[key] = httpso
        interceptor = self.interceptor

        def demand(route: str = key) -> float:
            return float(interceptor.demand(route))

        registry.push_scalers[key] = ExternalPushScaler(
            metric_name=meta["name"], target=target_value(spec), value=demand
        )
        self._ensure_scaled_object(httpso)
        ref = spec.get("scaleTargetRef") or {}
        if self.ctx.faults.is_active(Fault.KEDA_NOT_READY_FORWARDING) and ref.get("service"):
            # The KAITO trap: the route's Service publishes not-ready addresses (as KAITO's own Service does).
            rt = self.rt("v1", "services")
            svc = self.store.try_get(rt, str(ref["service"]), meta["namespace"])
            if svc is not None and not (svc.get("spec") or {}).get("publishNotReadyAddresses"):
                self.store.patch(
                    rt,
                    str(ref["service"]),
                    {"spec": {"publishNotReadyAddresses": True}},
                    "merge",
                    namespace=meta["namespace"],
                )
        status = dict(httpso.get("status") or {})
        wanted = {
            **status,
            "targetWorkload": f"{ref.get('apiVersion') or 'apps/v1'}/{ref.get('kind') or 'Deployment'}/{ref.get('name', '')}",
            "targetService": f"{ref.get('service', '')}:{ref.get('port') or ref.get('portName') or ''}",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Reconciled",
                    "message": "Finished object reconciliation",
                    "lastTransitionTime": next(
                        (
                            c.get("lastTransitionTime")
                            for c in status.get("conditions") or []
                            if c.get("type") == "Ready"
                        ),
                        self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                    ),
                }
            ],
        }
        if wanted != status:
            httpso["status"] = wanted
            self.store.update_status(self.rt(API, "httpscaledobjects"), httpso, namespace=meta["namespace"])
        return None

    def _ensure_scaled_object(self, httpso: Obj) -> None:
        meta = httpso["metadata"]
        spec = httpso.get("spec") or {}
        ref = dict(spec.get("scaleTargetRef") or {})
        replicas = spec.get("replicas") or {}
        min_replicas = int(replicas.get("min") or 0)
        if self.ctx.faults.is_active(Fault.KEDA_MIN_REPLICAS_ONE):
            min_replicas = max(min_replicas, 1)
        target: Obj = {"name": ref.get("name", "")}
        if ref.get("apiVersion"):
            target["apiVersion"] = ref["apiVersion"]
        if ref.get("kind"):
            target["kind"] = ref["kind"]
        so_spec: Obj = {
            "scaleTargetRef": target,
            "pollingInterval": 15,
            "minReplicaCount": min_replicas,
            "maxReplicaCount": int(replicas.get("max") or 100),
            "advanced": {"restoreToOriginalReplicaCount": True},
            "triggers": [
                {
                    "type": "external-push",
                    "metadata": {
                        "scalerAddress": f"{SCALER_SERVICE}.{NAMESPACE}:{SCALER_PORT}",
                        "httpScaledObject": meta["name"],
                    },
                }
            ],
        }
        if spec.get("scaledownPeriod") is not None:
            so_spec["cooldownPeriod"] = int(spec["scaledownPeriod"])
        if spec.get("initialCooldownPeriod") is not None:
            so_spec["initialCooldownPeriod"] = int(spec["initialCooldownPeriod"])
        rt = self.rt(KEDA_API, "scaledobjects")
        existing = self.store.try_get(rt, meta["name"], meta["namespace"])
        if existing is None:
            self.store.create(
                rt,
                {
                    "apiVersion": KEDA_API,
                    "kind": "ScaledObject",
                    "metadata": {
                        "name": meta["name"],
                        "namespace": meta["namespace"],
                        "labels": {
                            "app.kubernetes.io/managed-by": "keda-http-add-on",
                            "app.kubernetes.io/name": meta["name"],
                            "app.kubernetes.io/part-of": meta["name"],
                            "app.kubernetes.io/version": "0.15.0",
                        },
                        "ownerReferences": [
                            {
                                "apiVersion": API,
                                "kind": "HTTPScaledObject",
                                "name": meta["name"],
                                "uid": meta["uid"],
                                "controller": True,
                                "blockOwnerDeletion": True,
                            }
                        ],
                    },
                    "spec": so_spec,
                },
                namespace=meta["namespace"],
            )
        elif existing.get("spec") != so_spec:
            existing["spec"] = so_spec
            self.store.update(rt, existing, namespace=meta["namespace"])
