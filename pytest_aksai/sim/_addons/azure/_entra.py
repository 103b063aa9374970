"""Simulated Entra ID: the token endpoint `POST /{tenant}/oauth2/v2.0/token` as `WorkloadIdentityCredential`
and `ClientAssertionCredential` call it (client credentials with a JWT-bearer client assertion).

The assertion is validated the way Entra validates a federated credential, in this order, each failure
answered with Entra's status, `error` and AADSTS text (docs: azure-wire.md A7): tenant (90002) → client id
(700016) → the issuer's OIDC discovery and JWKS, fetched over HTTPS (50166) → signing key (7000272) → time
range (700024) → no federated credential at all (70025) → federated credential issuer (700211) → subject (700213) → audience (700212), exact and
case-sensitive → the scope's resource (500011). A success is Entra's body with an access token: a JWT
signed by this simulated Entra with `aud`, `tid`, `oid`, `appid`, which the simulated resources verify.
"""

from __future__ import annotations

import json
import secrets
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from ._tenant import Tenant

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
RESOURCES = ("https://vault.azure.net", "https://servicebus.azure.net")
ACCESS_TOKEN_SECONDS = 86399


def _stamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _entra_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


@dataclass
class EntraError(Exception):
    status: int
    error: str
    code: int
    description: str


