"""The Workload Identity chain, one function per hop; each returns what it observed and never a secret
value or a token (lengths and hash prefixes only).

TokenRequest token → `token_claims` → `issuer_documents` (discovery and JWKS, as Entra fetches them) →
`exchange` (Entra ID, an AADSTS code mapped to the hop it means) → `read_secret` (Key Vault).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from pytest_aksai._public import public
from pytest_aksai.azure._target import AzureTarget, fingerprint

VAULT_SCOPE = "https://vault.azure.net/.default"
SERVICE_BUS_SCOPE = "https://servicebus.azure.net//.default"
_TRACE = re.compile(r"\s*Trace ID:.*$", re.DOTALL)


@public
@dataclass(frozen=True)
class TokenClaims:
    """The claims of a service-account token that matter to Entra, and the token's fingerprint."""

    issuer: str
    audiences: tuple[str, ...]
    subject: str
    lifetime_s: int
    key_id: str
    fingerprint: str
    problem: str = ""


def token_claims(token: str) -> TokenClaims:
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        return TokenClaims("", (), "", 0, "", fingerprint(token), problem=f"not a JWT: {exc}")
    aud = claims.get("aud") or []
    return TokenClaims(
        issuer=str(claims.get("iss", "")),
        audiences=(aud,) if isinstance(aud, str) else tuple(str(a) for a in aud),
        subject=str(claims.get("sub", "")),
        lifetime_s=int(claims.get("exp", 0)) - int(claims.get("iat", 0)),
        key_id=str(header.get("kid", "")),
        fingerprint=fingerprint(token),
    )


@public
@dataclass(frozen=True)
class IssuerDocuments:
    """What `<issuer>/.well-known/openid-configuration` and its `jwks_uri` answered."""

    discovery_url: str
    discovery_status: int | None
    issuer: str = ""
    """The `issuer` the discovery document names."""
    jwks_uri: str = ""
    jwks_status: int | None = None
    key_ids: tuple[str, ...] = ()
    problem: str = ""

    @property
    def reachable(self) -> bool:
        return self.discovery_status == 200 and self.jwks_status == 200


def issuer_documents(issuer: str, target: AzureTarget, timeout: float = 10.0) -> IssuerDocuments:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    with httpx.Client(verify=target.http_verify(), timeout=timeout, follow_redirects=True) as http:
        try:
            response = http.get(url)
        except httpx.HTTPError as exc:
            return IssuerDocuments(url, None, problem=f"{type(exc).__name__}: {exc}")
        if response.status_code != 200:
            return IssuerDocuments(url, response.status_code, problem=response.text[:200])
        try:
            document = response.json()
        except ValueError:
            return IssuerDocuments(url, 200, problem="the discovery document is not JSON")
        jwks_uri = str(document.get("jwks_uri", ""))
        observed = IssuerDocuments(url, 200, issuer=str(document.get("issuer", "")), jwks_uri=jwks_uri)
        try:
            keys = http.get(jwks_uri) if jwks_uri else None
        except httpx.HTTPError as exc:
            return _replace(observed, problem=f"{type(exc).__name__}: {exc}")
        if keys is None or keys.status_code != 200:
            status = None if keys is None else keys.status_code
            return _replace(observed, jwks_status=status, problem="no jwks_uri" if keys is None else "")
        try:
            ids = tuple(str(k.get("kid", "")) for k in keys.json().get("keys") or [])
        except ValueError:
            return _replace(observed, jwks_status=200, problem="the JWKS is not JSON")
        return _replace(observed, jwks_status=200, key_ids=ids)


def _replace(obs: IssuerDocuments, **changes: Any) -> IssuerDocuments:
    from dataclasses import replace

    return replace(obs, **changes)


@public
@dataclass(frozen=True)
class AadstsMeaning:
    hop: str
    fix: str


def _fic_fix(what: str, value: str) -> str:
    return (
        f"az identity federated-credential update --identity-name <identity> --resource-group <rg> "
        f"--name <credential> {what} {value!r}"
    )


