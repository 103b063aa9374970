"""KEDA's `azure-servicebus` scaler (`pkg/scalers/azure_servicebus_scaler.go`) with `podIdentity.provider:
azure-workload`, over the same wire hops as real KEDA: the trigger's TriggerAuthentication (or
ClusterTriggerAuthentication) is resolved; the KEDA operator's **own** ServiceAccount token (as the Workload
Identity webhook projects it into the operator pod) is exchanged at the simulated Entra ID for a Service Bus
token as `identityId` (else the operator pod's `AZURE_CLIENT_ID`, which the webhook takes from its
ServiceAccount's client-id annotation); the queue's
`CountDetails/ActiveMessageCount` is read from the simulated namespace's ATOM management API over HTTPS. Entra ID
validates the federated credential and the namespace the role, so a broken hop fails as on AKS (AADSTS700213
when the identity is not federated for the operator, `Manage,EntityRead claims required` without a role, `queue
<q> doesn't exist` for an unknown queue): the error blocks scale-to-zero and shows as `Ready=False/TriggerError`
with a `KEDAScalerFailed` event — never a silent zero.

Where the endpoints are is the azure add-on's advertisement (`kube-system/aksai-sim`, key `azure`): the token
endpoint (`authorityHost`) and, per namespace, the host:port playing `<namespace>.servicebus.windows.net`.
"""

from __future__ import annotations

import json
import ssl
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

import aiohttp

from pytest_aksai.sim._addons.keda._scalers import Reading, Scaler, ScalerError
from pytest_aksai.sim.contract import KEY_AZURE, SIM_CONFIGMAP, SIM_NAMESPACE

SERVICEBUS_SCOPE = "https://servicebus.azure.net//.default"
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
OPERATOR = "keda-operator"
ATOM_API_VERSION = "2017-04"  # what the Go admin client KEDA pins sends
CLOUD_SUFFIXES = {
    "AzurePublicCloud": "servicebus.windows.net",
    "AzureUSGovernmentCloud": "servicebus.usgovcloudapi.net",
    "AzureChinaCloud": "servicebus.chinacloudapi.cn",
}
_COUNTS_NS = "http://schemas.microsoft.com/netservices/2011/06/servicebus"
_TROUBLESHOOT = "To troubleshoot, visit https://aka.ms/azsdk/go/identity/troubleshoot#workload"


def _int(metadata: Mapping[str, str], key: str, default: int) -> int:
    raw = metadata.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ScalerError(
            f"error parsing azure service bus metadata: unable to set param {key!r} value {raw!r}: "
            "invalid syntax"
        ) from None


