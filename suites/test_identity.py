"""Azure Workload Identity, hop by hop: does each ServiceAccount's chain reach Key Vault, and if not, which
hop broke and how to fix it?

ServiceAccount annotations → the label on the pod templates → the webhook's injection into a probe pod →
the TokenRequest token → the issuer's discovery and JWKS → the Entra ID exchange → Key Vault → the
SecretProviderClasses' identity. Each check runs once per ServiceAccount under test (the profile's
`[azure] service_accounts`, or every one set up for Workload Identity); the manifest checks also run on YAML
(`--aksai-manifests`). See docs/reference/suites/identity.md.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any

import pytest

from pytest_aksai import (
    AksaiWarning,
    AzureTarget,
    Exchange,
    IssuerDocuments,
    SecretRead,
    Settings,
    TokenClaims,
    WorkloadIdentity,
)

pytestmark = pytest.mark.identity

USE_LABEL = "azure.workload.identity/use"
CLIENT_ID = "azure.workload.identity/client-id"
TENANT_ID = "azure.workload.identity/tenant-id"
EXPIRATION = "azure.workload.identity/service-account-token-expiration"
AUDIENCE = "api://AzureADTokenExchange"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@pytest.mark.explains("aksai_identity", "aksai_identity_client_id")
def test_serviceaccount_annotations(aksai_identity: WorkloadIdentity, aksai_identity_client_id: str) -> None:
    """[hop: ServiceAccount] The client-id annotation is a GUID; tenant-id, when set, too; the token
    expiration annotation, when set, is within 3600–86400 s (the webhook refuses pods otherwise)."""
    sa = aksai_identity
    where = f"kubectl get serviceaccount -n {sa.namespace} {sa.name} -o yaml"
    assert _GUID.match(aksai_identity_client_id), (
        f"[hop: ServiceAccount] {sa.ref}: {CLIENT_ID} is {aksai_identity_client_id!r}, not a client id (a GUID). "
        f"Fix: set it to `az identity show -g <rg> -n <identity> --query clientId -o tsv` ({where})"
    )
    if sa.tenant_id:
        assert _GUID.match(sa.tenant_id), (
            f"[hop: ServiceAccount] {sa.ref}: {TENANT_ID} is {sa.tenant_id!r}, not a tenant id (a GUID). "
            f"Fix: `az account show --query tenantId -o tsv` ({where})"
        )
    raw = sa.annotations.get(EXPIRATION)
    if raw is not None:
        assert raw.isdigit() and 3600 <= int(raw) <= 86400, (
            f"[hop: ServiceAccount] {sa.ref}: {EXPIRATION} is {raw!r}; the webhook refuses every pod of this "
            "ServiceAccount (token expiration not valid. Expected value to be between 3600 and 86400). Fix: "
            f"set it to a number of seconds in 3600..86400 or remove it ({where})"
        )


def test_label_is_on_the_pod_templates(aksai_identity: WorkloadIdentity) -> None:
    """[hop: pod label] Every pod template that runs as the ServiceAccount carries
    `azure.workload.identity/use: "true"`: the webhook selects pods by that label only, never by the
    ServiceAccount's labels."""
    sa = aksai_identity
    unlabelled = [t for t in sa.templates if not t.labelled]
    on_sa = sa.labels.get(USE_LABEL) == "true"
    if on_sa and (unlabelled or not sa.templates):
        shown = ", ".join(t.workload for t in unlabelled) or f"no pod template in scope runs as {sa.ref}"
        pytest.fail(
            f'[hop: pod label] ServiceAccount {sa.ref} carries the label {USE_LABEL}: "true" ({sa.source}), '
            "where the Workload Identity webhook never looks: it selects pods by their own label, so pods of "
            f"this ServiceAccount get no AZURE_* env and no token ({shown}). Fix: move the label to "
            f"spec.template.metadata.labels of every workload that runs as {sa.name}, and drop it from the "
            "ServiceAccount",
            pytrace=False,
        )
    if not sa.templates:
        pytest.skip(f"no workload in scope runs as ServiceAccount {sa.ref}")
    assert not unlabelled, (
        f"[hop: pod label] {len(unlabelled)} workload(s) run as {sa.ref} without the pod label {USE_LABEL}: "
        f'"true": {", ".join(f"{t.workload} ({t.source})" for t in unlabelled)}. The webhook does not mutate '
        "their pods, so the Azure SDK finds no AZURE_CLIENT_ID / AZURE_FEDERATED_TOKEN_FILE. Fix: add "
        f'{USE_LABEL}: "true" under spec.template.metadata.labels'
    )
    if on_sa:
        warnings.warn(
            AksaiWarning(
                f"ServiceAccount {sa.ref} carries the label {USE_LABEL}, which the webhook ignores (the pods "
                "carry it too, so it works); remove it from the ServiceAccount to avoid the confusion"
            ),
            stacklevel=1,
        )


