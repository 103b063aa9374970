"""How the suite reaches a workspace's model server: a direct URL, a port-forward, or the service proxy.

Without a direct URL from the profile, the suite opens a port-forward through the API server to a ready pod
behind Service `<ws>` (what `kubectl port-forward svc/<ws>` does), so requests reach vLLM with nothing in
between but the API server's tunnel. When the API server refuses it (no `pods/portforward` permission, say),
the API server's service proxy (`/api/v1/namespaces/<ns>/services/<svc>:<port>/proxy/...`) takes over: it
needs only read access and passes server-sent events through. A direct URL (an ingress, a gateway) tests
the path your applications use.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import httpx

if TYPE_CHECKING:
    import openai

from pytest_aksai._errors import Finding, ReadOnlyRefusal
from pytest_aksai._public import public
from pytest_aksai.kube import _rest
from pytest_aksai.kube._connect import Cluster
from pytest_aksai.kube._diagnose import explain_request_failure, restart_counts, restarts_since, selected_pods
from pytest_aksai.kube._portforward import PortForward, PortForwardError


@public
@dataclass(frozen=True)
class Endpoint:
    """Where a workspace's OpenAI-compatible server answers, and the credentials to get there."""

    workspace: str
    base_url: str
    """Root of the server (no `/v1`): `/health`, `/metrics` and `/v1/...` hang below it."""
    via: str
    """`direct`, `port-forward` or `service-proxy`."""
    credentials: Callable[[], dict[str, str]] | None = field(default=None, repr=False)
    """Headers to authenticate with, built at each use: tokens from exec plugins (kubelogin) expire."""
    forward: PortForward | None = None
    """The port-forward behind `base_url` when `via` is `port-forward`."""
    ready_replicas: int | None = None
    """Ready pods behind the Service (None for a direct URL)."""
    fallback_reason: str = ""
    """Why the port-forward was not used, when `auto` fell back to the service proxy."""
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False
    diagnose: Callable[[BaseException], Finding | None] | None = field(default=None, repr=False)
    """What broke behind a failed request (set for routes through the cluster)."""
    restarts: Callable[[], list[str]] | None = field(default=None, repr=False)
    """The model pod restarts since the endpoint was opened (set for routes through the cluster)."""

    def explain_failure(self, exc: BaseException) -> Finding | None:
        """A `Finding` saying what broke when a request failed: the Service has no ready endpoints, the pod
        restarted during the check (restart count, last termination reason), connection refused on the
        target port, or the engine answered with an error. None when `exc` is not a failed request."""
        return self.diagnose(exc) if self.diagnose is not None else None

    def restarts_during_run(self) -> list[str]:
        """Each model container that restarted since the endpoint was opened, described in one line."""
        return self.restarts() if self.restarts is not None else []

    def _tls(self) -> ssl.SSLContext | bool:
        if self.insecure:
            return False
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def headers(self) -> dict[str, str]:
        return self.credentials() if self.credentials is not None else {}

    def trouble(self) -> str:
        """What went wrong on the route so far (a port-forward's kubelet error), or ""."""
        return self.forward.last_error if self.forward is not None else ""

    def close(self) -> None:
        if self.forward is not None:
            self.forward.close()

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    def http(self, *, timeout: float = 60.0) -> httpx.Client:
        """An httpx client bound to the server root, with the credentials the route needs."""
        return httpx.Client(
            base_url=self.base_url.rstrip("/") + "/",
            headers=self.headers(),
            verify=self._tls(),
            timeout=timeout,
        )

    def fetch(self, path: str, *, timeout: float = 30.0) -> tuple[int, str]:
        """GET `path` below the server root: (status, body text)."""
        with self.http(timeout=timeout) as client:
            response = client.get(path)
            return response.status_code, response.text

    def openai(self, *, timeout: float = 60.0, max_retries: int = 0) -> openai.OpenAI:
        """An official `openai` SDK client, exactly as an application would build one for this server."""
        import openai

        # The SDK's own client class: openai 3 ships its own httpx fork, so a plain httpx.Client won't do.
        http_client = openai.DefaultHttpxClient(verify=self._tls(), timeout=timeout)
        authorization = self.headers().get("Authorization", "")
        api_key = authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else "unused"
        return openai.OpenAI(
            base_url=self.url("v1"),
            api_key=api_key,
            http_client=http_client,
            max_retries=max_retries,
            timeout=timeout,
        )


def service_port(service: dict[str, Any], preferred_name: str = "http") -> int | None:
    ports = (service.get("spec") or {}).get("ports") or []
    named = [p for p in ports if p.get("name") == preferred_name]
    chosen = (named or ports or [None])[0]
    return int(chosen["port"]) if chosen else None


def service_proxy_endpoint(
    cluster: Cluster, workspace: str, namespace: str, service: str, port: int
) -> Endpoint:
    configuration = cluster._api.configuration

    def credentials() -> dict[str, str]:
        # auth_settings() runs the kubeconfig's refresh hook, so an expiring exec-plugin token is renewed.
        bearer = configuration.auth_settings().get("BearerToken")
        return {"Authorization": str(bearer["value"])} if bearer and bearer.get("value") else {}

    base = f"{cluster.server_url.rstrip('/')}/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy"
    return Endpoint(
        workspace=workspace,
        base_url=base,
        via="service-proxy",
        credentials=credentials,
        ca_file=configuration.ssl_ca_cert,
        cert_file=configuration.cert_file,
        key_file=configuration.key_file,
        insecure=not configuration.verify_ssl,
    )


