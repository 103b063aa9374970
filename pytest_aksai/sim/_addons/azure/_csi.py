"""The Secrets Store CSI driver (`secrets-store.csi.k8s.io`) with the Azure Key Vault provider, in
workload-identity mode, as the AKS add-on `azure-keyvault-secrets-provider` runs it.

On NodePublishVolume the driver reads the pod's SecretProviderClass (`volumeAttributes.secretProviderClass`)
and hands the provider its parameters and the pod's service-account token for `api://AzureADTokenExchange`
(the CSIDriver's tokenRequests). The provider exchanges that token at Entra ID as the class's **`clientID`**
(the ServiceAccount's annotation and the pod label play no part), reads each object from the vault over
HTTPS, and the driver mounts the files (named by `objectAlias`, else `objectName`). `secretObjects` are
synced to Secrets labelled `secrets-store.csi.k8s.io/managed=true` while at least one pod mounts the class
and deleted when the last one goes. Every failure is the driver's and provider's text (azure-wire.md E4),
which the kubelet shows in a `FailedMount` event.
"""

from __future__ import annotations

import base64
import contextlib
import json
import ssl
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import yaml

from pytest_aksai.sim._apiserver import ApiError, Store
from pytest_aksai.sim._core._csi import TOKENS_ATTRIBUTE, CsiMountError

from ._entra import JWT_BEARER

DRIVER = "secrets-store.csi.k8s.io"
GROUP_VERSION = "secrets-store.csi.x-k8s.io/v1"
MANAGED_LABEL = "secrets-store.csi.k8s.io/managed"
EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
_RULE = "-" * 80


def _describe_response(method: str, url: str, status: int, reason: str, body: str, code: str = "") -> str:
    """An azcore ResponseError, as the Go SDK renders it."""
    lines = [f"{method} {url}", _RULE, f"RESPONSE {status}: {status} {reason}"]
    if code:
        lines.append(f"ERROR CODE: {code}")
    lines += [_RULE, body, _RULE]
    return "\n".join(lines)


