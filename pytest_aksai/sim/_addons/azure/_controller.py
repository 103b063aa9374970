"""The simulated Azure: starts the HTTPS endpoints (OIDC issuer, Entra ID, one Key Vault per vault),
registers the Workload Identity webhook, keeps the tenant in step with `kube-system/aksai-sim-azure`, and
plays the faults that break Kubernetes objects (the label on the ServiceAccount, a missing client-id).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import uuid
from typing import Any

from aiohttp import web

from pytest_aksai.sim import contract
from pytest_aksai.sim._apiserver import ApiError
from pytest_aksai.sim._core._framework import Controller, Watch
from pytest_aksai.sim._scenarios import load_scenario
from pytest_aksai.sim.contract import Fault

from ._csi import DRIVER, SecretsStoreAzure
from ._entra import SimEntra
from ._keyvault import SimKeyVault
from ._servicebus import SimServiceBus
from ._tenant import KEDA_IDENTITY, Tenant, TenantError, effective, parse_tenant
from ._webhook import CLIENT_ID, USE_LABEL, WorkloadIdentityWebhook

log = logging.getLogger("pytest_aksai.sim.azure")
COMPONENT = "aksai-sim-azure"


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _free_port() -> int:
    """A free port for a server that binds it itself (qpid-proton)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _url(sock: socket.socket) -> str:
    return f"https://127.0.0.1:{sock.getsockname()[1]}/"