EndpointRoute = Literal["auto", "port-forward", "service-proxy"]


def workspace_endpoint(
    cluster: Cluster, workspace_ref: str, *, direct_urls: dict[str, str], route: EndpointRoute = "auto"
) -> Endpoint:
    """How to reach a workspace's model server.

    A direct URL from the profile wins. Otherwise `port-forward` (as `kubectl port-forward svc/<ws>`: to a ready
    pod behind Service `<ws>`, on the Service port's target port), `service-proxy` (the API server's proxy), or
    `auto`: port-forward, falling back to the service proxy when the API server refuses it (e.g. RBAC without
    `pods/portforward`). Call `close()` on the result.
    """
    if workspace_ref in direct_urls:
        return Endpoint(workspace=workspace_ref, base_url=direct_urls[workspace_ref], via="direct")
    if cluster.readonly:
        raise ReadOnlyRefusal(
            f"send inference requests to {workspace_ref} through the API server (create pods/portforward or "
            "services/proxy); a direct URL in the profile's [endpoints] table needs no API server"
        )
    namespace, name = workspace_ref.split("/", 1)
    service = _rest.get(cluster._api, _rest.SERVICES, name, namespace)
    if service is None:
        raise LookupError(
            f"Service {namespace}/{name} does not exist: KAITO creates a Service named like the Workspace once "
            f"its resources are ready (kubectl get svc -n {namespace}); or give a direct URL for it in the "
            f'profile\'s [endpoints] table ("{workspace_ref}" = "http://...").'
        )
    port = service_port(service)
    if port is None:
        raise LookupError(f"Service {namespace}/{name} has no ports")
    ready = _ready_pods(cluster, service)
    baseline = restart_counts(selected_pods(cluster, service))
    refusal = ""
    if route != "service-proxy":
        try:
            forward = _forward_to_service(cluster, service, port, ready)
            return Endpoint(
                workspace=workspace_ref,
                base_url=forward.url,
                via="port-forward",
                forward=forward,
                ready_replicas=len(ready),
                **_watchers(cluster, service, baseline, "port-forward", forward),
            )
        except (PortForwardError, LookupError) as exc:
            if "connection refused" in str(exc):
                # The kubelet dialled the target port and nothing listens there: the service proxy would dial
                # the same port, so falling back would only hide the broken Service.
                finding = explain_request_failure(
                    cluster, namespace, name, baseline, ConnectionRefusedError(), via="port-forward"
                )
                if finding is not None:
                    raise finding from None
            if route == "port-forward":
                raise LookupError(
                    f'{exc}; set the profile\'s endpoint_route to "service-proxy" or "auto"'
                ) from None
            refusal = str(exc)
    endpoint = service_proxy_endpoint(cluster, workspace_ref, namespace, name, port)
    return dataclasses.replace(
        endpoint,
        fallback_reason=refusal,
        ready_replicas=len(ready),
        **_watchers(cluster, service, baseline, "the service proxy", None),
    )


def _watchers(
    cluster: Cluster,
    service: dict[str, Any],
    baseline: dict[str, dict[str, int]],
    via: str,
    forward: PortForward | None,
) -> dict[str, Any]:
    namespace, name = service["metadata"]["namespace"], service["metadata"]["name"]

    def diagnose(exc: BaseException) -> Finding | None:
        route_error = forward.last_error if forward is not None else ""
        return explain_request_failure(
            cluster, namespace, name, baseline, exc, via=via, route_error=route_error
        )

    def restarts() -> list[str]:
        return [r.describe() for r in restarts_since(selected_pods(cluster, service), baseline)]

    return {"diagnose": diagnose, "restarts": restarts}


def _ready_pods(cluster: Cluster, service: dict[str, Any]) -> list[dict[str, Any]]:
    """The Ready pods the Service selects (KAITO publishes not-ready addresses, so Endpoints cannot tell)."""
    selector = (service.get("spec") or {}).get("selector") or {}
    if not selector:
        return []
    pods = _rest.items(
        cluster._api,
        _rest.PODS,
        service["metadata"]["namespace"],
        label_selector=",".join(f"{k}={v}" for k, v in selector.items()),
    )
    return [
        p
        for p in pods
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (p.get("status") or {}).get("conditions") or []
        )
    ]


def _forward_to_service(
    cluster: Cluster, service: dict[str, Any], port: int, ready: list[dict[str, Any]]
) -> PortForward:
    """A port-forward to a ready pod selected by the Service, on the target port of its `port`."""
    namespace = service["metadata"]["namespace"]
    if not ready:
        raise LookupError(f"no ready pod behind Service {namespace}/{service['metadata']['name']}")
    spec_port = next(p for p in service["spec"]["ports"] if int(p["port"]) == port)
    pod = ready[0]
    target = spec_port.get("targetPort", port)
    if isinstance(target, str):
        named = [
            cp["containerPort"]
            for c in pod["spec"]["containers"]
            for cp in c.get("ports") or []
            if cp.get("name") == target
        ]
        if not named:
            raise LookupError(f"pod {pod['metadata']['name']} has no container port named {target!r}")
        target = named[0]
    return PortForward(cluster._api, namespace, pod["metadata"]["name"], int(target))
