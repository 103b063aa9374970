"""How the suite reaches a workspace's model server: a direct URL, or the API server's service proxy.

The service proxy (`/api/v1/namespaces/<ns>/services/<svc>:<port>/proxy/...`) needs nothing but the API
credentials the suite already has and streams server-sent events through, so it works from a laptop or CI
runner outside the cluster network; a profile can give a direct URL (an ingress, a gateway, a port-forward
you run yourself) to measure latency without the API server in the path.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any

import httpx

from pytest_aksai.kube import _rest
from pytest_aksai.kube._connect import Cluster


@dataclass(frozen=True)
class Endpoint:
    """Where a workspace's OpenAI-compatible server answers, and the credentials to get there."""

    workspace: str
    base_url: str
    """Root of the server (no `/v1`): `/health`, `/metrics` and `/v1/...` hang below it."""
    via: str
    """`direct` or `service-proxy`."""
    headers: dict[str, str] = field(default_factory=dict)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False

    def _tls(self) -> ssl.SSLContext | bool:
        if self.insecure:
            return False
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    def http(self, *, timeout: float = 60.0) -> httpx.Client:
        """An httpx client bound to the server root, with the credentials the route needs."""
        return httpx.Client(
            base_url=self.base_url.rstrip("/") + "/",
            headers=self.headers,
            verify=self._tls(),
            timeout=timeout,
        )

    def openai(self, *, timeout: float = 60.0, max_retries: int = 0) -> Any:
        """An official `openai` SDK client, exactly as an application would build one for this server."""
        import openai

        # The SDK's own client class: openai 3 ships its own httpx fork, so a plain httpx.Client won't do.
        http_client = openai.DefaultHttpxClient(verify=self._tls(), timeout=timeout)
        authorization = self.headers.get("Authorization", "")
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
    configuration = cluster.api_client.configuration
    headers: dict[str, str] = {}
    bearer = configuration.auth_settings().get("BearerToken")
    if bearer and bearer.get("value"):
        headers["Authorization"] = str(bearer["value"])
    base = f"{cluster.server_url.rstrip('/')}/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy"
    return Endpoint(
        workspace=workspace,
        base_url=base,
        via="service-proxy",
        headers=headers,
        ca_file=configuration.ssl_ca_cert,
        cert_file=configuration.cert_file,
        key_file=configuration.key_file,
        insecure=not configuration.verify_ssl,
    )


def workspace_endpoint(cluster: Cluster, workspace_ref: str, *, direct_urls: dict[str, str]) -> Endpoint:
    """The profile's direct URL for this workspace if it has one, else the service proxy to `<ws>:http`."""
    if workspace_ref in direct_urls:
        return Endpoint(workspace=workspace_ref, base_url=direct_urls[workspace_ref], via="direct")
    namespace, name = workspace_ref.split("/", 1)
    service = _rest.get(cluster.api_client, _rest.SERVICES, name, namespace)
    if service is None:
        raise LookupError(
            f"Service {namespace}/{name} does not exist: KAITO creates a Service named like the Workspace once "
            f"its resources are ready (kubectl get svc -n {namespace}); or give a direct URL for it in the "
            f'profile\'s [endpoints] table ("{workspace_ref}" = "http://...").'
        )
    port = service_port(service)
    if port is None:
        raise LookupError(f"Service {namespace}/{name} has no ports")
    return service_proxy_endpoint(cluster, workspace_ref, namespace, name, port)
