"""The `identity` area's fixtures: the ServiceAccounts whose Workload Identity chain is walked, and each
hop of the chain once per run (so a broken hop fails the check that explains it with the whole paragraph
and every check after it with one line naming the root cause).

Every check that needs an identity is parametrized over `aksai_identity_ref` here: the profile's
`[azure] service_accounts`, else every ServiceAccount configured for Workload Identity, on the cluster or,
in static mode (`--aksai-manifests`), in the YAML.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_aksai._errors import Finding, ReadOnlyRefusal
from pytest_aksai._fixtures._cluster import cluster_during_collection, defer_exit, runtime_of
from pytest_aksai._fixtures._findings import once_per_run
from pytest_aksai._settings import Settings, settings_of

if TYPE_CHECKING:
    from pytest_aksai.azure import (
        AzureTarget,
        Exchange,
        IssuerDocuments,
        KedaIdentity,
        QueueSend,
        SecretMount,
        SecretRead,
        TokenClaims,
        TokenRotation,
        WorkloadIdentity,
    )
    from pytest_aksai.kube import Cluster

REF_ARGNAME = "aksai_identity_ref"
NOTHING_FOUND = "no-workload-identity-found"
_IDENTITIES = pytest.StashKey[dict[str, "WorkloadIdentity"]]()
_PARAMS = pytest.StashKey[list[Any]]()
_FIXTURES = frozenset({"aksai_identity"})
"""Every identity fixture builds on it, so a test that needs any of them is parametrized."""
STATIC_SKIP = (
    "static mode (--aksai-manifests) reads files and contacts no cluster; this hop of the chain needs a "
    "cluster and Entra ID"
)


def _objects(config: pytest.Config) -> tuple[list[tuple[str, dict[str, Any]]], str] | None:
    settings = settings_of(config)
    if settings.manifests is not None:
        from pytest_aksai.sizing import load_manifests

        return load_manifests([settings.manifests]), f"the YAML under {settings.manifests}"
    cluster = cluster_during_collection(config)
    if cluster is None:
        return None
    from pytest_aksai.kube import identity_objects

    where = f"cluster {settings.cluster!r}" + (
        f" (namespace {settings.namespace!r})" if settings.namespace else ""
    )
    return identity_objects(cluster, settings.namespace), where


def _params(config: pytest.Config) -> list[Any]:
    from pytest_aksai.azure import workload_identities

    settings = settings_of(config)
    refs = settings.profile.azure.service_accounts
    if config.getoption("collectonly") and settings.manifests is None:
        return [pytest.param(r, id=r) for r in refs] or [
            pytest.param("<discovered at run time>", id="discovered-at-run-time")
        ]
    if settings.is_absent("identity"):
        return [
            pytest.param(
                None, id="absent", marks=pytest.mark.skip(reason=settings.absence_reason("identity"))
            )
        ]
    from pytest_aksai.kube import ConnectError
    from pytest_aksai.sizing import ManifestError

    try:
        found = _objects(config)
    except ConnectError as exc:
        defer_exit(config, exc)
        return [pytest.param(None, id="not-listed")]
    except ManifestError as exc:
        return [pytest.param(f"!{exc}", id="bad-manifests")]
    if found is None:
        return [pytest.param(None, id="not-connected")]
    objects, where = found
    identities = workload_identities(objects, refs)
    config.stash[_IDENTITIES] = {i.ref: i for i in identities}
    if not identities:
        return [pytest.param(f"!{NOTHING_FOUND}:{where}", id=NOTHING_FOUND)]
    return [pytest.param(i.ref, id=i.ref) for i in identities]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if _FIXTURES.isdisjoint(metafunc.fixturenames):
        return
    params = metafunc.config.stash.get(_PARAMS, None)
    if params is None:
        params = metafunc.config.stash[_PARAMS] = _params(metafunc.config)
    metafunc.parametrize(REF_ARGNAME, params, scope="module")


def _nothing_found(where: str) -> NoReturn:
    raise Finding(
        f"found no ServiceAccount set up for Azure Workload Identity in {where}",
        expected="a ServiceAccount with the azure.workload.identity/client-id annotation, or pods labelled "
        "azure.workload.identity/use=true",
        observed="none",
        where="kubectl get serviceaccounts -A -o yaml | grep azure.workload.identity",
        fix="annotate the workload's ServiceAccount with azure.workload.identity/client-id (and label its pod "
        'template azure.workload.identity/use: "true"), name it in the profile\'s [azure] service_accounts, or, '
        'if this target has no workload identity on purpose, add "identity" to the profile\'s absent list',
    )


@pytest.fixture(scope="module")
def aksai_identity(request: pytest.FixtureRequest, aksai_identity_ref: str | None) -> WorkloadIdentity:
    """The ServiceAccount under test with the pod templates that run as it and the SecretProviderClasses
    they mount (one per ServiceAccount in `[azure] service_accounts`, or per one set up for Workload Identity)."""
    if aksai_identity_ref is None:
        pytest.skip("the cluster's objects could not be listed")
    if aksai_identity_ref.startswith("!"):
        text = aksai_identity_ref[1:]
        if text.startswith(NOTHING_FOUND):
            once_per_run(request, "identity-search", lambda: _nothing_found(text.partition(":")[2]))
        pytest.fail(text, pytrace=False)
    identities = request.config.stash.get(_IDENTITIES, {})
    if aksai_identity_ref not in identities:
        from pytest_aksai.azure import workload_identities

        found = _objects(request.config)
        identities = {i.ref: i for i in workload_identities(found[0] if found else [], [aksai_identity_ref])}
    identity = identities[aksai_identity_ref]
    if not identity.exists:
        raise Finding(
            f"ServiceAccount {identity.ref} does not exist",
            expected="the ServiceAccount the profile's [azure] service_accounts names",
            where=f"kubectl get serviceaccount -n {identity.namespace} {identity.name}",
            fix="fix the profile's service_accounts, or create the ServiceAccount",
        )
    return identity


def _live(settings: Settings) -> None:
    if settings.manifests is not None:
        pytest.skip(STATIC_SKIP)


@pytest.fixture(scope="session")
def aksai_azure(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> AzureTarget:
    """Where Entra ID and the vaults are: the profile's `[azure]`, or the simulated cluster's advertised
    endpoints (`kube-system/aksai-sim`, key `azure`) with its CA."""
    import json

    from pytest_aksai.azure import AzureTarget
    from pytest_aksai.kube import CONFIGMAPS
    from pytest_aksai.sim import contract

    settings = settings_of(pytestconfig)
    _live(settings)
    profile = settings.profile.azure
    cluster = runtime_of(pytestconfig).cluster()
    sim = cluster.get(CONFIGMAPS, contract.SIM_CONFIGMAP, contract.SIM_NAMESPACE)
    advertised = json.loads(((sim or {}).get("data") or {}).get(contract.KEY_AZURE) or "{}")
    if not advertised:
        return AzureTarget(
            tenant_id=profile.tenant_id or "",
            authority_host=profile.authority_host or AzureTarget.authority_host,
        )
    ca = Path(tmp_path_factory.mktemp("aksai-azure")) / "sim-ca.pem"
    ca.write_text(str(advertised.get("caBundle", "")), encoding="utf-8")
    return AzureTarget(
        tenant_id=profile.tenant_id or str(advertised.get("tenantId", "")),
        authority_host=profile.authority_host or str(advertised.get("authorityHost", "")),
        vault_urls=dict(advertised.get("keyVaults") or {}),
        amqp_endpoints={
            name: str(bus["amqpEndpoint"])
            for name, bus in (advertised.get("serviceBus") or {}).items()
            if bus.get("amqpEndpoint")
        },
        management_hosts={
            name: str(bus["fullyQualifiedNamespace"])
            for name, bus in (advertised.get("serviceBus") or {}).items()
            if bus.get("fullyQualifiedNamespace")
        },
        ca_bundle=str(ca),
        simulated=True,
    )


@pytest.fixture(scope="session")
def aksai_oidc_issuer(aksai_settings: Settings, aksai_cluster: Cluster) -> str | None:
    """The cluster's OIDC issuer URL that service-account tokens must name: the profile's
    `[azure] oidc_issuer`, else the simulated cluster's advertised one; None when unknown."""
    settings, cluster = aksai_settings, aksai_cluster
    if settings.profile.azure.oidc_issuer:
        return settings.profile.azure.oidc_issuer
    import json

    from pytest_aksai.kube import CONFIGMAPS
    from pytest_aksai.sim import contract

    sim = cluster.get(CONFIGMAPS, contract.SIM_CONFIGMAP, contract.SIM_NAMESPACE)
    advertised = json.loads(((sim or {}).get("data") or {}).get(contract.KEY_AZURE) or "{}")
    return str(advertised["oidcIssuer"]) if advertised.get("oidcIssuer") else None


