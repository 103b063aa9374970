"""The disruption controller (kube-controller-manager's `disruption`) and the eviction rules it feeds.

As `pkg/controller/disruption/disruption.go`: for each PodDisruptionBudget, the pods its selector matches in
its namespace; `expectedPods` is their count for an integer `minAvailable`, else the summed scale of their
controllers (ReplicaSet / Deployment / StatefulSet / ReplicationController); `desiredHealthy` is
`minAvailable` (a percentage rounds up) or `expectedPods − maxUnavailable`; `currentHealthy` counts Ready pods
not being deleted; `disruptionsAllowed = max(0, currentHealthy − desiredHealthy)` (0 without expected pods);
condition `DisruptionAllowed` with reason `SufficientPods` / `InsufficientPods`. Evictions the API server
granted (`status.disruptedPods`) count as gone until the pod is deleted or 2 minutes pass.

`check_eviction` is what the pods/eviction subresource (`pkg/registry/core/pod/storage/eviction.go`) does
before deleting: 429 `Cannot evict pod as it would violate the pod's disruption budget.` with the cause
`The disruption budget <name> needs <desired> healthy pods and has <current> currently`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from pytest_aksai.sim._apiserver._errors import ApiError
from pytest_aksai.sim._apiserver._selectors import label_selector_from_dict
from pytest_aksai.sim._core._framework import Controller, Obj, Watch, split_key
from pytest_aksai.sim._core._podutil import is_ready

API = "policy/v1"
DELETION_TIMEOUT = 120.0
"""Seconds an eviction the API server granted is expected to delete its pod (`DeletionTimeout`)."""
MAX_DISRUPTED_PODS = 2000


def _scaled(value: Any, total: int, *, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        fraction = int(value[:-1]) * total / 100
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(value)


def _parse(stamp: str) -> float:
    return datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()


def matching_budgets(store: Any, pod: Obj) -> list[Obj]:
    namespace = pod["metadata"].get("namespace") or "default"
    labels = pod["metadata"].get("labels") or {}
    out = []
    for pdb in store.list(store.resource(API, "poddisruptionbudgets"), namespace):
        selector = (pdb.get("spec") or {}).get("selector")
        matcher = label_selector_from_dict(selector)
        if selector is not None and (matcher is None or matcher(labels)):
            out.append(pdb)
    return out


def check_eviction(store: Any, pod: Obj, *, dry_run: bool) -> None:
    """Raise as the eviction subresource refuses; on success record the disruption in the budget's status."""
    status = pod.get("status") or {}
    if pod["metadata"].get("deletionTimestamp") or status.get("phase") in ("Succeeded", "Failed", "Pending"):
        return
    budgets = matching_budgets(store, pod)
    if not budgets:
        return
    if len(budgets) > 1:
        raise ApiError(
            500,
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        )
    pdb = budgets[0]
    pdb_status = pdb.get("status") or {}
    spec = pdb.get("spec") or {}
    policy = spec.get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
    current, desired = int(pdb_status.get("currentHealthy") or 0), int(pdb_status.get("desiredHealthy") or 0)
    if not is_ready(pod) and (policy == "AlwaysAllow" or (current >= desired and desired > 0)):
        return
    name = pdb["metadata"]["name"]
    if int(pdb_status.get("observedGeneration") or 0) < int(pdb["metadata"].get("generation") or 1):
        raise _too_many_requests(f"The disruption budget {name} is still being processed by the server.")
    allowed = int(pdb_status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise _forbidden(name, "pdb disruptions allowed is negative")
    disrupted = dict(pdb_status.get("disruptedPods") or {})
    if len(disrupted) > MAX_DISRUPTED_PODS:
        raise _forbidden(
            name, "DisruptedPods map too big - too many evictions not confirmed by PDB controller"
        )
    if allowed == 0:
        raise _too_many_requests(
            f"The disruption budget {name} needs {desired} healthy pods and has {current} currently"
        )
    if dry_run:
        return
    disrupted[pod["metadata"]["name"]] = store.clock.timestamp()
    pdb["status"] = {**pdb_status, "disruptionsAllowed": allowed - 1, "disruptedPods": disrupted}
    store.update_status(
        store.resource(API, "poddisruptionbudgets"), pdb, namespace=pdb["metadata"]["namespace"]
    )


def _too_many_requests(cause: str) -> ApiError:
    return ApiError(
        429,
        "Cannot evict pod as it would violate the pod's disruption budget.",
        reason="TooManyRequests",
        details={"causes": [{"reason": "DisruptionBudget", "message": cause}]},
    )


def _forbidden(name: str, why: str) -> ApiError:
    return ApiError(
        403,
        f'poddisruptionbudgets.policy "{name}" is forbidden: {why}',
        details={"name": name, "group": "policy", "kind": "poddisruptionbudgets"},
    )


def _pdbs_of_pod(self: DisruptionController, _event: str, pod: Obj) -> list[str]:
    return [
        f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in matching_budgets(self.store, pod)
    ]


class DisruptionController(Controller):
    name = "disruption"
    watches = (Watch(API, "poddisruptionbudgets"), Watch("v1", "pods", _pdbs_of_pod))

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.store.eviction_check = check_eviction

    async def reconcile(self, key: str) -> float | None:
        pdb = self.get(API, "poddisruptionbudgets", key)
        if pdb is None:
            return None
        namespace, _ = split_key(key)
        spec = pdb.get("spec") or {}
        matcher = label_selector_from_dict(spec.get("selector"))
        pods = [
            p
            for p in self.list("v1", "pods", namespace)
            if spec.get("selector") is not None
            and (matcher is None or matcher(p["metadata"].get("labels") or {}))
        ]
        now = self.clock.now().timestamp()
        old = pdb.get("status") or {}
        disrupted = {
            name: at
            for name, at in (old.get("disruptedPods") or {}).items()
            if _parse(at) + DELETION_TIMEOUT > now
            and any(
                p["metadata"]["name"] == name and not p["metadata"].get("deletionTimestamp") for p in pods
            )
        }
        if spec.get("maxUnavailable") is not None:
            expected = self._expected_scale(pods)
            desired = max(0, expected - _scaled(spec["maxUnavailable"], expected, round_up=True))
        elif isinstance(spec.get("minAvailable"), str):
            expected = self._expected_scale(pods)
            desired = _scaled(spec["minAvailable"], expected, round_up=True)
        else:
            expected = len(pods)
            desired = int(spec.get("minAvailable") or 0)
        healthy = sum(
            1
            for p in pods
            if is_ready(p)
            and not p["metadata"].get("deletionTimestamp")
            and p["metadata"]["name"] not in disrupted
        )
        allowed = healthy - desired
        if expected <= 0 or allowed <= 0:
            allowed = 0
        condition = {
            "type": "DisruptionAllowed",
            "status": "True" if allowed > 0 else "False",
            "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
            "message": "",
            "observedGeneration": int(pdb["metadata"].get("generation") or 1),
        }
        previous = next(
            (c for c in old.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None
        )
        condition["lastTransitionTime"] = (
            previous["lastTransitionTime"]
            if previous is not None and previous.get("status") == condition["status"]
            else self.clock.timestamp()
        )
        status: Obj = {
            "observedGeneration": int(pdb["metadata"].get("generation") or 1),
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "conditions": [condition],
        }
        if disrupted:
            status["disruptedPods"] = disrupted
        if status != old:
            pdb["status"] = status
            self.store.update_status(self.rt(API, "poddisruptionbudgets"), pdb, namespace=namespace)
        # A granted eviction that never deleted its pod expires after DELETION_TIMEOUT.
        return DELETION_TIMEOUT if disrupted else None

    def _expected_scale(self, pods: list[Obj]) -> int:
        """`getExpectedScale`: the summed `spec.replicas` of the pods' distinct controllers."""
        seen: dict[tuple[str, str], int] = {}
        for pod in pods:
            ref = next((r for r in pod["metadata"].get("ownerReferences") or [] if r.get("controller")), None)
            if ref is None:
                continue
            namespace = pod["metadata"]["namespace"]
            kind, name = str(ref.get("kind")), str(ref.get("name"))
            if kind == "ReplicaSet":
                rs = self.get("apps/v1", "replicasets", f"{namespace}/{name}")
                owner = next(
                    (
                        r
                        for r in ((rs or {}).get("metadata") or {}).get("ownerReferences") or []
                        if r.get("controller")
                    ),
                    None,
                )
                if owner is not None and owner.get("kind") == "Deployment":
                    kind, name = "Deployment", str(owner.get("name"))
            resource = {
                "Deployment": ("apps/v1", "deployments"),
                "ReplicaSet": ("apps/v1", "replicasets"),
                "StatefulSet": ("apps/v1", "statefulsets"),
                "ReplicationController": ("v1", "replicationcontrollers"),
            }.get(kind)
            if resource is None or (kind, name) in seen:
                continue
            owner_obj = self.get(*resource, f"{namespace}/{name}")
            seen[(kind, name)] = int(((owner_obj or {}).get("spec") or {}).get("replicas") or 0)
        return sum(seen.values())
