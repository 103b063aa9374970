"""A simulated Key Vault's secrets data plane, as `azure-keyvault-secrets` calls it (azure-wire.md C).

`GET /secrets/{name}[/{version}]` (the SDK sends `/secrets/{name}/` when no version is given), any
api-version. Without a bearer token: 401 with the `WWW-Authenticate` challenge whose tenant drives the SDK's
challenge authentication. A token that is not this Entra's for `https://vault.azure.net`: 401. A caller
without a secrets role on the vault: 403 `ForbiddenByRbac` with Key Vault's message. An unknown secret: 404
`SecretNotFound`. Otherwise the secret bundle.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

import jwt
from aiohttp import web

from ._entra import SimEntra
from ._tenant import SECRET_READER_ROLES, Tenant

RESOURCE = "https://vault.azure.net"


def _error(status: int, code: str, message: str, inner: str | None = None, **headers: str) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return web.json_response({"error": error}, status=status, headers=headers)


def secret_version(vault: str, name: str, value: str) -> str:
    return hashlib.sha256(f"{vault}/{name}/{value}".encode()).hexdigest()[:32]


class SimKeyVault:
    def __init__(
        self,
        name: str,
        region: str,
        tenant: Callable[[], Tenant],
        entra: SimEntra,
        url: Callable[[], str],
    ) -> None:
        self.name = name
        self.region = region
        self.tenant = tenant
        self.entra = entra
        self.url = url
        self.app = web.Application()
        self.app.add_routes(
            [
                web.get("/secrets/{name}", self._get),
                web.get("/secrets/{name}/", self._get),
                web.get("/secrets/{name}/{version}", self._get),
            ]
        )

    async def _get(self, request: web.Request) -> web.Response:
        tenant = self.tenant()
        headers = {
            "x-ms-keyvault-region": self.region,
            "x-ms-request-id": str(uuid.uuid4()),
            "x-ms-keyvault-service-version": "1.9.2164.1",
        }
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        challenge = f'Bearer authorization="https://login.microsoftonline.com/{tenant.tenant_id}", resource="{RESOURCE}"'
        if not token:
            return _error(
                401,
                "Unauthorized",
                "AKV10000: Request is missing a Bearer or PoP token.",
                **headers,
                **{"WWW-Authenticate": challenge},
            )
        try:
            claims = self.entra.verify_access_token(token, RESOURCE)
        except jwt.InvalidAudienceError:
            return _error(
                401,
                "Unauthorized",
                f"AKV10022: Invalid audience. Expected {RESOURCE}, found: "
                f"{jwt.decode(token, options={'verify_signature': False}).get('aud')}.",
                **headers,
                **{"WWW-Authenticate": challenge},
            )
        except jwt.ExpiredSignatureError:
            return _error(
                401, "Unauthorized", "AKV10032: Token expired.", **headers, **{"WWW-Authenticate": challenge}
            )
        except jwt.PyJWTError:
            return _error(
                401,
                "Unauthorized",
                "AKV10024: Signature validation failed.",
                **headers,
                **{"WWW-Authenticate": challenge},
            )
        secret = request.match_info["name"]
        caller = f"appid={claims.get('appid')};oid={claims.get('oid')};iss={claims.get('iss')}"
        identity = next((i for i in tenant.identities if i.principal_id == claims.get("oid")), None)
        vault = tenant.vault(self.name)
        if identity is None or not identity.has_role(SECRET_READER_ROLES, self.name):
            resource = (
                f"/subscriptions/{tenant.subscription_id}/resourcegroups/{tenant.resource_group}"
                f"/providers/microsoft.keyvault/vaults/{self.name}/secrets/{secret}"
            ).lower()
            message = (
                "Caller is not authorized to perform action on resource.\r\n"
                "If role assignments, deny assignments or role definitions were changed recently, please "
                "observe propagation time.\r\n"
                f"Caller: {caller}\r\n"
                "Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\n"
                f"Resource: '{resource}'\r\n"
                "Assignment: (not found)\r\n"
                "DenyAssignmentId: null\r\n"
                "DecisionReason: 'DeniedWithNoValidRBAC' \r\n"
                f"Vault: {self.name};location={self.region}\r\n"
            )
            return _error(403, "Forbidden", message, "ForbiddenByRbac", **headers)
        value = None if vault is None else vault.secrets.get(secret)
        if value is None:
            return _error(
                404,
                "SecretNotFound",
                f"A secret with (name/id) {secret} was not found in this key vault. If you recently deleted "
                "this secret you may be able to recover it using the correct recovery command. For help "
                "resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
                **headers,
            )
        version = secret_version(self.name, secret, value)
        wanted = request.match_info.get("version")
        if wanted and wanted != version:
            return _error(
                404,
                "SecretNotFound",
                f"A secret with (name/id) {secret}/{wanted} was not found in this key vault. If you recently "
                "deleted this secret you may be able to recover it using the correct recovery command. For "
                "help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
                **headers,
            )
        created = 1767225600
        return web.json_response(
            {
                "value": value,
                "id": f"{self.url().rstrip('/')}/secrets/{secret}/{version}",
                "attributes": {
                    "enabled": True,
                    "created": created,
                    "updated": created,
                    "recoveryLevel": "Recoverable+Purgeable",
                    "recoverableDays": 90,
                },
                "tags": {},
            },
            headers=headers,
        )