@pytest.mark.disruptive
def test_webhook_injects_the_identity(
    aksai_identity: WorkloadIdentity,
    aksai_identity_client_id: str,
    aksai_azure: AzureTarget,
    aksai_probe_pod: tuple[dict[str, Any] | None, str],
) -> None:
    """[hop: webhook] A labelled probe pod running as the ServiceAccount gets AZURE_CLIENT_ID,
    AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE and AZURE_AUTHORITY_HOST, and a projected token for
    api://AzureADTokenExchange mounted where AZURE_FEDERATED_TOKEN_FILE points."""
    pod, refusal = aksai_probe_pod
    sa = aksai_identity
    assert pod is not None, (
        f"[hop: webhook] the API server refused a pod labelled {USE_LABEL}=true running as {sa.ref}: {refusal}. "
        "Fix: the Workload Identity webhook must be reachable (kubectl get pods,endpoints -n kube-system -l "
        "azure-workload-identity.io/system=true; on AKS: az aks update -g <rg> -n <cluster> "
        "--enable-workload-identity)"
    )
    spec = pod.get("spec") or {}
    volumes = {
        v.get("name"): s["serviceAccountToken"]
        for v in spec.get("volumes") or []
        for s in (v.get("projected") or {}).get("sources") or []
        if s.get("serviceAccountToken")
    }
    for container in spec.get("containers") or []:
        env = {e.get("name"): e.get("value") for e in container.get("env") or []}
        missing = [
            n
            for n in (
                "AZURE_CLIENT_ID",
                "AZURE_TENANT_ID",
                "AZURE_FEDERATED_TOKEN_FILE",
                "AZURE_AUTHORITY_HOST",
            )
            if not env.get(n)
        ]
        assert not missing, (
            f"[hop: webhook] the probe pod of {sa.ref} has no {', '.join(missing)} (env: {sorted(env)}): the "
            "webhook did not mutate it. Fix: check that the webhook runs and that its "
            "MutatingWebhookConfiguration selects pods labelled azure.workload.identity/use=true"
        )
        assert env["AZURE_CLIENT_ID"] == aksai_identity_client_id
        token_file = str(env["AZURE_FEDERATED_TOKEN_FILE"])
        mounts = [
            m
            for m in container.get("volumeMounts") or []
            if m.get("name") in volumes
            and token_file.startswith(str(m.get("mountPath", "")).rstrip("/") + "/")
        ]
        assert mounts, (
            f"[hop: webhook] AZURE_FEDERATED_TOKEN_FILE={token_file} is not inside a projected token volume "
            f"of the probe pod (token volumes: {sorted(str(v) for v in volumes)})"
        )
        projection = volumes[mounts[0]["name"]]
        assert projection.get("audience") == AUDIENCE, (
            f"[hop: webhook] the projected token's audience is {projection.get('audience')!r}, not {AUDIENCE!r}"
        )
        if aksai_azure.simulated:
            assert env["AZURE_AUTHORITY_HOST"] == aksai_azure.authority_host


@pytest.mark.explains("aksai_identity_token")
def test_token_names_the_cluster_issuer(
    aksai_identity: WorkloadIdentity,
    aksai_identity_token: tuple[str, TokenClaims],
    aksai_oidc_issuer: str | None,
) -> None:
    """[hop: token] The ServiceAccount's token for api://AzureADTokenExchange has issuer = the cluster's
    OIDC issuer, audience api://AzureADTokenExchange and subject system:serviceaccount:<ns>:<sa>."""
    claims = aksai_identity_token[1]
    assert not claims.problem, f"[hop: token] {claims.problem}"
    assert claims.audiences == (AUDIENCE,), (
        f"[hop: token] audience is {list(claims.audiences)}, not [{AUDIENCE}]"
    )
    assert claims.subject == aksai_identity.subject, (
        f"[hop: token] subject is {claims.subject!r}, not {aksai_identity.subject!r}"
    )
    assert claims.issuer.startswith("https://"), f"[hop: token] issuer {claims.issuer!r} is not an https URL"
    if aksai_oidc_issuer is not None:
        assert claims.issuer == aksai_oidc_issuer, (
            f"[hop: token] the token's issuer is {claims.issuer!r}, not the cluster's OIDC issuer "
            f"{aksai_oidc_issuer!r}: the API server's --service-account-issuer differs. Fix: az aks update "
            "--enable-oidc-issuer, and use that URL (trailing / included) in the federated credentials"
        )