def aadsts_meaning(code: int | None, claims: TokenClaims | None = None, client_id: str = "") -> AadstsMeaning:
    """Which hop an AADSTS code blames, and the fix."""
    iss = claims.issuer if claims else "<issuer>"
    sub = claims.subject if claims else "system:serviceaccount:<ns>:<sa>"
    meanings = {
        90002: AadstsMeaning(
            "tenant",
            "set the azure.workload.identity/tenant-id annotation (or [azure] tenant_id) to the tenant that "
            "holds the identity: az account show --query tenantId",
        ),
        700016: AadstsMeaning(
            "client id",
            f"the client id {client_id!r} is not an identity in the tenant: set the ServiceAccount's "
            "azure.workload.identity/client-id to `az identity show -g <rg> -n <identity> --query clientId -o tsv` "
            "(the client id, not the principal/object id)",
        ),
        50166: AadstsMeaning(
            "OIDC discovery",
            "Entra cannot fetch the issuer's discovery document or JWKS: enable and expose the OIDC issuer "
            "(az aks update -g <rg> -n <cluster> --enable-oidc-issuer) and make <issuer>/.well-known/"
            "openid-configuration publicly reachable",
        ),
        7000272: AadstsMeaning(
            "signing key",
            "the key that signed the token is not in the issuer's JWKS (keys rotated, JWKS stale): "
            "az aks oidc-issuer rotate-signing-keys, then restart the pods so they get new tokens",
        ),
        700024: AadstsMeaning(
            "token rotation",
            "the service-account token is expired or not yet valid: the kubelet rotates it at 80 % of its "
            "lifetime; the application must re-read AZURE_FEDERATED_TOKEN_FILE rather than cache it",
        ),
        700211: AadstsMeaning(
            "federated credential issuer",
            _fic_fix("--issuer", iss) + " (exactly the token's iss, trailing / included)",
        ),
        700213: AadstsMeaning("federated credential subject", _fic_fix("--subject", sub)),
        700212: AadstsMeaning(
            "federated credential audience", _fic_fix("--audiences", "api://AzureADTokenExchange")
        ),
        70021: AadstsMeaning(
            "federated credential",
            f"the identity has no federated credential with issuer {iss!r}, subject {sub!r} and audience "
            f"api://AzureADTokenExchange: "
            + _fic_fix("--issuer", iss)
            + f" --subject {sub!r} --audiences api://AzureADTokenExchange",
        ),
        70025: AadstsMeaning(
            "federated credential",
            f"the identity {client_id!r} has no federated credential: az identity federated-credential create "
            f"--name <name> --identity-name <identity> --resource-group <rg> --issuer {iss!r} --subject {sub!r} "
            "--audiences api://AzureADTokenExchange",
        ),
        500011: AadstsMeaning("scope", "the scope names a resource the tenant does not know"),
    }
    for alias, same in ((90061, 50166), (501661, 50166)):
        meanings[alias] = meanings[same]
    return meanings.get(code or 0, AadstsMeaning("Entra ID", "read the error description"))


@public
@dataclass(frozen=True)
class Exchange:
    """What Entra ID answered to the token exchange (never the access token: its fingerprint only)."""

    ok: bool
    scope: str
    error: str = ""
    code: int | None = None
    description: str = ""
    """Entra's error_description without its Trace/Correlation/Timestamp tail."""
    access_token: str = field(default="", repr=False)
    credential: Any = field(default=None, repr=False, compare=False)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.access_token) if self.access_token else ""

    def __str__(self) -> str:
        if self.ok:
            return f"access token for {self.scope} ({self.fingerprint})"
        return f"AADSTS{self.code}: {self.description}" if self.code else self.description


_BODY = re.compile(r"Content: (\{.*\})", re.DOTALL)
_CONDITION = re.compile(r"\s*Error condition: (amqp:[\w:-]+)\.?")


