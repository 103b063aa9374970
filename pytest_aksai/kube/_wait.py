"""Watch-based waits with deadlines that record a timeline.

A wait lists the object once (to get a resourceVersion and check the present state), then watches from there
until a predicate holds or the deadline passes; budgets are cluster seconds, converted with the cluster's time
scale. A failed wait says what did not happen, what was expected, what was last observed, and where to look.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from pytest_aksai._errors import Finding
from pytest_aksai._public import public
from pytest_aksai.kube import _rest
from pytest_aksai.kube._connect import Cluster
from pytest_aksai.kube._rest import Kind, Obj
from pytest_aksai.kube._retry import MAX_RETRIES, STREAM_ERRORS, backoff

_MAX_WATCH_SECONDS = 60


@public
@dataclass(frozen=True)
class Observation:
    at: float
    """Cluster seconds since the wait started."""
    event: str
    state: str


@public
@dataclass
class WaitResult:
    obj: Obj | None
    elapsed: float
    """Cluster seconds the wait took."""
    timeline: list[Observation] = field(default_factory=list)


class WaitFailed(Finding):
    """A wait ended without the expected state; carries the timeline it recorded."""

    __module__ = "pytest_aksai"

    def __init__(self, what: str, *, timeline: list[Observation], **parts: Any) -> None:
        self.timeline = timeline
        super().__init__(what, **parts)


class WaitTimeout(WaitFailed):
    """A wait's deadline passed; the message is the whole user-facing explanation."""

    __module__ = "pytest_aksai"


class WaitAborted(WaitFailed):
    """The object reached a state from which the expected one cannot follow (e.g. a failed condition)."""

    __module__ = "pytest_aksai"


def wait_for(
    cluster: Cluster,
    kind: Kind,
    name: str,
    namespace: str | None,
    *,
    until: Callable[[Obj | None], bool],
    expected: str,
    timeout: float,
    describe: Callable[[Obj | None], str] | None = None,
    abort_if: Callable[[Obj], str | None] | None = None,
) -> WaitResult:
    """Wait until `until(obj)` holds (obj is None while the object does not exist).

    `expected` completes the sentence "expected ..."; `timeout` is in cluster seconds; `abort_if` returns a
    reason to stop early (the reason is reported with the state).
    """
    __tracebackhide__ = True
    describe = describe or describe_object
    what = f"{kind.kind or kind.plural} {namespace + '/' if namespace else ''}{name}"
    scale = cluster.time_scale
    started = time.monotonic()
    deadline = started + timeout / scale
    timeline: list[Observation] = []

    def elapsed() -> float:
        return (time.monotonic() - started) * scale

    def explain(headline: str, obj: Obj | None) -> dict[str, Any]:
        return _explain(cluster, kind, name, namespace, expected, obj, timeline, headline=headline)

    def observe(event: str, obj: Obj | None) -> WaitResult | None:
        state = describe(obj)
        if not timeline or timeline[-1].state != state:
            timeline.append(Observation(round(elapsed(), 3), event, state))
        if until(obj):
            return WaitResult(obj, elapsed(), timeline)
        if obj is not None and abort_if is not None:
            reason = abort_if(obj)
            if reason:
                raise WaitAborted(timeline=timeline, **explain(f"{what} failed: {reason}", obj))
        return None

    last: Obj | None = None
    selector = f"metadata.name={name}"
    while True:
        listed = _rest.list_(cluster._api, kind, namespace, field_selector=selector)
        found = listed.get("items") or []
        last = found[0] if found else None
        done = observe("LIST", last)
        if done:
            return done
        resource_version = str(listed.get("metadata", {}).get("resourceVersion", ""))
        broken = 0
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                for event in _rest.watch(
                    cluster._api,
                    kind,
                    namespace,
                    resource_version=resource_version,
                    timeout_seconds=max(1, min(_MAX_WATCH_SECONDS, int(remaining + 1))),
                    field_selector=selector,
                ):
                    obj = event.get("object") or {}
                    resource_version = str(obj.get("metadata", {}).get("resourceVersion", resource_version))
                    if event.get("type") == "BOOKMARK":
                        continue
                    last = None if event.get("type") == "DELETED" else obj
                    broken = 0
                    done = observe(str(event.get("type")), last)
                    if done:
                        return done
                    if time.monotonic() >= deadline:
                        break
            except ApiException as exc:
                if exc.status == 410:
                    break  # history compacted: list again
                raise
            except STREAM_ERRORS:
                # The stream broke mid-way: resume from the last resourceVersion seen, after a back-off.
                broken += 1
                if broken > MAX_RETRIES:
                    raise
                time.sleep(min(backoff(broken) / cluster.time_scale, max(0.0, deadline - time.monotonic())))
        else:
            headline = f"{what} did not become {expected} within {timeout:g} cluster seconds"
            raise WaitTimeout(timeline=timeline, **explain(headline, last))