@pytest.fixture(scope="module")
def aksai_identity_client_id(request: pytest.FixtureRequest, aksai_identity: WorkloadIdentity) -> str:
    """The ServiceAccount's client id; a Finding (explained by the annotations check) when it has none."""
    from pytest_aksai.azure import CLIENT_ID_ANNOTATION

    def compute() -> str:
        if not aksai_identity.client_id:
            raise Finding(
                f"ServiceAccount {aksai_identity.ref} has no {CLIENT_ID_ANNOTATION} annotation",
                expected=f"{CLIENT_ID_ANNOTATION}: the client id of the managed identity federated for "
                f"{aksai_identity.subject}",
                observed=f"annotations {sorted(aksai_identity.annotations)}",
                where=f"kubectl get serviceaccount -n {aksai_identity.namespace} {aksai_identity.name} -o yaml",
                fix=f"kubectl annotate serviceaccount -n {aksai_identity.namespace} {aksai_identity.name} "
                f"{CLIENT_ID_ANNOTATION}=$(az identity show -g <rg> -n <identity> --query clientId -o tsv); "
                "the webhook injects AZURE_CLIENT_ID only when the annotation is set",
            )
        return aksai_identity.client_id

    return once_per_run(
        request, f"identity-client-id:{aksai_identity.ref}", compute, params={REF_ARGNAME: aksai_identity.ref}
    )


