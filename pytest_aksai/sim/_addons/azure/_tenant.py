"""The simulated Entra ID tenant as data: managed identities, their federated credentials and role
assignments, Key Vaults with their secrets, Service Bus namespaces with their queues.

A scenario carries it under `azure:`; at start the add-on writes it to the ConfigMap
`kube-system/aksai-sim-azure` (key `tenant.yaml`, the same schema, with `issuer: cluster` resolved to the
cluster's OIDC issuer URL), and every change to that ConfigMap takes effect at once. The faults of the
`azure` add-on are applied on top, when the tenant is read (`effective`), so clearing one restores the data.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pytest_aksai.sim.contract import Fault

CLUSTER_ISSUER = "cluster"
"""The value of a federated credential's `issuer` that means the cluster's own OIDC issuer URL."""
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"

SECRET_READER_ROLES = frozenset(
    {"Key Vault Secrets User", "Key Vault Secrets Officer", "Key Vault Administrator"}
)
"""Built-in roles whose data actions include Microsoft.KeyVault/vaults/secrets/getSecret/action."""
SEND_ROLES = frozenset({"Azure Service Bus Data Sender", "Azure Service Bus Data Owner"})
LISTEN_ROLES = frozenset({"Azure Service Bus Data Receiver", "Azure Service Bus Data Owner"})
MANAGE_READ_ROLES = frozenset({"Azure Service Bus Data Owner", "Owner", "Contributor", "Reader"})
"""Roles whose actions let a caller read an entity's runtime properties through the management API."""


class TenantError(ValueError):
    pass


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FederatedCredential(_Model):
    name: str
    issuer: str = CLUSTER_ISSUER
    subject: str
    audiences: list[str] = Field(default_factory=lambda: [TOKEN_EXCHANGE_AUDIENCE])


class RoleAssignment(_Model):
    role: str
    scope: str
    """A Key Vault name, a Service Bus namespace, or `<namespace>/<queue>`."""


class Identity(_Model):
    """A user-assigned managed identity (or an app registration): what a ServiceAccount's client-id names."""

    name: str
    client_id: str = Field(alias="clientId")
    principal_id: str = Field(alias="principalId")
    federated_credentials: list[FederatedCredential] = Field(
        default_factory=list, alias="federatedCredentials"
    )
    role_assignments: list[RoleAssignment] = Field(default_factory=list, alias="roleAssignments")

    def has_role(self, roles: frozenset[str], *scopes: str) -> bool:
        return any(a.role in roles and a.scope in scopes for a in self.role_assignments)


class KeyVault(_Model):
    name: str = Field(pattern=r"^[-a-zA-Z0-9]{3,24}$")
    secrets: dict[str, str] = Field(default_factory=dict)


class ServiceBusNamespace(_Model):
    name: str
    queues: list[str] = Field(default_factory=list)


class Tenant(_Model):
    tenant_id: str = Field(alias="tenantId")
    subscription_id: str = Field("00000000-0000-0000-0000-000000000000", alias="subscriptionId")
    resource_group: str = Field("rg-aksai-lab", alias="resourceGroup")
    identities: list[Identity] = Field(default_factory=list)
    key_vaults: list[KeyVault] = Field(default_factory=list, alias="keyVaults")
    service_bus: list[ServiceBusNamespace] = Field(default_factory=list, alias="serviceBusNamespaces")

    @field_validator("identities")
    @classmethod
    def _unique_client_ids(cls, values: list[Identity]) -> list[Identity]:
        seen: set[str] = set()
        for identity in values:
            if identity.client_id in seen:
                raise ValueError(f"two identities have clientId {identity.client_id!r}")
            seen.add(identity.client_id)
        return values

    def identity(self, client_id: str) -> Identity | None:
        return next((i for i in self.identities if i.client_id == client_id), None)

    def identity_named(self, name: str) -> Identity | None:
        return next((i for i in self.identities if i.name == name), None)

    def vault(self, name: str) -> KeyVault | None:
        return next((v for v in self.key_vaults if v.name == name), None)

    def namespace(self, name: str) -> ServiceBusNamespace | None:
        return next((n for n in self.service_bus if n.name == name), None)

    def resolved(self, issuer: str) -> Tenant:
        """A copy with `issuer: cluster` replaced by the cluster's issuer URL."""
        copy = self.model_copy(deep=True)
        for identity in copy.identities:
            for fic in identity.federated_credentials:
                if fic.issuer == CLUSTER_ISSUER:
                    fic.issuer = issuer
        return copy

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(by_alias=True), sort_keys=False)


def parse_tenant(data: Any, source: str) -> Tenant:
    """The tenant from a mapping (a scenario's `azure:`) or YAML text (the ConfigMap's `tenant.yaml`)."""
    if isinstance(data, str):
        try:
            data = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            raise TenantError(f"{source} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise TenantError(f"{source} must be a mapping with tenantId, identities, keyVaults, ...")
    try:
        return Tenant.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise TenantError(f"{source} is not a valid tenant: {problems}") from None


# The identity each fault breaks, by its name in the tenant (the default scenario's identities).
WORKLOAD_IDENTITY = "workload-identity"
KEDA_IDENTITY = "keda-identity"
CANARY_SECRET = "aksai-canary"


def effective(tenant: Tenant, faults: Any) -> Tenant:
    """The tenant as the simulated Azure sees it now: the data with the active faults applied."""
    broken = [
        f
        for f in (
            Fault.WI_SUBJECT_MISMATCH,
            Fault.WI_ISSUER_MISMATCH,
            Fault.WI_AUDIENCE_MISMATCH,
            Fault.KV_NO_ROLE,
            Fault.KV_SECRET_MISSING,
            Fault.SB_NO_SEND_CLAIM,
            Fault.KEDA_IDENTITY_NOT_FEDERATED,
        )
        if faults.is_active(f)
    ]
    if not broken:
        return tenant
    copy = tenant.model_copy(deep=True)
    workload = copy.identity_named(WORKLOAD_IDENTITY)
    keda = copy.identity_named(KEDA_IDENTITY)
    for fault in broken:
        if fault is Fault.KEDA_IDENTITY_NOT_FEDERATED:
            if keda is not None:
                keda.federated_credentials = []
            continue
        if workload is None:
            continue
        for fic in workload.federated_credentials:
            if fault is Fault.WI_SUBJECT_MISMATCH:
                # The classic: the credential names the ServiceAccount in another namespace.
                ns_sa = fic.subject.removeprefix("system:serviceaccount:")
                fic.subject = "system:serviceaccount:default:" + ns_sa.partition(":")[2]
            elif fault is Fault.WI_ISSUER_MISMATCH:
                fic.issuer = fic.issuer.rstrip("/") if fic.issuer.endswith("/") else fic.issuer + "/"
            elif fault is Fault.WI_AUDIENCE_MISMATCH:
                fic.audiences = ["api://AzureADTokenExchange/"]
        if fault is Fault.KV_NO_ROLE:
            workload.role_assignments = [
                a for a in workload.role_assignments if a.role not in SECRET_READER_ROLES
            ]
        elif fault is Fault.SB_NO_SEND_CLAIM:
            workload.role_assignments = [a for a in workload.role_assignments if a.role not in SEND_ROLES]
        elif fault is Fault.KV_SECRET_MISSING:
            for vault in copy.key_vaults:
                vault.secrets.pop(faults.parameter(Fault.KV_SECRET_MISSING, "hf-token"), None)
    return copy