class SecretsStoreAzure:
    """The CSI node plugin; `vault_url(name)` is the simulated vault's URL (None: no such vault)."""

    token_audiences = (EXCHANGE_AUDIENCE, "api://AKSIdentityBinding")

    def __init__(
        self,
        store: Store,
        ca_pem: bytes,
        authority: Callable[[], str],
        vault_url: Callable[[str], str | None],
    ) -> None:
        self.store = store
        self.authority = authority
        self.vault_url = vault_url
        self._ssl = ssl.create_default_context(cadata=ca_pem.decode())
        self._session: aiohttp.ClientSession | None = None
        self._mounts: dict[tuple[str, str], set[str]] = {}
        """(namespace, SecretProviderClass) → uids of the pods that mount it."""
        self._volumes: dict[tuple[str, str], str] = {}
        """(pod uid, volume) → the SecretProviderClass it mounted."""
        self._synced: dict[tuple[str, str], set[str]] = {}
        """(namespace, SecretProviderClass) → the Secrets synced from it."""

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl), timeout=aiohttp.ClientTimeout(total=10)
            )
        return self._session

    # ---- NodePublishVolume ---------------------------------------------------------------------------
    async def publish(
        self, pod: dict[str, Any], volume: dict[str, Any], attributes: Mapping[str, str]
    ) -> dict[str, bytes]:
        meta = pod["metadata"]
        namespace, pod_name = str(meta["namespace"]), str(meta["name"])
        spc_name = attributes.get("secretProviderClass", "")
        if not spc_name:
            raise CsiMountError("secretProviderClass is not set")
        spc_rt = self.store.storage_type("secrets-store.csi.x-k8s.io", "secretproviderclasses")
        spc = None if spc_rt is None else self.store.try_get(spc_rt, spc_name, namespace)
        if spc is None:
            raise CsiMountError(
                f"failed to get secretproviderclass {namespace}/{spc_name}, error: "
                f'secretproviderclasses.secrets-store.csi.x-k8s.io "{spc_name}" not found'
            )
        spec = spc.get("spec") or {}
        prefix = (
            f"failed to mount secrets store objects for pod {namespace}/{pod_name}, err: rpc error: code = "
            "Unknown desc = failed to mount objects, error: "
        )
        if spec.get("provider") != "azure":
            raise CsiMountError(
                f"failed to mount secrets store objects for pod {namespace}/{pod_name}, err: provider not "
                f'found: provider "{spec.get("provider", "")}"'
            )
        files = await self._provider(spec.get("parameters") or {}, attributes, prefix)
        self._mounts.setdefault((namespace, spc_name), set()).add(str(meta.get("uid")))
        self._volumes[(str(meta.get("uid")), str(volume.get("name")))] = spc_name
        self._synced.setdefault((namespace, spc_name), set()).update(self._sync(namespace, spc, files))
        return files

    async def _provider(
        self, params: Mapping[str, Any], attributes: Mapping[str, str], prefix: str
    ) -> dict[str, bytes]:
        vault = str(params.get("keyvaultName") or "")
        if not vault:
            raise CsiMountError(prefix + "keyvaultName is not provided")
        tenant = str(params.get("tenantID") or params.get("tenantId") or "")
        if not tenant:
            raise CsiMountError(prefix + "tenantId is not provided")
        client_id = str(params.get("clientID") or "")
        if not client_id:
            raise CsiMountError(
                prefix
                + "failed to create auth config, error: failed to get credentials, nodePublishSecretRef "
                "secret is not set"
            )
        raw_objects = str(params.get("objects") or "")
        if not raw_objects.strip():
            raise CsiMountError(prefix + "objects is not set")
        try:
            array = (yaml.safe_load(raw_objects) or {}).get("array") or []
            objects = [yaml.safe_load(item) if isinstance(item, str) else item for item in array]
        except (yaml.YAMLError, AttributeError) as exc:
            raise CsiMountError(prefix + f"failed to yaml unmarshal objects, error: {exc}") from None
        try:
            tokens = json.loads(attributes.get(TOKENS_ATTRIBUTE) or "{}")
        except ValueError:
            tokens = {}
        if not tokens:
            raise CsiMountError(prefix + "service account tokens not found")
        assertion = str((tokens.get(EXCHANGE_AUDIENCE) or {}).get("token") or "")
        if not assertion:
            raise CsiMountError(prefix + f"token for audience {EXCHANGE_AUDIENCE} not found")
        base = self.vault_url(vault)
        access: str | None = None
        files: dict[str, bytes] = {}
        for item in objects:
            name = str((item or {}).get("objectName") or "")
            kind = str((item or {}).get("objectType") or "secret")
            version = str((item or {}).get("objectVersion") or "")
            wrap = f"{prefix}failed to get objectType:{kind}, objectName:{name}, objectVersion:{version}: "
            if base is None:
                url = f"https://{vault}.vault.azure.net/secrets/{name}/{version}"
                raise CsiMountError(
                    f'{wrap}Get "{url}?api-version=7.4": dial tcp: lookup {vault}.vault.azure.net on '
                    "10.0.0.10:53: no such host"
                )
            if access is None:
                access = await self._exchange(tenant, client_id, assertion, wrap)
            value = await self._get_secret(base, name, version, access, wrap)
            encoding = str((item or {}).get("objectEncoding") or "utf-8").lower()
            data = value.encode()
            if encoding == "base64":
                data = base64.b64decode(value)
            elif encoding == "hex":
                data = bytes.fromhex(value)
            files[str((item or {}).get("objectAlias") or name)] = data
        return files

    async def _exchange(self, tenant: str, client_id: str, assertion: str, wrap: str) -> str:
        url = f"{self.authority().rstrip('/')}/{tenant}/oauth2/v2.0/token"
        form = {
            "client_id": client_id,
            "client_assertion": assertion,
            "client_assertion_type": JWT_BEARER,
            "grant_type": "client_credentials",
            "scope": "https://vault.azure.net/.default",
        }
        try:
            async with self._http().post(url, data=form) as response:
                body = await response.text()
                status, reason = response.status, response.reason or ""
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CsiMountError(f"{wrap}ClientAssertionCredential authentication failed: {exc}") from None
        if status != 200:
            raise CsiMountError(
                f"{wrap}ClientAssertionCredential authentication failed\n"
                + _describe_response("POST", url, status, reason, body)
                + "\nTo troubleshoot, visit https://aka.ms/azsdk/go/identity/troubleshoot#client-assertion"
            )
        return str(json.loads(body).get("access_token", ""))

    async def _get_secret(self, base: str, name: str, version: str, access: str, wrap: str) -> str:
        url = f"{base.rstrip('/')}/secrets/{name}/{version}"
        try:
            async with self._http().get(
                url, params={"api-version": "7.4"}, headers={"Authorization": f"Bearer {access}"}
            ) as response:
                body = await response.text()
                status, reason = response.status, response.reason or ""
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CsiMountError(f"{wrap}{exc}") from None
        if status != 200:
            try:
                code = str(json.loads(body).get("error", {}).get("code", ""))
            except (ValueError, AttributeError):
                code = ""
            raise CsiMountError(wrap + _describe_response("GET", url, status, reason, body, code))
        return str(json.loads(body).get("value", ""))

    # ---- secretObjects ----------------------------------------------------------------------------------
    def _sync(self, namespace: str, spc: dict[str, Any], files: Mapping[str, bytes]) -> set[str]:
        secrets_rt = self.store.resource("v1", "secrets")
        synced: set[str] = set()
        for wanted in (spc.get("spec") or {}).get("secretObjects") or []:
            name = str(wanted.get("secretName") or "")
            if not name:
                continue
            data = {
                str(d.get("key")): base64.b64encode(files[str(d.get("objectName"))]).decode()
                for d in wanted.get("data") or []
                if str(d.get("objectName")) in files
            }
            body = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {**(wanted.get("labels") or {}), MANAGED_LABEL: "true"},
                    **({"annotations": wanted["annotations"]} if wanted.get("annotations") else {}),
                },
                "type": str(wanted.get("type") or "Opaque"),
                "data": data,
            }
            existing = self.store.try_get(secrets_rt, name, namespace)
            if existing is None:
                self.store.create(secrets_rt, body)
            elif ((existing.get("metadata") or {}).get("labels") or {}).get(MANAGED_LABEL) == "true":
                if existing.get("data") != data:
                    existing["data"] = data
                    self.store.update(secrets_rt, existing)
            else:
                continue  # a Secret the driver did not create is never taken over
            synced.add(name)
        return synced

    # ---- NodeUnpublishVolume -------------------------------------------------------------------------
    def unpublish(self, pod: dict[str, Any], volume_name: str) -> None:
        meta = pod["metadata"]
        namespace, uid = str(meta["namespace"]), str(meta.get("uid"))
        spc_name = self._volumes.pop((uid, volume_name), None)
        if spc_name is None:
            return
        mounting = self._mounts.get((namespace, spc_name), set())
        mounting.discard(uid)
        if mounting:
            return
        self._mounts.pop((namespace, spc_name), None)
        secrets_rt = self.store.resource("v1", "secrets")
        for name in sorted(self._synced.pop((namespace, spc_name), set())):
            existing = self.store.try_get(secrets_rt, name, namespace)
            if (
                existing
                and ((existing.get("metadata") or {}).get("labels") or {}).get(MANAGED_LABEL) == "true"
            ):
                with contextlib.suppress(ApiError):
                    self.store.delete(secrets_rt, name, namespace)