class SimEntra:
    """The token endpoint; `tenant()` is the current (fault-applied) tenant, `now()` cluster epoch seconds."""

    def __init__(
        self,
        tenant: Callable[[], Tenant],
        now: Callable[[], float],
        ca_pem: bytes,
        authority: Callable[[], str],
        time_scale: float = 1.0,
    ) -> None:
        self.tenant = tenant
        self.now = now
        self.authority = authority
        self.time_scale = time_scale
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = self._key.public_key()
        self._ssl = ssl.create_default_context(cadata=ca_pem.decode())
        self.app = web.Application()
        self.app.add_routes([web.post("/{tenant}/oauth2/v2.0/token", self._token)])
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def verify_access_token(self, token: str, resource: str) -> dict[str, Any]:
        """Claims of an access token this Entra issued for `resource`; raises jwt.PyJWTError otherwise."""
        claims: dict[str, Any] = jwt.decode(
            token,
            self.public_key,
            algorithms=["RS256"],
            audience=resource,
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
        if int(claims.get("exp", 0)) < self.now():
            raise jwt.ExpiredSignatureError("token has expired")
        return claims

    # ---- the endpoint -------------------------------------------------------------------------------
    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        try:
            body = await self._exchange(request.match_info["tenant"], {k: str(v) for k, v in form.items()})
        except EntraError as exc:
            return self._error(exc)
        return web.json_response(body)

    def _error(self, exc: EntraError) -> web.Response:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = _stamp(self.now())
        description = f"AADSTS{exc.code}: {exc.description} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {stamp}"
        body = {
            "error": exc.error,
            "error_description": description,
            "error_codes": [exc.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"{self.authority().rstrip('/')}/error?code={exc.code}",
        }
        return web.json_response(body, status=exc.status)

    async def _exchange(self, tenant_id: str, form: dict[str, str]) -> dict[str, Any]:
        tenant = self.tenant()
        if tenant_id != tenant.tenant_id:
            raise EntraError(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant_id}' not found. Check to make sure you have the correct tenant ID and are "
                "signing into the correct cloud. Check with your subscription administrator, this may happen "
                "if there are no active subscriptions for the tenant.",
            )
        if form.get("grant_type") != "client_credentials":
            raise EntraError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{form.get('grant_type', '')}'.",
            )
        if form.get("client_assertion_type") != JWT_BEARER or not form.get("client_assertion"):
            raise EntraError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        client_id = form.get("client_id", "")
        identity = tenant.identity(client_id)
        if identity is None:
            raise EntraError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant.tenant_id}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You may have sent "
                "your authentication request to the wrong tenant.",
            )
        assertion = form["client_assertion"]
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise EntraError(
                400,
                "invalid_request",
                50027,
                "JWT token is invalid or malformed.",
            ) from None
        issuer = str(unverified.get("iss", ""))
        keys = await self._issuer_keys(issuer)
        kid = str(header.get("kid", ""))
        key = keys.get(kid)
        if key is None:
            raise EntraError(
                401,
                "invalid_client",
                7000272,
                f"The certificate with identifier {kid} used to sign the federated credential could not be "
                f"found in the metadata of identity provider {issuer}. Please validate that your Identity "
                "Provider's metadata exposes the key used to sign the incoming token.",
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                key,
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError:
            raise EntraError(
                401,
                "invalid_client",
                7000274,
                "Key was found, but use of the key to verify the signature failed.",
            ) from None
        now = self.now()
        nbf, exp = float(claims.get("nbf", claims.get("iat", 0))), float(claims.get("exp", 0))
        if not nbf - 300 <= now <= exp + 300:
            raise EntraError(
                401,
                "invalid_client",
                700024,
                f"Client assertion is not within its valid time range. Current time: {_entra_time(now)}, "
                f"assertion valid from {_entra_time(nbf)}, expiry time of assertion {_entra_time(exp)}. Review "
                "the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
            )
        subject = str(claims.get("sub", ""))
        audiences = claims.get("aud") or []
        audiences = [audiences] if isinstance(audiences, str) else [str(a) for a in audiences]
        if not identity.federated_credentials:
            raise EntraError(
                400,
                "invalid_client",
                70025,
                f"The client '{identity.client_id}'({identity.name}) has no configured federated identity "
                "credentials.",
            )
        by_issuer = [f for f in identity.federated_credentials if f.issuer == issuer]
        if not by_issuer:
            raise EntraError(
                401,
                "invalid_client",
                700211,
                f"No matching federated identity record found for presented assertion issuer '{issuer}'. "
                "Please check your federated identity credential Subject, Audience and Issuer against the "
                "presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
            )
        by_subject = [f for f in by_issuer if f.subject == subject]
        if not by_subject:
            raise EntraError(
                401,
                "invalid_client",
                700213,
                f"No matching federated identity record found for presented assertion subject '{subject}'. "
                "Check your federated identity credential Subject, Audience and Issuer against the presented "
                "assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
            )
        if not any(set(f.audiences) & set(audiences) for f in by_subject):
            raise EntraError(
                401,
                "invalid_client",
                700212,
                f"No matching federated identity record found for presented assertion audience "
                f"'{', '.join(audiences)}'. Please check your federated identity credential Subject, Audience "
                "and Issuer against the presented assertion. "
                "https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
            )
        scope = form.get("scope", "")
        resource = scope.split(" ")[0].removesuffix("/.default").rstrip("/")
        if resource not in RESOURCES:
            raise EntraError(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named {tenant.tenant_id}. "
                "This can happen if the application has not been installed by the administrator of the "
                "tenant or consented to by any user in the tenant. You might have sent your authentication "
                "request to the wrong tenant.",
            )
        issued = int(now)
        access = jwt.encode(
            {
                "aud": resource,
                "iss": f"https://sts.windows.net/{tenant.tenant_id}/",
                "iat": issued,
                "nbf": issued,
                "exp": issued + ACCESS_TOKEN_SECONDS,
                "appid": identity.client_id,
                "oid": identity.principal_id,
                "sub": identity.principal_id,
                "tid": tenant.tenant_id,
                "idtyp": "app",
                "xms_mirid": f"/subscriptions/{tenant.subscription_id}/resourcegroups/{tenant.resource_group}"
                f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{identity.name}",
                "uti": secrets.token_urlsafe(16),
            },
            self._key,
            algorithm="RS256",
        )
        # Clients count expires_in in wall seconds, the resources check exp in cluster time.
        expires_in = max(1, int(ACCESS_TOKEN_SECONDS / self.time_scale))
        return {
            "token_type": "Bearer",
            "expires_in": expires_in,
            "ext_expires_in": expires_in,
            "access_token": access,
        }

    async def _issuer_keys(self, issuer: str) -> dict[str, Any]:
        """The issuer's signing keys, fetched as Entra does: discovery document, then its jwks_uri."""
        unreachable = EntraError(
            400, "invalid_request", 50166, f"Request to External OIDC endpoint failed. Issuer: '{issuer}'."
        )
        if not issuer.startswith("https://"):
            raise unreachable
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        try:
            discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
            async with self._session.get(discovery_url, ssl=self._ssl) as response:
                if response.status != 200:
                    raise unreachable
                discovery = json.loads(await response.text())
            async with self._session.get(str(discovery["jwks_uri"]), ssl=self._ssl) as response:
                if response.status != 200:
                    raise unreachable
                jwks = json.loads(await response.text())
        except (aiohttp.ClientError, OSError, ValueError, KeyError, TimeoutError):
            raise unreachable from None
        keys: dict[str, Any] = {}
        for jwk in jwks.get("keys") or []:
            try:
                keys[str(jwk.get("kid", ""))] = jwt.PyJWK.from_dict(jwk).key
            except jwt.PyJWTError:
                continue
        return keys