def describe_object(obj: Obj | None) -> str:
    """A one-line state: phase/state and conditions, or `absent`."""
    if obj is None:
        return "absent"
    status = obj.get("status") or {}
    parts: list[str] = []
    for key in ("phase", "state", "replicas", "readyReplicas"):
        if key in status:
            parts.append(f"{key}={status[key]}")
    for cond in status.get("conditions") or []:
        part = f"{cond.get('type')}={cond.get('status')}"
        if cond.get("reason") and cond.get("status") != "True":
            part += f"({cond['reason']})"
        parts.append(part)
    return ", ".join(parts) or "no status yet"


def events_about(cluster: Cluster, name: str, namespace: str | None, kind: str = "") -> list[Obj]:
    """The events about an object, oldest first; none when they cannot be read."""
    selector = f"involvedObject.name={name}" + (f",involvedObject.kind={kind}" if kind else "")
    try:
        events = _rest.items(cluster._api, _rest.EVENTS, namespace, field_selector=selector)
    except ApiException:
        return []
    return sorted(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))


def recent_events(cluster: Cluster, name: str, namespace: str | None, limit: int = 5) -> list[str]:
    """The last events about an object, as `Reason: message` lines (newest last)."""
    events = events_about(cluster, name, namespace)[-limit:]
    return [f"{e.get('type', 'Normal')} {e.get('reason')}: {e.get('message')}" for e in events]


def _explain(
    cluster: Cluster,
    kind: Kind,
    name: str,
    namespace: str | None,
    expected: str,
    last: Obj | None,
    timeline: list[Observation],
    *,
    headline: str,
) -> dict[str, Any]:
    """The parts of a failed wait's paragraph (see `AksaiError`)."""
    details: list[str] = []
    conditions = ((last or {}).get("status") or {}).get("conditions") or []
    for cond in conditions:
        if cond.get("status") != "True" and cond.get("message"):
            details.append(f"condition {cond.get('type')}: {cond.get('reason')}: {cond.get('message')}")
    if timeline:
        details.append("timeline: " + "; ".join(f"+{o.at:.0f}s {o.state}" for o in timeline[-6:]))
    events = recent_events(cluster, name, namespace if kind.namespaced else "default")
    if events:
        details.append("events: " + " | ".join(events))
    ns_flag = f" -n {namespace}" if namespace and kind.namespaced else ""
    resource = f"{kind.plural}.{kind.group}" if kind.group else kind.plural
    return {
        "what": headline,
        "expected": expected,
        "observed": describe_object(last),
        "where": f"kubectl describe {resource} {name}{ns_flag}",
        "details": details,
    }


def condition(obj: Obj | None, type_: str) -> dict[str, Any] | None:
    """The status condition of that type, or None."""
    if obj is None:
        return None
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def condition_is(obj: Obj | None, type_: str, status: str = "True") -> bool:
    cond = condition(obj, type_)
    return cond is not None and cond.get("status") == status