class SimAzure(Controller):
    """Owns the simulated Azure endpoints; reconciles the tenant ConfigMap (key `tenant`)."""

    name = "azure"
    watches = (
        Watch(
            "v1",
            "configmaps",
            lambda self, event, cm: (
                ["tenant"]
                if (cm.get("metadata") or {}).get("name") == contract.AZURE_CONFIGMAP
                and (cm.get("metadata") or {}).get("namespace") == contract.SIM_NAMESPACE
                else []
            ),
        ),
    )

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        scenario = load_scenario(ctx.scenario)
        self.region = scenario.cluster.region
        if scenario.azure is None:
            raise ApiError(
                500, f"scenario {scenario.name!r} installs the azure add-on but has no `azure:` tenant"
            )
        self._sockets: dict[str, socket.socket] = {"oidc": _listen(), "entra": _listen()}
        seed = parse_tenant(scenario.azure, f"scenario {scenario.name!r}, key azure")
        cluster_guid = uuid.uuid5(
            uuid.NAMESPACE_URL, f"{scenario.cluster.resource_group}/{scenario.cluster.name}"
        )
        self.issuer = f"{_url(self._sockets['oidc'])}{seed.tenant_id}/{cluster_guid}/"
        self._tenant: Tenant = seed.resolved(self.issuer)
        self.authority_host = _url(self._sockets["entra"])
        self.entra = SimEntra(
            self.tenant,
            ctx.clock.epoch_seconds,
            ctx.ca_pem,
            lambda: self.authority_host,
            time_scale=ctx.clock.time_scale,
        )
        self.vaults: dict[str, tuple[socket.socket, SimKeyVault]] = {}
        for vault in self._tenant.key_vaults:
            sock = _listen()
            url = _url(sock)
            self.vaults[vault.name] = (
                sock,
                SimKeyVault(vault.name, self.region, self.tenant, self.entra, lambda url=url: url),  # type: ignore[misc]
            )
        self.service_bus: dict[str, tuple[socket.socket, SimServiceBus]] = {
            ns.name: (_listen(), SimServiceBus(ns.name, self.tenant, self.entra, ctx.clock.epoch_seconds))
            for ns in self._tenant.service_bus
        }
        self.amqp_ports = {name: _free_port() for name in self.service_bus}
        self._brokers: list[Any] = []
        self._runners: list[web.AppRunner] = []
        self.secrets_store = SecretsStoreAzure(
            ctx.store,
            ctx.ca_pem,
            lambda: self.authority_host,
            lambda name: _url(self.vaults[name][0]) if name in self.vaults else None,
        )

    def tenant(self) -> Tenant:
        """The tenant now: the ConfigMap's data with the active faults applied."""
        return effective(self._tenant, self.ctx.faults)

    # ---- start -----------------------------------------------------------------------------------------
    def start(self) -> list[asyncio.Task[None]]:
        tokens = self.store.tokens
        if tokens is not None:
            tokens.issuer = self.issuer
        self.ctx.issuer = self.issuer
        self.store.mutating_admission.append(
            WorkloadIdentityWebhook(
                self.store, self.ctx.faults, lambda: self._tenant.tenant_id, lambda: self.authority_host
            )
        )
        self.ctx.csi_drivers[DRIVER] = self.secrets_store
        self._publish()
        tasks = super().start()
        tasks.append(asyncio.create_task(self._serve(), name="azure:serve"))
        return tasks

    def _publish(self) -> None:
        configmaps = self.rt("v1", "configmaps")
        if self.store.try_get(configmaps, contract.AZURE_CONFIGMAP, contract.SIM_NAMESPACE) is None:
            self.store.create(
                configmaps,
                {
                    "metadata": {"name": contract.AZURE_CONFIGMAP, "namespace": contract.SIM_NAMESPACE},
                    "data": {contract.KEY_TENANT: self._tenant.to_yaml()},
                },
            )
        sim = self.store.try_get(configmaps, contract.SIM_CONFIGMAP, contract.SIM_NAMESPACE)
        if sim is not None:
            sim.setdefault("data", {})[contract.KEY_AZURE] = json.dumps(self.advertised(), sort_keys=True)
            self.store.update(configmaps, sim)

    def advertised(self) -> dict[str, Any]:
        return {
            "tenantId": self._tenant.tenant_id,
            "authorityHost": self.authority_host,
            "oidcIssuer": self.issuer,
            "keyVaults": {name: _url(sock) for name, (sock, _) in self.vaults.items()},
            "serviceBus": {
                name: {
                    "fullyQualifiedNamespace": f"127.0.0.1:{sock.getsockname()[1]}",
                    "amqpEndpoint": f"sb://127.0.0.1:{self.amqp_ports[name]}",
                }
                for name, (sock, _) in self.service_bus.items()
            },
            "caBundle": self.ctx.ca_pem.decode(),
        }

    async def _serve(self) -> None:
        assert self.ctx.serving_cert is not None
        ssl_context = self.ctx.serving_cert.server_context()
        oidc = web.Application()
        oidc.add_routes(
            [
                web.get("/{tenant}/{guid}/.well-known/openid-configuration", self._discovery),
                web.get("/{tenant}/{guid}/openid/v1/jwks", self._jwks),
            ]
        )
        apps = [(self._sockets["oidc"], oidc), (self._sockets["entra"], self.entra.app)]
        apps += [(sock, vault.app) for sock, vault in self.vaults.values()]
        apps += [(sock, bus.app) for sock, bus in self.service_bus.values()]
        try:
            for sock, app in apps:
                runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
                await runner.setup()
                await web.SockSite(runner, sock, ssl_context=ssl_context).start()
                self._runners.append(runner)
            self._start_brokers()
            await asyncio.Event().wait()
        finally:
            for broker in self._brokers:
                with contextlib.suppress(Exception):
                    broker.stop()
            await self.entra.close()
            await self.secrets_store.close()
            for runner in self._runners:
                with contextlib.suppress(Exception):
                    await runner.cleanup()

    def _start_brokers(self) -> None:
        from ._amqp import AmqpBroker

        cert = self.ctx.serving_cert
        for name, (_, bus) in self.service_bus.items():
            broker = AmqpBroker(
                self.amqp_ports[name], bus, self.tenant, self.entra, cert.cert_pem + cert.ca_pem, cert.key_pem
            )
            broker.start()
            self._brokers.append(broker)

    # ---- the OIDC issuer (as AKS serves it from its own host, not the API server) ----------------------
    def _blob_missing(self) -> web.Response:
        return web.Response(
            status=404,
            content_type="application/xml",
            text='<?xml version="1.0" encoding="utf-8"?><Error><Code>BlobNotFound</Code><Message>The '
            "specified blob does not exist.</Message></Error>",
        )

    async def _discovery(self, request: web.Request) -> web.Response:
        if self.ctx.faults.is_active(Fault.OIDC_DISCOVERY_UNREACHABLE) or not self.issuer.endswith(
            f"/{request.match_info['tenant']}/{request.match_info['guid']}/"
        ):
            return self._blob_missing()
        assert self.store.tokens is not None
        return web.json_response(self.store.tokens.openid_configuration())

    async def _jwks(self, request: web.Request) -> web.Response:
        if self.ctx.faults.is_active(Fault.OIDC_DISCOVERY_UNREACHABLE):
            return self._blob_missing()
        assert self.store.tokens is not None
        return web.json_response(self.store.tokens.jwks())

    # ---- the tenant ConfigMap ----------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        cm = self.get("v1", "configmaps", f"{contract.SIM_NAMESPACE}/{contract.AZURE_CONFIGMAP}")
        if cm is None:
            return None
        text = (cm.get("data") or {}).get(contract.KEY_TENANT, "")
        try:
            tenant = parse_tenant(
                text,
                f"ConfigMap {contract.SIM_NAMESPACE}/{contract.AZURE_CONFIGMAP} key {contract.KEY_TENANT}",
            )
        except TenantError as exc:
            self.event(
                cm, "Warning", "InvalidTenant", f"{exc}; the previous tenant stays in force", COMPONENT
            )
            return None
        self._tenant = tenant.resolved(self.issuer)
        return None


