"""Where the Azure endpoints are, and the only place that knows how a simulated Azure differs from the real
one: constructor keyword arguments of the unchanged SDKs, gathered here.

| SDK call | real Azure | simulated Azure (adds) |
|---|---|---|
| `ClientAssertionCredential(tenant, client_id, func)` | `authority=` only when not public cloud | `authority=<sim Entra>`, `connection_verify=<sim CA>` |
| `SecretClient(vault_url, credential)` | `https://<vault>.vault.azure.net/` | vault URL `https://127.0.0.1:<port>/`, `verify_challenge_resource=False` (an IP is not under `vault.azure.net`), `connection_verify=<sim CA>` |
| `ServiceBusClient(namespace, credential)` | AMQPS to `<namespace>.servicebus.windows.net:5671` | `custom_endpoint_address=sb://127.0.0.1:<port>`, `transport_type=TransportType.Amqp` (else it switches to websockets), `connection_verify=<sim CA>` |
| `ServiceBusAdministrationClient(namespace, credential)` | `https://<namespace>.servicebus.windows.net/` | namespace `127.0.0.1:<port>`, `connection_verify=<sim CA>` |
| HTTPS GET of the issuer's discovery and JWKS | system trust | `verify=<sim CA>` |
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_aksai._public import public

PUBLIC_AUTHORITY = "https://login.microsoftonline.com/"
VAULT_SUFFIX = "vault.azure.net"


def fingerprint(value: str) -> str:
    """What may be shown of a secret or token: its length and the start of its SHA-256, never the value."""
    return f"{len(value)} chars, sha256 {hashlib.sha256(value.encode()).hexdigest()[:12]}"


@public
@dataclass(frozen=True)
class AzureTarget:
    """The Azure the chain is walked against: the real clouds, or a simulated cluster's advertised endpoints."""

    tenant_id: str = ""
    """The default tenant (a ServiceAccount's tenant-id annotation wins)."""
    authority_host: str = PUBLIC_AUTHORITY
    vault_urls: Mapping[str, str] = field(default_factory=dict)
    """Vault name → URL, where it is not `https://<name>.vault.azure.net/` (the simulated cluster's)."""
    amqp_endpoints: Mapping[str, str] = field(default_factory=dict)
    """Service Bus namespace → `sb://host:port`, where it is not the namespace's own host (the sim's)."""
    management_hosts: Mapping[str, str] = field(default_factory=dict)
    """Service Bus namespace → `host:port` of its management API, where it is not the namespace's host."""
    ca_bundle: str | None = None
    """A CA file to trust instead of the system's (the simulated cluster's CA)."""
    simulated: bool = False

    def vault_url(self, name: str) -> str:
        return self.vault_urls.get(name) or f"https://{name}.{VAULT_SUFFIX}/"

    def _verify(self) -> dict[str, Any]:
        return {"connection_verify": self.ca_bundle} if self.ca_bundle else {}

    def credential_kwargs(self) -> dict[str, Any]:
        return {"authority": self.authority_host, **self._verify()}

    def secret_client_kwargs(self) -> dict[str, Any]:
        return {"verify_challenge_resource": False, **self._verify()} if self.simulated else self._verify()

    def http_verify(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_bundle)

    def credential(self, tenant_id: str, client_id: str, assertion: Callable[[], str]) -> Any:
        from azure.identity import ClientAssertionCredential

        return ClientAssertionCredential(tenant_id, client_id, assertion, **self.credential_kwargs())

    def service_bus_client(self, fully_qualified_namespace: str, credential: Any, **options: Any) -> Any:
        from azure.servicebus import ServiceBusClient, TransportType

        name = fully_qualified_namespace.split(".")[0]
        kwargs: dict[str, Any] = {}
        if name in self.amqp_endpoints:
            # custom_endpoint_address switches to websockets unless the transport is named
            kwargs = {
                "custom_endpoint_address": self.amqp_endpoints[name],
                "transport_type": TransportType.Amqp,
            }
        return ServiceBusClient(fully_qualified_namespace, credential, **options, **kwargs, **self._verify())

    def admin_client(self, fully_qualified_namespace: str, credential: Any) -> Any:
        """`ServiceBusAdministrationClient` (the ATOM management API KEDA reads queue depth from)."""
        from azure.servicebus.management import ServiceBusAdministrationClient

        name = fully_qualified_namespace.split(".")[0]
        host = self.management_hosts.get(name, fully_qualified_namespace)
        return ServiceBusAdministrationClient(host, credential, **self._verify())

    def secret_client(self, vault: str, credential: Any) -> Any:
        from azure.keyvault.secrets import SecretClient

        return SecretClient(self.vault_url(vault), credential, **self.secret_client_kwargs())