@pytest.fixture(scope="module")
def aksai_identity_token(
    request: pytest.FixtureRequest, aksai_cluster: Cluster, aksai_identity: WorkloadIdentity
) -> tuple[str, TokenClaims]:
    """A TokenRequest token for the ServiceAccount with audience api://AzureADTokenExchange (what the kubelet
    projects into the pod), and its claims. Never printed: its fingerprint is."""
    from pytest_aksai.azure import TOKEN_EXCHANGE_AUDIENCE, token_claims
    from pytest_aksai.kube import request_token

    _live(settings_of(request.config))

    def compute() -> tuple[str, TokenClaims]:
        try:
            token = request_token(
                aksai_cluster, aksai_identity.namespace, aksai_identity.name, TOKEN_EXCHANGE_AUDIENCE
            )
        except Exception as exc:
            raise Finding(
                f"TokenRequest for ServiceAccount {aksai_identity.ref} failed",
                expected=f"a token for audience {TOKEN_EXCHANGE_AUDIENCE}",
                observed=f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}",
                where=f"kubectl create token -n {aksai_identity.namespace} {aksai_identity.name} "
                f"--audience {TOKEN_EXCHANGE_AUDIENCE}",
                fix="the identity running the suite needs create on serviceaccounts/token in that namespace",
            ) from None
        return token, token_claims(token)

    return once_per_run(
        request, f"identity-token:{aksai_identity.ref}", compute, params={REF_ARGNAME: aksai_identity.ref}
    )


@pytest.fixture(scope="module")
def aksai_identity_issuer(
    request: pytest.FixtureRequest,
    aksai_azure: AzureTarget,
    aksai_identity: WorkloadIdentity,
    aksai_identity_token: tuple[str, TokenClaims],
) -> IssuerDocuments:
    """The token issuer's discovery document and JWKS as Entra ID fetches them; a Finding (explained by the
    issuer check) when they cannot be fetched or lack the signing key of the token."""
    from pytest_aksai.azure import issuer_documents

    claims = aksai_identity_token[1]

    def compute() -> IssuerDocuments:
        docs = issuer_documents(claims.issuer, aksai_azure)
        fix = (
            "Entra ID fetches these anonymously over the internet: enable the OIDC issuer (az aks update -g "
            "<rg> -n <cluster> --enable-oidc-issuer) and keep it public"
        )
        if not docs.reachable:
            raise Finding(
                f"the OIDC issuer {claims.issuer} does not serve its discovery document and JWKS",
                expected=f"HTTP 200 from {docs.discovery_url} and from its jwks_uri",
                observed=f"discovery HTTP {docs.discovery_status}, JWKS HTTP {docs.jwks_status}"
                + (f": {docs.problem}" if docs.problem else ""),
                where=f"curl {docs.discovery_url}",
                fix=fix + "; Entra answers AADSTS50166 (Request to External OIDC endpoint failed) until then",
            )
        if docs.issuer != claims.issuer or claims.key_id not in docs.key_ids:
            raise Finding(
                f"the OIDC issuer {claims.issuer} does not vouch for the ServiceAccount's tokens",
                expected=f"discovery issuer {claims.issuer!r} and the signing key {claims.key_id!r} in the JWKS",
                observed=f"discovery issuer {docs.issuer!r}, JWKS keys {list(docs.key_ids)}",
                where=f"curl {docs.jwks_uri}",
                fix="az aks oidc-issuer rotate-signing-keys, then restart the pods (Entra answers AADSTS7000272)",
            )
        return docs

    return once_per_run(
        request, f"identity-issuer:{aksai_identity.ref}", compute, params={REF_ARGNAME: aksai_identity.ref}
    )