def exchange(
    target: AzureTarget,
    tenant_id: str,
    client_id: str,
    assertion: str | Callable[[], str],
    scope: str = VAULT_SCOPE,
) -> Exchange:
    """Exchange a service-account token for an Entra ID token, as the pod's SDK would. `assertion` may be a
    function returning a current token: the credential calls it for each new access token, as the SDK re-reads
    the kubelet-rotated token file."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError

    current = assertion if callable(assertion) else (lambda: assertion)
    credential = target.credential(tenant_id, client_id, current)
    try:
        token = credential.get_token(scope)
    except ClientAuthenticationError as exc:
        text = str(exc)
        body: dict[str, Any] = {}
        match = _BODY.search(text)
        if match:
            try:
                body = json.loads(match.group(1))
            except ValueError:
                body = {}
        codes = body.get("error_codes") or []
        description = _TRACE.sub("", str(body.get("error_description", "")))
        description = re.sub(r"^AADSTS\d+: ", "", description)
        return Exchange(
            False,
            scope,
            error=str(body.get("error", "")),
            code=int(codes[0]) if codes else None,
            description=description or text.splitlines()[0],
            credential=credential,
        )
    except (AzureError, ValueError, OSError) as exc:
        return Exchange(False, scope, description=f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    return Exchange(True, scope, access_token=token.token, credential=credential)


@public
@dataclass(frozen=True)
class SecretRead:
    """What Key Vault answered for one secret: status and error codes, or the value's fingerprint."""

    vault: str
    name: str
    status: int | None
    code: str = ""
    inner_code: str = ""
    message: str = ""
    """The first line of the service's message."""
    fingerprint: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200

    def __str__(self) -> str:
        if self.ok:
            return f"{self.vault}/{self.name} read ({self.fingerprint})"
        inner = f" ({self.inner_code})" if self.inner_code else ""
        return f"{self.vault}/{self.name} answered HTTP {self.status} {self.code}{inner}: {self.message}"