@pytest.mark.explains("aksai_identity_issuer")
def test_issuer_publishes_the_signing_key(
    aksai_identity_token: tuple[str, TokenClaims], aksai_identity_issuer: IssuerDocuments
) -> None:
    """[hop: OIDC issuer] `<issuer>/.well-known/openid-configuration` and its JWKS are reachable (as Entra
    ID fetches them), name the token's issuer and hold the key that signed it."""
    claims = aksai_identity_token[1]
    assert aksai_identity_issuer.issuer == claims.issuer
    assert claims.key_id in aksai_identity_issuer.key_ids


@pytest.mark.explains("aksai_identity_exchange")
def test_entra_exchange(aksai_identity_exchange: Exchange) -> None:
    """[hop: Entra ID] Entra ID exchanges the token for an access token (client credentials with a
    JWT-bearer assertion); a refusal names the hop its AADSTS code blames."""
    assert aksai_identity_exchange.ok
    assert aksai_identity_exchange.fingerprint


def test_key_vault_secrets_are_readable(
    aksai_identity: WorkloadIdentity, aksai_identity_client_id: str, aksai_identity_secrets: list[SecretRead]
) -> None:
    """[hop: Key Vault] Each secret to read (the profile's `[azure] key_vaults`, or the objects of the
    SecretProviderClasses the pods mount) is readable with the ServiceAccount's identity."""
    failed = [s for s in aksai_identity_secrets if not s.ok]
    fixes = []
    for read in failed:
        if read.status == 403:
            fixes.append(
                f'az role assignment create --role "Key Vault Secrets User" --assignee {aksai_identity_client_id} '
                f"--scope $(az keyvault show -n {read.vault} --query id -o tsv)"
            )
        elif read.status == 404:
            fixes.append(
                f"create the secret (az keyvault secret set --vault-name {read.vault} --name {read.name} ...) or "
                "fix the objectName that names it"
            )
    if failed:
        pytest.fail(
            f"[hop: Key Vault] {aksai_identity.ref} cannot read {len(failed)} of {len(aksai_identity_secrets)} "
            f"secret(s): {'; '.join(str(s) for s in failed)}. Fix: "
            f"{'; '.join(dict.fromkeys(fixes)) or 'see the error'}",
            pytrace=False,
        )


def test_secret_provider_classes_use_the_identity(
    aksai_settings: Settings, aksai_identity: WorkloadIdentity, request: pytest.FixtureRequest
) -> None:
    """[hop: SecretProviderClass] Each Azure SecretProviderClass the ServiceAccount's pods mount names, in
    `clientID`, an identity federated for the ServiceAccount (the CSI driver exchanges the pod's token as that
    client id, ignoring the ServiceAccount's annotation), with a vault and objects to mount."""
    sa = aksai_identity
    if not sa.provider_classes:
        pytest.skip(f"no pod of {sa.ref} mounts an Azure SecretProviderClass")
    for spc in sa.provider_classes:
        assert not spc.problem, f"[hop: SecretProviderClass] {spc.ref}: {spc.problem}"
        assert spc.keyvault and spc.objects, (
            f"[hop: SecretProviderClass] {spc.ref} names no keyvaultName or no objects ({spc.source})"
        )
        assert spc.client_id, (
            f"[hop: SecretProviderClass] {spc.ref} has no clientID: the Azure provider falls back to a "
            "service principal (failed to get credentials, nodePublishSecretRef secret is not set). Fix: set "
            f"spec.parameters.clientID to {sa.client_id or 'the client id of the identity federated for ' + sa.ref}"
        )
        if spc.client_id == sa.client_id:
            continue
        exchanger: Callable[[str], Exchange] | None = None
        if aksai_settings.manifests is None:
            exchanger = request.getfixturevalue("aksai_exchanger")
        if exchanger is None:
            pytest.fail(
                f"[hop: SecretProviderClass] {spc.ref} uses clientID {spc.client_id}, but its pods run as {sa.ref} "
                f"whose client id is {sa.client_id or '(none)'} ({spc.source}). The CSI driver exchanges the pod's "
                f"token as {spc.client_id}, which must be federated for {sa.subject}. Fix: set "
                f"spec.parameters.clientID to {sa.client_id or 'the ServiceAccount annotation'}",
                pytrace=False,
            )
        answer = exchanger(spc.client_id)
        if not answer.ok:
            pytest.fail(
                f"[hop: SecretProviderClass] {spc.ref} uses clientID {spc.client_id}, not {sa.ref}'s "
                f"{sa.client_id or '(none)'}, and Entra ID refuses that identity the pod's token ({answer}). The "
                "pods will stay ContainerCreating with FailedMount. Fix: set spec.parameters.clientID to "
                f"{sa.client_id}",
                pytrace=False,
            )
        warnings.warn(
            AksaiWarning(
                f"{spc.ref} uses clientID {spc.client_id}, another identity than {sa.ref}'s annotation "
                f"({sa.client_id}); it is federated for {sa.subject}, so mounts work"
            ),
            stacklevel=1,
        )