def _rotating_token(cluster: Cluster, identity: WorkloadIdentity, first: str) -> Callable[[], str]:
    """The ServiceAccount's token as the kubelet keeps it: the same one until 80 % of its lifetime (cluster
    time), then a new TokenRequest: what a pod's SDK reads from AZURE_FEDERATED_TOKEN_FILE."""
    import time

    from pytest_aksai.azure import TOKEN_EXCHANGE_AUDIENCE, token_claims
    from pytest_aksai.kube import request_token

    lifetime = token_claims(first).lifetime_s / max(cluster.time_scale, 1e-9)
    tokens, since = [first], [time.monotonic()]

    def current() -> str:
        if time.monotonic() - since[0] > 0.8 * lifetime:
            tokens[0] = request_token(cluster, identity.namespace, identity.name, TOKEN_EXCHANGE_AUDIENCE)
            since[0] = time.monotonic()
        return tokens[0]

    return current


@pytest.fixture(scope="module")
def aksai_identity_exchange(
    request: pytest.FixtureRequest,
    aksai_cluster: Cluster,
    aksai_azure: AzureTarget,
    aksai_identity: WorkloadIdentity,
    aksai_identity_client_id: str,
    aksai_identity_token: tuple[str, TokenClaims],
    aksai_identity_issuer: IssuerDocuments,
) -> Exchange:
    """The Entra ID exchange of the ServiceAccount's token for a Key Vault token, as the pod's SDK does it;
    a Finding (explained by the exchange check) naming the hop the AADSTS code blames."""
    from pytest_aksai.azure import aadsts_meaning, exchange

    token, claims = aksai_identity_token
    tenant = aksai_identity.tenant_id or aksai_azure.tenant_id
    current = _rotating_token(aksai_cluster, aksai_identity, token)

    def compute() -> Exchange:
        result = exchange(aksai_azure, tenant, aksai_identity_client_id, current)
        if not result.ok:
            meaning = aadsts_meaning(result.code, claims, aksai_identity_client_id)
            raise Finding(
                f"Entra ID refused the token exchange for {aksai_identity.ref} at the {meaning.hop} hop",
                expected=f"an access token for client {aksai_identity_client_id} in tenant {tenant} from a token "
                f"with iss {claims.issuer!r}, sub {claims.subject!r}, aud {list(claims.audiences)}",
                observed=str(result),
                where=f"az identity federated-credential list --identity-name <identity> -g <rg> "
                f"(the identity with client id {aksai_identity_client_id})",
                fix=meaning.fix,
            )
        return result

    return once_per_run(
        request, f"identity-exchange:{aksai_identity.ref}", compute, params={REF_ARGNAME: aksai_identity.ref}
    )


@pytest.fixture
def aksai_probe_pod(
    request: pytest.FixtureRequest, aksai_cluster: Cluster, aksai_identity: WorkloadIdentity
) -> Iterator[tuple[dict[str, Any] | None, str]]:
    """A pod labelled azure.workload.identity/use=true running as the ServiceAccount, as the API server
    admitted it (after the webhook), or None and the refusal; deleted afterwards."""
    from pytest_aksai._fixtures._cluster import record_of
    from pytest_aksai.azure import USE_LABEL
    from pytest_aksai.kube import create_probe_pod, delete_pod

    settings = settings_of(request.config)
    _live(settings)
    record = record_of(request.config)  # the probe pod lives in the identity's (shared) namespace
    pod, refusal = create_probe_pod(
        aksai_cluster, aksai_identity.namespace, aksai_identity.name, record.labels, USE_LABEL
    )
    entry = record.record("Pod", pod["metadata"]["name"], aksai_identity.namespace) if pod else None
    try:
        yield pod, refusal
    finally:
        if pod is not None and entry is not None:
            delete_pod(aksai_cluster, aksai_identity.namespace, pod["metadata"]["name"])
            record.release(entry)


