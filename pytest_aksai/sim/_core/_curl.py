"""`curl` in a simulated pod: the cluster's service routing, as a client pod sees it.

The URL's host is resolved as cluster DNS resolves it (`<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc`,
`<svc>.<ns>.svc.cluster.local`), the Service's port leads to its endpoints (ready pods, or every selected pod
with `publishNotReadyAddresses`), the destination pod's namespace's NetworkPolicies are consulted for the
calling pod (`pytest_aksai._netpol`), and the pod's process must listen (it serves HTTP on a declared
container port). Outcomes and exit codes are curl's: 0 with the HTTP status for `-w '%{http_code}'`,
6 `Could not resolve host`, 7 `Failed to connect … Couldn't connect to server` (nothing listens, no
endpoints), 28 `Connection timed out after N milliseconds` (a NetworkPolicy drops the SYN; the `--max-time`
budget runs out). Only the status of a listening model server's routes is simulated, not a response body.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pytest_aksai._netpol import Client, ingress_verdict, namespace_labels
from pytest_aksai.sim._apiserver import HTTP_PORT_ANNOTATION
from pytest_aksai.sim._core._commands import CommandContext, CommandResult, register_command

CLUSTER_DOMAIN = "cluster.local"
DEFAULT_MAX_TIME = 300.0


def _options(argv: list[str]) -> tuple[str | None, float, bool]:
    url, max_time, status_out = None, DEFAULT_MAX_TIME, False
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg in ("--max-time", "-m") and i + 1 < len(argv):
            max_time, i = float(argv[i + 1]), i + 1
        elif arg in ("-w", "--write-out") and i + 1 < len(argv):
            status_out, i = "%{http_code}" in argv[i + 1], i + 1
        elif arg in ("-o", "--output", "-H", "--header", "-X", "--request", "-d", "--data") and i + 1 < len(
            argv
        ):
            i += 1
        elif not arg.startswith("-"):
            url = arg
        i += 1
    return url, max_time, status_out


def _service_of(ctx: Any, host: str, pod_namespace: str) -> tuple[str, str] | None:
    parts = host.split(".")
    suffix = ["svc", *CLUSTER_DOMAIN.split(".")]
    if len(parts) >= 2 and parts[2:] in (suffix[: len(parts) - 2],):
        return parts[0], parts[1]
    if len(parts) == 1:
        return parts[0], pod_namespace
    return None


def curl(cmd: CommandContext) -> CommandResult:
    ctx = cmd.cluster
    url, max_time, status_out = _options(cmd.argv)
    if url is None:
        return CommandResult("curl: no URL specified!\n", 2, 0.1)
    parsed = urlsplit(url if "://" in url else f"http://{url}")
    host, port = parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)
    pod_ns = str((cmd.pod.get("metadata") or {}).get("namespace") or "default")
    target = _service_of(ctx, host, pod_ns) if ctx is not None else None
    store = ctx.store if ctx is not None else None
    service = (
        store.try_get(store.resource("v1", "services"), target[0], target[1]) if store and target else None
    )
    if store is None or target is None or service is None:
        return CommandResult(f"curl: (6) Could not resolve host: {host}\n", 6, 0.05)
    spec_port = next(
        (p for p in (service.get("spec") or {}).get("ports") or [] if p.get("port") == port), None
    )
    refused = CommandResult(
        f"curl: (7) Failed to connect to {host} port {port} after 1 ms: Couldn't connect to server\n", 7, 0.05
    )
    if spec_port is None:
        return refused
    selector = (service.get("spec") or {}).get("selector") or {}
    pods = [
        p
        for p in store.list(store.resource("v1", "pods"), target[1])
        if selector and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
    ]
    publish_all = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    endpoints = [p for p in pods if publish_all or _ready(p)]
    if not endpoints:
        return refused
    pod = endpoints[0]  # kube-proxy picks one; KAITO's Service selects pod 0
    container_port, port_name = _target_port(spec_port, pod)
    namespace_obj = store.try_get(store.resource("v1", "namespaces"), pod_ns) or {
        "metadata": {"name": pod_ns}
    }
    client = Client(
        pod_ns, namespace_labels(namespace_obj), (cmd.pod.get("metadata") or {}).get("labels") or {}
    )
    policies = store.list(store.resource("networking.k8s.io/v1", "networkpolicies"), target[1])
    if not ingress_verdict(pod, policies, client, container_port, port_name).admitted:
        millis = int(max_time * 1000) + 1
        return CommandResult(f"curl: (28) Connection timed out after {millis} milliseconds\n", 28, max_time)
    declared = {
        int(cp["containerPort"])
        for c in (pod.get("spec") or {}).get("containers") or []
        for cp in c.get("ports") or []
        if cp.get("containerPort")
    }
    listening = HTTP_PORT_ANNOTATION in (pod["metadata"].get("annotations") or {})
    if not listening or (declared and container_port not in declared):
        return refused
    return CommandResult("200" if status_out else "", 0, 0.05)


def _ready(pod: Any) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _target_port(spec_port: Any, pod: Any) -> tuple[int, str | None]:
    target = spec_port.get("targetPort", spec_port.get("port"))
    for container in (pod.get("spec") or {}).get("containers") or []:
        for cp in container.get("ports") or []:
            if cp.get("name") == target or cp.get("containerPort") == target:
                return int(cp["containerPort"]), cp.get("name")
    return (int(target), None) if str(target).isdigit() else (0, str(target))


register_command("curl", curl)