def read_secret(target: AzureTarget, vault: str, name: str, credential: Any) -> SecretRead:
    from azure.core.exceptions import AzureError, HttpResponseError

    client = target.secret_client(vault, credential)
    try:
        secret = client.get_secret(name)
    except HttpResponseError as exc:
        error = exc.error
        inner = getattr(error, "innererror", None) or {}
        message = str(getattr(error, "message", "") or exc.message or "").splitlines()
        return SecretRead(
            vault,
            name,
            exc.status_code,
            code=str(getattr(error, "code", "") or ""),
            inner_code=str(inner.get("code", "")) if isinstance(inner, dict) else "",
            message=message[0] if message else "",
        )
    except (AzureError, ValueError) as exc:
        return SecretRead(vault, name, None, message=f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    finally:
        client.close()
    return SecretRead(vault, name, 200, fingerprint=fingerprint(secret.value or ""))


@public
@dataclass(frozen=True)
class QueueSend:
    """What Service Bus answered to sending one probe message to a queue."""

    namespace: str
    queue: str
    ok: bool
    error: str = ""
    condition: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"sent a probe message to {self.namespace}/{self.queue}"
        return f"{self.namespace}/{self.queue}: {self.error}"


def send_probe(target: AzureTarget, namespace: str, queue: str, credential: Any, run_id: str) -> QueueSend:
    """Send one small message (application property `aksai-run`, a one-minute time to live) to the queue,
    as a workload's sender would."""
    from datetime import timedelta

    from azure.servicebus import ServiceBusMessage
    from azure.servicebus.exceptions import ServiceBusError

    fqdn = namespace if "." in namespace else f"{namespace}.servicebus.windows.net"
    try:
        client = target.service_bus_client(fqdn, credential, retry_total=1)
        with client, client.get_queue_sender(queue) as sender:
            sender.send_messages(
                ServiceBusMessage(
                    "pytest-aksai identity probe",
                    application_properties={"aksai-run": run_id},
                    time_to_live=timedelta(minutes=1),
                )
            )
    except ServiceBusError as exc:
        text = str(exc).splitlines()[0]
        condition = getattr(getattr(exc, "condition", None), "value", b"") or b""
        named = _CONDITION.search(text)
        if isinstance(condition, bytes):
            condition = condition.decode(errors="replace")
        if not condition and named:
            condition = named.group(1)
        return QueueSend(fqdn, queue, False, error=_CONDITION.sub("", text).strip(), condition=str(condition))
    return QueueSend(fqdn, queue, True)


@public
@dataclass(frozen=True)
class SecretMount:
    """What a probe pod that mounts a ServiceAccount's SecretProviderClasses saw: whether it started, the
    kubelet's FailedMount text otherwise, and per class the mounted files' fingerprints (never the values)
    and the keys of the Secrets synced from its `secretObjects` while the pod mounts it."""

    pod: str
    started: bool
    failure: str = ""
    files: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """SecretProviderClass ref → file name → fingerprint (length and hash prefix)."""
    synced: Mapping[str, list[str] | None] = field(default_factory=dict)
    """Secret name → its data keys (None: the Secret does not exist)."""


@public
@dataclass(frozen=True)
class TokenRotation:
    """Whether the kubelet replaced a probe pod's projected service-account token in time."""

    pod: str
    lifetime_s: int
    """The token's lifetime (cluster seconds)."""
    rotated: bool
    waited_s: float
    """Cluster seconds from the first read to the first new token (or to the deadline)."""
    first: str = ""
    """Fingerprint of the first token (never the token)."""
    last: str = ""
    problem: str = ""


@public
@dataclass(frozen=True)
class QueueDepth:
    """What the Service Bus management API answered to `get_queue_runtime_properties` (KEDA's read)."""

    namespace: str
    queue: str
    ok: bool
    active: int | None = None
    status: int | None = None
    error: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"{self.namespace}/{self.queue}: {self.active} active message(s)"
        return (
            f"{self.namespace}/{self.queue}: " + (f"HTTP {self.status} " if self.status else "") + self.error
        )


def queue_depth(target: AzureTarget, namespace: str, queue: str, credential: Any) -> QueueDepth:
    """The queue's active message count through `ServiceBusAdministrationClient`, as KEDA's scaler reads
    it (the ATOM management API)."""
    from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError

    fqdn = namespace if "." in namespace else f"{namespace}.servicebus.windows.net"
    client = target.admin_client(fqdn, credential)
    try:
        with client:
            properties = client.get_queue_runtime_properties(queue)
    except ResourceNotFoundError as exc:
        return QueueDepth(fqdn, queue, False, status=404, error=str(exc.message or exc).splitlines()[0])
    except HttpResponseError as exc:
        text = re.sub(r"\s+", " ", str(exc.message or exc)).strip()
        try:
            detail = _DETAIL.search(exc.response.text() if exc.response is not None else "")
        except (AttributeError, ValueError):
            detail = None
        if detail:
            text = detail.group(1).strip()
        return QueueDepth(fqdn, queue, False, status=exc.status_code, error=_TRACKING.sub("", text)[:400])
    except (AzureError, ValueError, OSError) as exc:
        return QueueDepth(fqdn, queue, False, error=f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    return QueueDepth(fqdn, queue, True, active=int(properties.active_message_count or 0))


_TRACKING = re.compile(r"\s*TrackingId:[^,<]*,?")
_DETAIL = re.compile(r"<Detail>(.*?)</Detail>", re.DOTALL)


@public
@dataclass(frozen=True)
class KedaIdentity:
    """One `azure-workload` (Cluster)TriggerAuthentication walked as the KEDA operator walks it: the
    operator's ServiceAccount token → the Entra exchange as `identityId` (else the ServiceAccount's client-id
    annotation) → the queue-depth read of each queue its ScaledObjects name."""

    trigger_authentication: str
    """`TriggerAuthentication <ns>/<name>` or `ClusterTriggerAuthentication <name>`."""
    operator: str
    """The operator's ServiceAccount, `<ns>/<name>`."""
    operator_source: str
    """Where the ServiceAccount was found (the operator Deployment, or KEDA's default)."""
    client_id: str
    client_id_source: str
    tenant_id: str
    subject: str = ""
    issuer: str = ""
    exchange: Exchange | None = None
    queues: tuple[QueueDepth, ...] = ()
    problem: str = ""
    """A hop that failed before Entra (no client id, no token)."""