@pytest.fixture(scope="module")
def aksai_exchanger(
    aksai_cluster: Cluster,
    aksai_azure: AzureTarget,
    aksai_identity: WorkloadIdentity,
    aksai_identity_token: tuple[str, TokenClaims],
) -> Callable[[str], Exchange]:
    """Exchange the ServiceAccount's token as another client id (what the CSI driver does with a
    SecretProviderClass's clientID): `aksai_exchanger(client_id)` → what Entra ID answered."""
    from pytest_aksai.azure import exchange

    current = _rotating_token(aksai_cluster, aksai_identity, aksai_identity_token[0])
    tenant = aksai_identity.tenant_id or aksai_azure.tenant_id
    return lambda client_id: exchange(aksai_azure, tenant, client_id, current)


def secrets_to_read(settings: Settings, identity: WorkloadIdentity) -> list[tuple[str, str]]:
    """(vault, secret) pairs: the profile's `[azure] key_vaults`, else the objects of the
    SecretProviderClasses the ServiceAccount's pods mount."""
    configured = settings.profile.azure.key_vaults
    if configured:
        return [(vault, name) for vault, names in configured.items() for name in names]
    return [(spc.keyvault, name) for spc in identity.provider_classes if spc.keyvault for name in spc.objects]


@pytest.fixture(scope="module")
def aksai_identity_secrets(
    aksai_settings: Settings,
    aksai_azure: AzureTarget,
    aksai_identity: WorkloadIdentity,
    aksai_identity_exchange: Exchange,
) -> list[SecretRead]:
    """Key Vault's answer for each secret to read with the ServiceAccount's identity (fingerprints only)."""
    from pytest_aksai.azure import read_secret

    pairs = secrets_to_read(aksai_settings, aksai_identity)
    if not pairs:
        pytest.skip(
            f"no Key Vault secret to read for {aksai_identity.ref}: its pods mount no Azure SecretProviderClass "
            "and the profile's [azure] key_vaults is empty"
        )
    return [
        read_secret(aksai_azure, vault, name, aksai_identity_exchange.credential) for vault, name in pairs
    ]


@pytest.fixture(scope="module")
def aksai_identity_queue_send(
    request: pytest.FixtureRequest,
    aksai_settings: Settings,
    aksai_azure: AzureTarget,
    aksai_identity: WorkloadIdentity,
    aksai_identity_exchange: Exchange,
) -> QueueSend:
    """Service Bus's answer to one probe message sent to `[azure] service_bus_queue` with the
    ServiceAccount's identity (AMQP, claims-based security, as a workload's sender)."""
    from pytest_aksai.azure import send_probe

    azure = aksai_settings.profile.azure
    if not (azure.service_bus_namespace and azure.service_bus_queue):
        pytest.skip(
            "the profile names no Service Bus queue ([azure] service_bus_namespace and service_bus_queue)"
        )
    if aksai_settings.readonly:  # the one write the suites send outside the cluster
        pytest.skip(
            str(ReadOnlyRefusal(f"send a message to the Service Bus queue {azure.service_bus_queue!r}"))
        )
    sent = send_probe(
        aksai_azure,
        azure.service_bus_namespace,
        azure.service_bus_queue,
        aksai_identity_exchange.credential,
        aksai_settings.run_id,
    )
    if sent.ok:  # the message expires by itself (one-minute time to live); the run report lists it
        from pytest_aksai._fixtures._cluster import record_of

        record_of(request.config).note_external(f"Service Bus message to {sent.namespace}/{sent.queue} "
                                                f"(application property aksai-run={aksai_settings.run_id}, 1 min TTL)")  # fmt: skip
    return sent


SECRETS_STORE_DRIVER = "secrets-store.csi.k8s.io"
PROBE_MOUNT_ROOT = "/mnt/aksai"