class AzureServiceBusScaler(Scaler):
    type_name = "azure-servicebus"

    def __init__(self, ctx: Any, namespace: str, index: int, metadata: Mapping[str, str]) -> None:
        super().__init__(ctx, namespace, index, metadata)
        meta = self.metadata
        self.queue = meta.get("queueName", "")
        topic, subscription = meta.get("topicName", ""), meta.get("subscriptionName", "")
        if self.queue and subscription:
            raise ScalerError(
                "error parsing azure service bus metadata: subscription name provided with queue name"
            )
        if self.queue and topic:
            raise ScalerError(
                "error parsing azure service bus metadata: both topic and queue name metadata provided"
            )
        if topic:
            # Topics and regex entity names are KEDA's too, but no simulated namespace serves them yet.
            raise ScalerError("the simulated Service Bus serves queues only (topicName given)")
        if not self.queue:
            raise ScalerError("error parsing azure service bus metadata: no service bus entity type set")
        if meta.get("useRegex", "").lower() == "true":
            raise ScalerError("the simulated Service Bus does not list queues (useRegex: true)")
        self.message_count = _int(meta, "messageCount", 5)
        self.activation = _int(meta, "activationMessageCount", 0)
        self._token: tuple[str, float] | None = None
        """The cached access token and its expiry (cluster epoch seconds), as azidentity caches it."""
        self._ssl = (
            ssl.create_default_context(cadata=ctx.ca_pem.decode()) if getattr(ctx, "ca_pem", b"") else None
        )

    def scaler_metric_name(self) -> str:
        return f"azure-servicebus-{self.queue}"

    @property
    def target(self) -> float:
        return float(self.message_count)

    # ---- TriggerAuthentication ---------------------------------------------------------------------------
    def _auth_spec(self) -> Mapping[str, Any]:
        ref = self.authentication_ref
        if not ref:
            return {}
        name, kind = str(ref.get("name") or ""), str(ref.get("kind") or "TriggerAuthentication")
        store = self.ctx.store
        if kind == "TriggerAuthentication":
            rt = store.resource("keda.sh/v1alpha1", "triggerauthentications")
            found = store.try_get(rt, name, self.namespace)
            plural = "triggerauthentications"
        elif kind == "ClusterTriggerAuthentication":
            rt = store.resource("keda.sh/v1alpha1", "clustertriggerauthentications")
            found = store.try_get(rt, name)
            plural = "clustertriggerauthentications"
        else:
            raise ScalerError(f"error resolving auth params: unknown trigger auth kind {kind}")
        if found is None:
            raise ScalerError(f'error resolving auth params: {plural}.keda.sh "{name}" not found')
        return dict(found.get("spec") or {})

    def _operator_pod(self) -> Mapping[str, Any] | None:
        """A running KEDA operator pod (of the `keda-operator` Deployment): whose env and token the scaler uses."""
        store = self.ctx.store
        for deployment in store.list(store.resource("apps/v1", "deployments")):
            if deployment["metadata"]["name"] != OPERATOR:
                continue
            namespace = deployment["metadata"]["namespace"]
            selector = (((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels")) or {}
            for pod in store.list(store.resource("v1", "pods"), namespace):
                meta = pod["metadata"]
                labels = meta.get("labels") or {}
                if (
                    selector
                    and all(labels.get(k) == v for k, v in selector.items())
                    and not meta.get("deletionTimestamp")
                    and (pod.get("status") or {}).get("phase") == "Running"
                ):
                    return dict(pod)
        return None

    def _advertised(self) -> dict[str, Any]:
        store = self.ctx.store
        cm = store.try_get(store.resource("v1", "configmaps"), SIM_CONFIGMAP, SIM_NAMESPACE) or {}
        try:
            return dict(json.loads((cm.get("data") or {}).get(KEY_AZURE) or "{}"))
        except ValueError:
            return {}

    # ---- the read --------------------------------------------------------------------------------------------
    async def read(self) -> Reading:
        auth = self._auth_spec()
        identity = dict(auth.get("podIdentity") or {})
        provider = str(identity.get("provider") or "")
        if provider in ("", "none"):
            if not (self.metadata.get("connection") or self.metadata.get("connectionFromEnv")):
                raise ScalerError("error parsing azure service bus metadata: no connection setting given")
            raise ScalerError(
                "the simulated Service Bus accepts Entra ID tokens only (a connection string was given)"
            )
        if provider != "azure-workload":
            raise ScalerError(f"azure service bus doesn't support pod identity {provider}")
        namespace = self.metadata.get("namespace", "")
        if not namespace:
            raise ScalerError("namespace are required when using pod identity")
        cloud = self.metadata.get("cloud") or "AzurePublicCloud"
        suffix = (
            self.metadata.get("endpointSuffix") if cloud.lower() == "private" else CLOUD_SUFFIXES.get(cloud)
        )
        if not suffix:
            raise ScalerError(f"{cloud} is not a valid cloud")
        fqdn = f"{namespace}.{suffix}"
        advertised = self._advertised()
        token = await self._access_token(identity, advertised)
        bus = (advertised.get("serviceBus") or {}).get(namespace) or {}
        address = bus.get("fullyQualifiedNamespace") if suffix == CLOUD_SUFFIXES["AzurePublicCloud"] else None
        url = f"https://{fqdn}/{self.queue}?api-version={ATOM_API_VERSION}"
        if not address:
            raise ScalerError(f'Get "{url}": dial tcp: lookup {fqdn}: no such host')
        status, body = await self._get(
            f"https://{address}/{self.queue}?api-version={ATOM_API_VERSION}",
            {"Authorization": f"Bearer {token}", "Accept": "application/xml"},
            url,
        )
        if status != 200:
            raise ScalerError(f"GET {url} RESPONSE {status}: {' '.join(body.split())}")
        count = _active_count(body)
        if count is None:
            raise ScalerError(f"queue {self.queue} doesn't exist")
        return Reading(float(count), count > self.activation)

    async def _access_token(self, identity: Mapping[str, Any], advertised: Mapping[str, Any]) -> str:
        now = float(self.ctx.clock.epoch_seconds())
        if self._token is not None and self._token[1] - 300 > now:
            return self._token[0]
        pod = self._operator_pod()
        spec = (pod or {}).get("spec") or {}
        env = {
            str(e.get("name")): str(e.get("value", ""))
            for c in spec.get("containers") or []
            for e in c.get("env") or []
            if "value" in e
        }
        client_id = str(identity.get("identityId") or env.get("AZURE_CLIENT_ID") or "")
        tenant_id = str(identity.get("identityTenantId") or env.get("AZURE_TENANT_ID") or "")
        authority = str(
            identity.get("identityAuthorityHost")
            or env.get("AZURE_AUTHORITY_HOST")
            or advertised.get("authorityHost")
            or ""
        )
        if not client_id:
            raise ScalerError(
                "WorkloadIdentityCredential: no client ID specified. Check pod configuration or set ClientID in "
                "the options"
            )
        if pod is None or not env.get("AZURE_FEDERATED_TOKEN_FILE") or self.ctx.store.tokens is None:
            # The operator pod was not mutated by the Workload Identity webhook (no pod label): no token file.
            raise ScalerError(
                "WorkloadIdentityCredential: no token file specified. Check pod configuration or set "
                "TokenFilePath in the options"
            )
        account = str(spec.get("serviceAccountName") or "default")
        namespace = pod["metadata"]["namespace"]
        sa = (
            self.ctx.store.try_get(self.ctx.store.resource("v1", "serviceaccounts"), account, namespace) or {}
        )
        # What the kubelet writes to the projected token file (audience api://AzureADTokenExchange).
        assertion, _ = self.ctx.store.tokens.issue(
            namespace,
            account,
            str((sa.get("metadata") or {}).get("uid", "")),
            [TOKEN_EXCHANGE_AUDIENCE],
            3600,
            {"kind": "Pod", "name": pod["metadata"]["name"], "uid": pod["metadata"].get("uid", "")},
        )
        endpoint = f"{authority.rstrip('/')}/{tenant_id}/oauth2/v2.0/token"
        form = {
            "client_id": client_id,
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
            "scope": SERVICEBUS_SCOPE,
        }
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
                session.post(endpoint, data=form, ssl=self._ssl or True) as response,
            ):
                body = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ScalerError(
                f"WorkloadIdentityCredential authentication failed. POST {endpoint}: {exc}"
            ) from None
        if status != 200:
            try:
                error = json.loads(body)
                said = f"{error.get('error', '')}: {error.get('error_description', '')}"
            except ValueError:
                said = body.strip()
            raise ScalerError(
                f"WorkloadIdentityCredential authentication failed. POST {endpoint} RESPONSE {status}: {said} "
                f"{_TROUBLESHOOT}"
            )
        payload = json.loads(body)
        token = str(payload["access_token"])
        self._token = (token, now + float(payload.get("expires_in", 3600)) * self.ctx.clock.time_scale)
        return token

    async def _get(self, address: str, headers: Mapping[str, str], shown: str) -> tuple[int, str]:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
                session.get(address, headers=dict(headers), ssl=self._ssl or True) as response,
            ):
                return response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ScalerError(f'Get "{shown}": {exc}') from None


def _active_count(body: str) -> int | None:
    """`CountDetails/ActiveMessageCount` of an ATOM queue entry; None for the empty feed of a missing queue."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    found = root.find(f".//{{{_COUNTS_NS}}}ActiveMessageCount")
    return int(found.text or 0) if found is not None else None
