"""The scheduler's filters and the `FailedScheduling` message, following kube-scheduler's default profile.

Filters run per node in the upstream order (NodeUnschedulable, TaintToleration, NodeAffinity,
NodeResourcesFit) and stop at the first one that rejects, so a node contributes the reasons of one filter.
The message has the shape of `FitError.Error()`:
`0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 2 node(s) had untolerated taint {k: v}.
preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not
helpful for scheduling.` (one line). The sim does not preempt, so resource failures always end in "No
preemption victims found".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pytest_aksai.sim._core._resources import node_allocatable, pod_requests, sum_requests

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
NO_NODES_MESSAGE = "no nodes available to schedule pods"

_REASON_UNSCHEDULABLE = "node(s) were unschedulable"
_REASON_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
_REASON_TOO_MANY_PODS = "Too many pods"
_PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
_PREEMPTION_NO_VICTIMS = "No preemption victims found for incoming pod"


@dataclass
class NodeVerdict:
    reasons: list[str] = field(default_factory=list)
    resolvable: bool = False
    """True when freeing resources (preemption) could make the pod fit."""

    @property
    def fits(self) -> bool:
        return not self.reasons


def tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    for toleration in tolerations:
        effect = toleration.get("effect") or ""
        if effect and effect != taint.get("effect"):
            continue
        key = toleration.get("key") or ""
        operator = toleration.get("operator") or "Equal"
        if operator == "Exists":
            if not key or key == taint.get("key"):
                return True
        elif key == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _match_expression(expression: Mapping[str, Any], value: str | None) -> bool:
    operator = expression.get("operator")
    values = [str(v) for v in expression.get("values") or []]
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            left, right = int(value), int(values[0])
        except ValueError:
            return False
        return left > right if operator == "Gt" else left < right
    return False


def _match_term(term: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    labels = (node.get("metadata") or {}).get("labels") or {}
    name = (node.get("metadata") or {}).get("name")
    return all(_match_expression(e, labels.get(e.get("key"))) for e in expressions) and all(
        _match_expression(f, name if f.get("key") == "metadata.name" else None) for f in fields
    )


def matches_node_affinity(pod: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """`nodeSelector` and `requiredDuringSchedulingIgnoredDuringExecution` (terms OR-ed, expressions AND-ed)."""
    spec = pod.get("spec") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if required is None:
        return True
    return any(_match_term(term, node) for term in required.get("nodeSelectorTerms") or [])


def _format_taint(taint: Mapping[str, Any]) -> str:
    return "{" + f"{taint.get('key', '')}: {taint.get('value') or ''}" + "}"


def filter_node(
    pod: Mapping[str, Any], node: Mapping[str, Any], pods_on_node: Sequence[Mapping[str, Any]]
) -> NodeVerdict:
    """Why `pod` cannot run on `node` (empty reasons: it fits). `pods_on_node` are the non-terminal pods bound
    there."""
    spec = pod.get("spec") or {}
    tolerations = spec.get("tolerations") or []
    node_spec = node.get("spec") or {}
    if node_spec.get("unschedulable") and not tolerates(
        tolerations, {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}
    ):
        return NodeVerdict([_REASON_UNSCHEDULABLE])
    for taint in node_spec.get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return NodeVerdict([f"node(s) had untolerated taint {_format_taint(taint)}"])
    if not matches_node_affinity(pod, node):
        return NodeVerdict([_REASON_AFFINITY])
    return _resources_fit(pod, node, pods_on_node)


def _resources_fit(
    pod: Mapping[str, Any], node: Mapping[str, Any], pods_on_node: Sequence[Mapping[str, Any]]
) -> NodeVerdict:
    allocatable = node_allocatable(node)
    reasons: list[str] = []
    if len(pods_on_node) + 1 > allocatable.get("pods", Decimal(0)):
        reasons.append(_REASON_TOO_MANY_PODS)
    used = sum_requests(pods_on_node)
    for name, wanted in sorted(pod_requests(pod).items(), key=lambda item: _resource_order(item[0])):
        if name == "pods" or wanted <= 0:
            continue
        if used.get(name, Decimal(0)) + wanted > allocatable.get(name, Decimal(0)):
            reasons.append(f"Insufficient {name}")
    return NodeVerdict(reasons, resolvable=True)


def _resource_order(name: str) -> tuple[int, str]:
    return ({"cpu": 0, "memory": 1, "ephemeral-storage": 2}.get(name, 3), name)


def _histogram(counts: Counter[str]) -> str:
    return ", ".join(sorted(f"{count} {reason}" for reason, count in counts.items()))


def fit_error_message(verdicts: Sequence[NodeVerdict]) -> str:
    """The scheduler's `FailedScheduling` message for a pod that fits on none of `verdicts`' nodes."""
    total = len(verdicts)
    if total == 0:
        return NO_NODES_MESSAGE
    reasons: Counter[str] = Counter(r for v in verdicts for r in v.reasons)
    preemption: Counter[str] = Counter(
        _PREEMPTION_NO_VICTIMS if v.resolvable else _PREEMPTION_NOT_HELPFUL for v in verdicts
    )
    return (
        f"0/{total} nodes are available: {_histogram(reasons)}. "
        f"preemption: 0/{total} nodes are available: {_histogram(preemption)}."
    )


def score_node(
    pod: Mapping[str, Any], node: Mapping[str, Any], pods_on_node: Sequence[Mapping[str, Any]]
) -> float:
    """LeastAllocated over cpu and memory (higher is better), as the default profile spreads pods."""
    allocatable = node_allocatable(node)
    used = sum_requests([*pods_on_node, pod])
    scores = []
    for name in ("cpu", "memory"):
        capacity = allocatable.get(name, Decimal(0))
        if capacity > 0:
            scores.append(float((capacity - used.get(name, Decimal(0))) / capacity))
    return sum(scores) / len(scores) if scores else 0.0