@pytest.fixture(scope="module")
def aksai_identity_mounts(
    request: pytest.FixtureRequest, aksai_cluster: Cluster, aksai_identity: WorkloadIdentity
) -> SecretMount:
    """A probe pod running as the ServiceAccount that mounts each of its Azure SecretProviderClasses (as
    its workloads do, without the webhook label: the CSI driver does not need it): did it start, or the
    kubelet's FailedMount text; the mounted files' fingerprints and the synced Secrets' keys. Deleted after."""
    from pytest_aksai._fixtures._cluster import record_of
    from pytest_aksai.azure import SecretMount, fingerprint
    from pytest_aksai.kube import create_probe_pod, delete_pod, pod_exec, secret_keys, wait_started

    settings = settings_of(request.config)
    _live(settings)
    sa = aksai_identity
    classes = [c for c in sa.provider_classes if not c.problem]
    if not classes:
        pytest.skip(f"no pod of {sa.ref} mounts an Azure SecretProviderClass")
    volumes = [
        {
            "name": f"aksai-spc-{i}",
            "csi": {
                "driver": SECRETS_STORE_DRIVER,
                "readOnly": True,
                "volumeAttributes": {"secretProviderClass": spc.name},
            },
        }
        for i, spc in enumerate(classes)
    ]
    mounts = [
        {"name": f"aksai-spc-{i}", "mountPath": f"{PROBE_MOUNT_ROOT}/{spc.name}", "readOnly": True}
        for i, spc in enumerate(classes)
    ]
    record = record_of(request.config)  # the probe pod lives in the identity's (shared) namespace
    pod, refusal = create_probe_pod(
        aksai_cluster,
        sa.namespace,
        sa.name,
        record.labels,
        "",
        volumes=volumes,
        mounts=mounts,
        seconds=3600,
    )
    if pod is None:
        return SecretMount("", False, failure=f"the API server refused the probe pod: {refusal}")
    name = str(pod["metadata"]["name"])
    recorded = record.record("Pod", name, sa.namespace)
    try:
        budget = settings.timeout("pod_ready")
        started, failure = wait_started(aksai_cluster, sa.namespace, name, budget)
        if not started:
            if "AADSTS" in failure and sa.client_id and any(c.client_id == sa.client_id for c in classes):
                # The driver made the exchange the Entra hop makes: when that hop is broken, this check is
                # one of its dependents (a one-line root cause), not a second explanation.
                request.getfixturevalue("aksai_identity_exchange")
            return SecretMount(
                name,
                False,
                failure=failure or f"its containers did not start within {budget:g} cluster seconds",
            )
        files: dict[str, dict[str, str]] = {}
        for spc in classes:
            path = f"{PROBE_MOUNT_ROOT}/{spc.name}"
            _, listing, _ = pod_exec(aksai_cluster, sa.namespace, name, ["ls", "-1", path])
            seen: dict[str, str] = {}
            for entry in listing.split():
                code, content, _ = pod_exec(aksai_cluster, sa.namespace, name, ["cat", f"{path}/{entry}"])
                seen[entry] = fingerprint(content) if code == 0 else "unreadable"
            files[spc.ref] = seen
        synced = {
            secret: secret_keys(aksai_cluster, sa.namespace, secret)
            for spc in classes
            for secret, _ in spc.synced
            if secret
        }
        return SecretMount(name, True, files=files, synced=synced)
    finally:
        delete_pod(aksai_cluster, sa.namespace, name)
        record.release(recorded)


PROBE_TOKEN_SECONDS = 600
"""The shortest projected token the API server issues: the kubelet replaces it after 480 s."""
PROBE_TOKEN_DIR = "/var/run/secrets/aksai-probe"
ROTATION_WALL_SLACK_S = 10.0


def _issued_at(token: str) -> int:
    """A JWT's `iat` claim (read unverified: the time is not a secret and no trust rests on it); 0 if none."""
    import jwt

    try:
        return int(jwt.decode(token, options={"verify_signature": False}).get("iat") or 0)
    except (jwt.PyJWTError, TypeError, ValueError):
        return 0


