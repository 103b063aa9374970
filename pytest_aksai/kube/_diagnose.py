"""What broke when a request to a model server failed: no ready endpoint, a pod that restarted, a port nothing
listens on, or the engine answering an error — read from the Service and its pods at the moment of failure.

An `Endpoint` carries the restart counts of the pods behind its Service from when it was opened, so a restart
during the run is told apart from a pod that restarted long ago.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from pytest_aksai._errors import Finding
from pytest_aksai.kube import _rest
from pytest_aksai.kube._connect import Cluster
from pytest_aksai.kube._rest import Obj

PodRestarts = dict[str, dict[str, int]]
"""pod name → container name → restartCount."""


@dataclass(frozen=True)
class Restart:
    pod: str
    container: str
    before: int
    after: int
    last: Mapping[str, Any]
    """`lastState.terminated` of the container (exitCode, reason, finishedAt)."""

    def describe(self) -> str:
        reason = self.last.get("reason") or "unknown reason"
        code = self.last.get("exitCode")
        at = f" at {self.last['finishedAt']}" if self.last.get("finishedAt") else ""
        return (
            f"pod {self.pod} container {self.container} restarted {self.after - self.before} time(s) "
            f"(restartCount {self.before} → {self.after}); last termination: {reason}, exit code {code}{at}"
        )


def selected_pods(cluster: Cluster, service: Mapping[str, Any]) -> list[Obj]:
    selector = (service.get("spec") or {}).get("selector") or {}
    if not selector:
        return []
    return _rest.items(
        cluster._api,
        _rest.PODS,
        str(service["metadata"]["namespace"]),
        label_selector=",".join(f"{k}={v}" for k, v in selector.items()),
    )


def restart_counts(pods: list[Obj]) -> PodRestarts:
    return {
        p["metadata"]["name"]: {
            str(cs.get("name")): int(cs.get("restartCount") or 0)
            for cs in (p.get("status") or {}).get("containerStatuses") or []
        }
        for p in pods
    }


def restarts_since(pods: list[Obj], baseline: PodRestarts) -> list[Restart]:
    """The containers whose restartCount grew since the baseline (a pod replaced since counts from 0)."""
    found: list[Restart] = []
    for pod in pods:
        name = pod["metadata"]["name"]
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            before = baseline.get(name, {}).get(str(cs.get("name")), 0)
            after = int(cs.get("restartCount") or 0)
            if after > before:
                last = (cs.get("lastState") or {}).get("terminated") or {}
                found.append(Restart(name, str(cs.get("name")), before, after, last))
    return found


def _ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _is_transport(exc: BaseException) -> bool:
    import httpx

    try:
        import openai

        if isinstance(exc, openai.APIConnectionError):
            return True
    except ImportError:  # pragma: no cover - openai is a dependency
        pass
    return isinstance(exc, httpx.TransportError | ConnectionError)


def _server_error(exc: BaseException) -> tuple[int, str] | None:
    try:
        import openai
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
        return exc.status_code, str(exc.message)[:300]
    return None


def explain_request_failure(
    cluster: Cluster,
    namespace: str,
    service_name: str,
    baseline: PodRestarts,
    exc: BaseException,
    *,
    via: str,
    route_error: str = "",
) -> Finding | None:
    """A `Finding` saying what broke behind a failed request, or None when `exc` is no request failure."""
    server_error = _server_error(exc)
    if server_error is None and not _is_transport(exc):
        return None
    where_svc = f"Service {namespace}/{service_name}"
    try:
        service = _rest.get(cluster._api, _rest.SERVICES, service_name, namespace)
        pods = selected_pods(cluster, service) if service is not None else []
    except ApiException:
        return None
    describe = f"kubectl describe pod -n {namespace} -l kaito.sh/workspace={service_name}"
    restarted = restarts_since(pods, baseline)
    if restarted:
        first = restarted[0]
        return Finding(
            f"A request to {where_svc} via {via} failed ({_short(exc)}) because the model pod restarted during "
            f"the check: {first.describe()}",
            where=f"kubectl logs {first.pod} -n {namespace} -c {first.container} --previous",
            fix="Read the previous instance's log for why the model server exited (an engine crash, OOM, a "
            "failed liveness probe); a restart drops every in-flight request",
        )
    if server_error is not None:
        status, message = server_error
        return Finding(
            f"{where_svc}'s model server answered {status}: the engine answered with an error: {message}",
            where=f"the model pod's log (kubectl logs -n {namespace} -l kaito.sh/workspace={service_name})",
            fix="An engine error (not a client error): read the server's log around the request",
        )
    if service is None:
        return Finding(f"A request via {via} failed ({_short(exc)}): {where_svc} no longer exists")
    ready = [p for p in pods if _ready(p) and not p["metadata"].get("deletionTimestamp")]
    if not ready:
        return Finding(
            f"A request to {where_svc} via {via} failed ({_short(exc)}): the Service has no ready endpoints "
            f"({len(pods)} pod(s) selected, none Ready)",
            where=describe,
            fix="Find out why the model pods are not Ready (their readiness probe, conditions and events)",
        )
    detail = f": {route_error}" if route_error else ""
    port = next(
        (
            p.get("targetPort")
            for p in (service.get("spec") or {}).get("ports") or []
            if p.get("name") == "http"
        ),
        None,
    )
    return Finding(
        f"A request to {where_svc} via {via} failed ({_short(exc)}): connection refused on the target port "
        f"{port} of ready pod {ready[0]['metadata']['name']}{detail}",
        where=describe + " and the container's ports",
        fix="Make the Service's targetPort the port the model server listens on (KAITO's vLLM listens on 5000)",
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text[:160]}"