class FaultedObjects(Controller):
    """Plays the faults that are mistakes in Kubernetes objects, and undoes them when they are cleared:
    `wi-label-on-serviceaccount` (the seed lab's: the label moves from the pod templates to the
    ServiceAccount), `wi-missing-client-id` (the ServiceAccount loses its client-id annotation) and
    `spc-wrong-client-id` (each Azure SecretProviderClass's clientID names the KEDA identity instead)."""

    name = "azure-faults"
    watches = (
        Watch(
            "v1",
            "configmaps",
            lambda self, event, cm: (
                ["faults"] if (cm.get("metadata") or {}).get("name") == contract.FAULTS_CONFIGMAP else []
            ),
        ),
        Watch("v1", "serviceaccounts", lambda self, event, sa: ["faults"]),
        Watch("secrets-store.csi.x-k8s.io/v1", "secretproviderclasses", lambda self, event, spc: ["faults"]),
    )

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._client_ids: dict[str, str] = {}
        self._moved: dict[str, list[str]] = {}
        self._spc_client_ids: dict[str, str] = {}

    def _service_accounts(self) -> list[dict[str, Any]]:
        return [
            sa
            for sa in self.list("v1", "serviceaccounts")
            if CLIENT_ID in ((sa.get("metadata") or {}).get("annotations") or {})
            or (sa["metadata"].get("namespace"), sa["metadata"]["name"]) in self._keys()
        ]

    def _keys(self) -> set[tuple[str, str]]:
        return {tuple(k.split("/", 1)) for k in (*self._client_ids, *self._moved)}  # type: ignore[misc]

    def start(self) -> list[asyncio.Task[None]]:
        self._apply()  # before the first pods exist, so faults given at start hold from the beginning
        return super().start()

    async def reconcile(self, key: str) -> float | None:
        self._apply()
        return None

    def _apply(self) -> None:
        faults = self.ctx.faults
        sa_rt = self.rt("v1", "serviceaccounts")
        for sa in self._service_accounts():
            meta = sa["metadata"]
            ref = f"{meta['namespace']}/{meta['name']}"
            if meta["namespace"] in ("kube-system", "keda"):
                continue
            annotations = meta.setdefault("annotations", {})
            changed = False
            if faults.is_active(Fault.WI_MISSING_CLIENT_ID) and CLIENT_ID in annotations:
                self._client_ids[ref] = annotations.pop(CLIENT_ID)
                changed = True
            elif not faults.is_active(Fault.WI_MISSING_CLIENT_ID) and ref in self._client_ids:
                annotations[CLIENT_ID] = self._client_ids.pop(ref)
                changed = True
            labels = meta.setdefault("labels", {})
            if faults.is_active(Fault.WI_LABEL_ON_SERVICEACCOUNT) and ref not in self._moved:
                self._moved[ref] = self._move_label(meta["namespace"], meta["name"], to_pod=False)
                labels[USE_LABEL] = "true"
                changed = True
            elif not faults.is_active(Fault.WI_LABEL_ON_SERVICEACCOUNT) and ref in self._moved:
                self._move_label(meta["namespace"], meta["name"], to_pod=True, only=self._moved.pop(ref))
                labels.pop(USE_LABEL, None)
                changed = True
            if changed:
                self.store.update(sa_rt, sa)
        self._secret_provider_classes()

    def _other_client_id(self) -> str:
        """The KEDA identity's client id: a real identity, federated for another ServiceAccount."""
        cm = self.get("v1", "configmaps", f"{contract.SIM_NAMESPACE}/{contract.AZURE_CONFIGMAP}") or {}
        try:
            tenant = parse_tenant((cm.get("data") or {}).get(contract.KEY_TENANT, ""), "tenant")
        except TenantError:
            return "00000000-0000-0000-0000-000000000000"
        keda = tenant.identity_named(KEDA_IDENTITY)
        return keda.client_id if keda else "00000000-0000-0000-0000-000000000000"

    def _secret_provider_classes(self) -> None:
        if self.store.storage_type("secrets-store.csi.x-k8s.io", "secretproviderclasses") is None:
            return
        spc_rt = self.rt("secrets-store.csi.x-k8s.io/v1", "secretproviderclasses")
        wrong = self.ctx.faults.is_active(Fault.SPC_WRONG_CLIENT_ID)
        keda = self._other_client_id()
        for spc in self.list("secrets-store.csi.x-k8s.io/v1", "secretproviderclasses"):
            ref = f"{spc['metadata']['namespace']}/{spc['metadata']['name']}"
            parameters = (spc.get("spec") or {}).get("parameters") or {}
            if (spc.get("spec") or {}).get("provider") != "azure":
                continue
            if wrong and ref not in self._spc_client_ids:
                self._spc_client_ids[ref] = str(parameters.get("clientID", ""))
                parameters["clientID"] = keda
            elif not wrong and ref in self._spc_client_ids:
                parameters["clientID"] = self._spc_client_ids.pop(ref)
            else:
                continue
            self.store.update(spc_rt, spc)

    def _move_label(
        self, namespace: str, sa_name: str, *, to_pod: bool, only: list[str] | None = None
    ) -> list[str]:
        moved: list[str] = []
        deployments = self.rt("apps/v1", "deployments")
        for deployment in self.list("apps/v1", "deployments", namespace):
            template = (deployment.get("spec") or {}).get("template") or {}
            spec = template.get("spec") or {}
            if (spec.get("serviceAccountName") or "default") != sa_name:
                continue
            name = deployment["metadata"]["name"]
            labels = template.setdefault("metadata", {}).setdefault("labels", {})
            if to_pod and (only is None or name in only):
                labels[USE_LABEL] = "true"
            elif not to_pod and labels.pop(USE_LABEL, None) is not None:
                moved.append(name)
            else:
                continue
            self.store.update(deployments, deployment)
        return moved