@pytest.fixture(scope="module")
def aksai_token_rotation(
    request: pytest.FixtureRequest, aksai_cluster: Cluster, aksai_identity: WorkloadIdentity
) -> TokenRotation:
    """A probe pod running as the ServiceAccount with a projected token for api://AzureADTokenExchange of
    the shortest lifetime (600 s): does the kubelet replace it before it expires (upstream: at 80 %)? Polls
    the file through exec (a file has no watch) every 10 cluster seconds; only fingerprints are kept."""
    import time

    from pytest_aksai._fixtures._cluster import record_of
    from pytest_aksai.azure import TOKEN_EXCHANGE_AUDIENCE, TokenRotation, fingerprint
    from pytest_aksai.kube import create_probe_pod, delete_pod, pod_exec, wait_started

    settings = settings_of(request.config)
    _live(settings)
    sa = aksai_identity
    volume = {
        "name": "aksai-token",
        "projected": {
            "sources": [
                {
                    "serviceAccountToken": {
                        "path": "token",
                        "audience": TOKEN_EXCHANGE_AUDIENCE,
                        "expirationSeconds": PROBE_TOKEN_SECONDS,
                    }
                }
            ]
        },
    }
    mount = {"name": "aksai-token", "mountPath": PROBE_TOKEN_DIR, "readOnly": True}
    record = record_of(request.config)  # the probe pod lives in the identity's (shared) namespace
    pod, refusal = create_probe_pod(
        aksai_cluster,
        sa.namespace,
        sa.name,
        record.labels,
        "",
        volumes=[volume],
        mounts=[mount],
        # outlives the whole wait, its wall slack included, at any time scale
        seconds=int(2 * PROBE_TOKEN_SECONDS + 2 * ROTATION_WALL_SLACK_S * max(aksai_cluster.time_scale, 1.0)),
    )
    if pod is None:
        return TokenRotation("", PROBE_TOKEN_SECONDS, False, 0.0, problem=f"probe pod refused: {refusal}")
    name = str(pod["metadata"]["name"])
    recorded = record.record("Pod", name, sa.namespace)
    scale = max(aksai_cluster.time_scale, 1e-9)
    try:
        started, failure = wait_started(aksai_cluster, sa.namespace, name, settings.timeout("pod_ready"))
        if not started:
            return TokenRotation(
                name, PROBE_TOKEN_SECONDS, False, 0.0, problem=failure or "the probe pod did not start"
            )

        def read() -> tuple[str, int]:
            """The token's fingerprint and its `iat` (a claim, not a secret)."""
            code, token, _ = pod_exec(aksai_cluster, sa.namespace, name, ["cat", f"{PROBE_TOKEN_DIR}/token"])
            if code != 0 or not token:
                return "", 0
            return fingerprint(token), _issued_at(token)

        first, first_iat = read()
        began = time.monotonic()
        # The kubelet writes the new token on its next volume sync; the wall slack lets one more read land
        # after the first token's expiry when exec is slow (a compressed clock gives the wait a second or so).
        deadline = began + PROBE_TOKEN_SECONDS / scale + ROTATION_WALL_SLACK_S
        last, last_iat = first, first_iat
        while last == first and time.monotonic() < deadline:
            time.sleep(max(10.0 / scale, 0.1))
            last, last_iat = read()
        changed = bool(first) and bool(last) and last != first
        if changed and first_iat and last_iat:
            # Judged on the tokens' own issue times, so a slow poll cannot move the verdict.
            waited = float(last_iat - first_iat)
            rotated = waited <= PROBE_TOKEN_SECONDS
        else:
            waited = (time.monotonic() - began) * scale
            rotated = changed
        return TokenRotation(name, PROBE_TOKEN_SECONDS, rotated, waited, first, last)
    finally:
        delete_pod(aksai_cluster, sa.namespace, name)
        record.release(recorded)


def _keda_queues(auth: dict[str, Any], scaled: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(Service Bus namespace, queue) of every azure-servicebus trigger that authenticates with `auth`."""
    meta = auth.get("metadata") or {}
    out: list[tuple[str, str]] = []
    for so in scaled:
        so_ns = (so.get("metadata") or {}).get("namespace")
        for trigger in (so.get("spec") or {}).get("triggers") or []:
            ref = trigger.get("authenticationRef") or {}
            kind = ref.get("kind") or "TriggerAuthentication"
            same = ref.get("name") == meta.get("name") and kind == auth.get("kind")
            if kind == "TriggerAuthentication":
                same = same and so_ns == meta.get("namespace")
            queue = (trigger.get("metadata") or {}).get("queueName")
            namespace = (trigger.get("metadata") or {}).get("namespace")
            if same and trigger.get("type") == "azure-servicebus" and queue and namespace:
                out.append((str(namespace), str(queue)))
    return sorted(set(out))


@pytest.fixture(scope="session")
def aksai_keda_identities(
    aksai_settings: Settings, aksai_cluster: Cluster, aksai_azure: AzureTarget
) -> list[KedaIdentity]:
    """Each `azure-workload` (Cluster)TriggerAuthentication walked as the KEDA operator: its ServiceAccount
    (from the keda-operator Deployment, else keda/keda-operator) → a TokenRequest token → Entra ID as
    `identityId` (else the ServiceAccount's client-id) for Service Bus → the queue depth of each queue its
    ScaledObjects name (else the profile's `[azure]` queue). Skips when there is none."""
    from pytest_aksai.azure import (
        CLIENT_ID_ANNOTATION,
        SERVICE_BUS_SCOPE,
        TOKEN_EXCHANGE_AUDIENCE,
        KedaIdentity,
        exchange,
        queue_depth,
        token_claims,
    )
    from pytest_aksai.kube import keda_identity_objects, request_token, service_account

    if aksai_settings.readonly:  # the walk starts with a TokenRequest, a write
        pytest.skip(str(ReadOnlyRefusal("request a token for the KEDA operator's ServiceAccount")))
    auths, scaled, deployment = keda_identity_objects(aksai_cluster)
    if not auths:
        pytest.skip(
            "no TriggerAuthentication or ClusterTriggerAuthentication with podIdentity.provider azure-workload"
        )
    if deployment is not None:
        namespace = str(deployment["metadata"]["namespace"])
        pod_spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        sa_name = str(pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount") or "default")
        source = f"Deployment {namespace}/keda-operator, spec.template.spec.serviceAccountName"
    else:
        namespace, sa_name, source = (
            "keda",
            "keda-operator",
            "KEDA's chart default (no keda-operator Deployment)",
        )
    sa = service_account(aksai_cluster, namespace, sa_name) or {}
    annotations = (sa.get("metadata") or {}).get("annotations") or {}
    profile = aksai_settings.profile.azure
    fallback = (
        [(profile.service_bus_namespace, profile.service_bus_queue)]
        if profile.service_bus_namespace and profile.service_bus_queue
        else []
    )
    token = ""
    token_problem = ""
    try:
        token = request_token(aksai_cluster, namespace, sa_name, TOKEN_EXCHANGE_AUDIENCE)
    except Exception as exc:
        token_problem = (
            f"TokenRequest for ServiceAccount {namespace}/{sa_name} failed: {type(exc).__name__}: "
            f"{getattr(exc, 'reason', exc)}"
        )
    claims = token_claims(token) if token else None
    walked: list[KedaIdentity] = []
    for auth in auths:
        meta = auth.get("metadata") or {}
        ref = (
            f"TriggerAuthentication {meta.get('namespace')}/{meta.get('name')}"
            if auth.get("kind") == "TriggerAuthentication"
            else f"ClusterTriggerAuthentication {meta.get('name')}"
        )
        identity = (auth.get("spec") or {}).get("podIdentity") or {}
        client_id = str(identity.get("identityId") or annotations.get(CLIENT_ID_ANNOTATION) or "")
        client_source = (
            f"{ref} spec.podIdentity.identityId"
            if identity.get("identityId")
            else f"ServiceAccount {namespace}/{sa_name} annotation {CLIENT_ID_ANNOTATION}"
        )
        tenant = str(
            identity.get("identityTenantId")
            or annotations.get("azure.workload.identity/tenant-id")
            or aksai_azure.tenant_id
        )
        base = KedaIdentity(
            ref,
            f"{namespace}/{sa_name}",
            source,
            client_id,
            client_source,
            tenant,
            subject=claims.subject if claims else "",
            issuer=claims.issuer if claims else "",
        )
        if not client_id:
            walked.append(_with(base, problem="no identityId and no client-id annotation"))
            continue
        if not token:
            walked.append(_with(base, problem=token_problem))
            continue
        answer = exchange(aksai_azure, tenant, client_id, token, scope=SERVICE_BUS_SCOPE)
        if not answer.ok:
            walked.append(_with(base, exchange=answer))
            continue
        queues = _keda_queues(auth, scaled) or fallback
        depths = tuple(queue_depth(aksai_azure, ns, q, answer.credential) for ns, q in queues)
        walked.append(_with(base, exchange=answer, queues=depths))
    return walked


def _with(identity: KedaIdentity, **changes: Any) -> KedaIdentity:
    from dataclasses import replace

    return replace(identity, **changes)
