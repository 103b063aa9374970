"""Azure Workload Identity, hop by hop: does each ServiceAccount's chain reach Key Vault, and if not, which
hop broke and how to fix it?

ServiceAccount annotations → the label on the pod templates → the webhook's injection into a probe pod →
the TokenRequest token → the issuer's discovery and JWKS → the Entra ID exchange → Key Vault → Service Bus →
the SecretProviderClasses' identity → a pod that mounts them → the kubelet's token rotation; and KEDA's
azure-workload TriggerAuthentications, walked as the KEDA operator up to the queue-depth read. Each check runs once per ServiceAccount under test (the profile's
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
    KedaIdentity,
    QueueSend,
    SecretMount,
    SecretRead,
    Settings,
    TokenClaims,
    TokenRotation,
    WorkloadIdentity,
    aadsts_meaning,
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


@pytest.mark.disruptive
def test_service_bus_accepts_the_identitys_messages(
    aksai_identity: WorkloadIdentity, aksai_identity_client_id: str, aksai_identity_queue_send: QueueSend
) -> None:
    """[hop: Service Bus] A probe message (one-minute time to live, property `aksai-run`) sent to
    `[azure] service_bus_queue` over AMQP with the ServiceAccount's identity is accepted: the identity holds
    the Send claim on the queue. Disruptive: the queue's consumers receive the probe."""
    sent = aksai_identity_queue_send
    if not sent.ok:
        pytest.fail(
            f"[hop: Service Bus] {aksai_identity.ref} cannot send to {sent.namespace}/{sent.queue}: {sent.error}"
            + (f" (condition {sent.condition})" if sent.condition else "")
            + ". Service Bus refuses an entity link without the 'Send' claim. Fix: az role assignment create "
            f'--role "Azure Service Bus Data Sender" --assignee {aksai_identity_client_id} --scope $(az '
            f"servicebus namespace show -n {sent.namespace.split('.')[0]} -g <rg> --query id -o tsv)",
            pytrace=False,
        )


_ISSUER_CODES = frozenset({50166, 90061, 501661, 7000272})
"""AADSTS codes that blame the cluster's OIDC issuer, whichever identity presents the token."""
_AADSTS = re.compile(r"AADSTS(\d+): (.*?)(?: Trace ID:|\"|$)", re.DOTALL)
_RESPONSE = re.compile(r"RESPONSE (\d+): [^\n]*(?:\nERROR CODE: (\S+))?")
_OBJECT = re.compile(r"failed to get objectType:(\w+), objectName:([^,]+), objectVersion:")


def _mount_summary(text: str) -> str:
    """The FailedMount text cut to what names the broken hop (the object, the AADSTS or HTTP error)."""
    parts = []
    obj = _OBJECT.search(text)
    if obj:
        parts.append(f"object {obj.group(2)} ({obj.group(1)})")
    aadsts = _AADSTS.search(text)
    response = _RESPONSE.search(text)
    if aadsts:
        parts.append(f"AADSTS{aadsts.group(1)}: {aadsts.group(2).strip()}")
    elif response:
        parts.append(f"HTTP {response.group(1)}" + (f" {response.group(2)}" if response.group(2) else ""))
    else:
        parts.append(text.rsplit("error: ", 1)[-1].strip().splitlines()[0][:300])
    return "; ".join(parts)


@pytest.mark.disruptive
def test_a_mounting_pod_gets_the_secrets(
    aksai_identity: WorkloadIdentity, aksai_identity_mounts: SecretMount, request: pytest.FixtureRequest
) -> None:
    """[hop: SecretProviderClass mount] A probe pod running as the ServiceAccount that mounts each of its
    Azure SecretProviderClasses starts (the CSI driver exchanged the pod's token as the class's clientID and
    read every object), sees one file per object (alias, else name; shown as lengths and hashes only) and,
    while it mounts the class, the Secrets its `secretObjects` sync with their keys."""
    sa, probe = aksai_identity, aksai_identity_mounts
    classes = [c for c in sa.provider_classes if not c.problem]
    if not probe.started:
        text = probe.failure
        spc = next((c for c in classes if c.name in text), classes[0])
        if len(classes) > 1:
            index = re.search(r'for volume "aksai-spc-(\d+)"', text)
            spc = classes[int(index.group(1))] if index else spc
        code = _AADSTS.search(text)
        response = _RESPONSE.search(text)
        if spc.client_id and spc.client_id == sa.client_id and response:
            reads = request.getfixturevalue("aksai_identity_secrets")
            broken = [r for r in reads if not r.ok and r.vault == spc.keyvault and r.name in spc.objects]
            if broken:
                pytest.fail(
                    f"root cause: {broken[0]} (explained by test_key_vault_secrets_are_readable)",
                    pytrace=False,
                )
        if code and spc.client_id != sa.client_id:
            fix = (
                f"set spec.parameters.clientID of {spc.ref} to {sa.client_id or 'the client id federated for ' + sa.subject}"
                f" (the identity federated for {sa.subject}), or federate {spc.client_id} for it: az identity "
                f"federated-credential create --name {sa.name} --identity-name <identity with client id "
                f"{spc.client_id}> --resource-group <rg> --issuer <the cluster's OIDC issuer> --subject {sa.subject} "
                "--audiences api://AzureADTokenExchange"
            )
        elif code:
            fix = aadsts_meaning(int(code.group(1)), None, spc.client_id).fix
        elif response and response.group(1) == "403":
            fix = (
                f'az role assignment create --role "Key Vault Secrets User" --assignee {spc.client_id} --scope '
                f"$(az keyvault show -n {spc.keyvault} --query id -o tsv)"
            )
        elif response and response.group(1) == "404":
            fix = (
                f"create the object in {spc.keyvault} (az keyvault secret set --vault-name {spc.keyvault} ...) or fix "
                f"the objectName in {spc.ref}"
            )
        else:
            fix = (
                f"read the driver's message (kubectl describe pod -n {sa.namespace} {probe.pod or '<probe>'})"
            )
        pytest.fail(
            f"[hop: SecretProviderClass mount] a probe pod running as {sa.ref} that mounts {spc.ref} (clientID "
            f"{spc.client_id or '(none)'}, vault {spc.keyvault}) stays ContainerCreating: FailedMount "
            f"{_mount_summary(text)}. Pods of {sa.ref} that mount it never start. Fix: {fix}",
            pytrace=False,
        )
    problems = []
    for spc in classes:
        seen = probe.files.get(spc.ref, {})
        missing = [f for f in spc.files if f not in seen]
        unreadable = [f for f, fp in seen.items() if fp == "unreadable"]
        if missing or unreadable:
            problems.append(
                f"{spc.ref} mounted {sorted(seen) or 'nothing'}, without {missing or unreadable} (objects "
                f"{list(spc.objects)})"
            )
        for secret, keys in spc.synced:
            present = probe.synced.get(secret)
            if present is None:
                problems.append(
                    f"{spc.ref} syncs Secret {secret}, which does not exist while a pod mounts the class "
                    "(the driver needs syncSecret.enabled and RBAC on secrets)"
                )
            elif not set(keys) <= set(present):
                problems.append(f"Secret {secret} synced from {spc.ref} has keys {present}, not {list(keys)}")
    assert not problems, (
        f"[hop: SecretProviderClass mount] the probe pod {probe.pod} of {sa.ref} started, but "
        + "; ".join(problems)
        + ". Fix: make each objectAlias/objectName match the secretObjects[].data[].objectName"
    )


@pytest.mark.disruptive
def test_kubelet_rotates_the_projected_token(
    aksai_identity: WorkloadIdentity, aksai_token_rotation: TokenRotation
) -> None:
    """[hop: token rotation] The kubelet replaces a pod's projected service-account token before it
    expires (upstream: at 80 % of its lifetime): a probe pod with the shortest token (600 s) sees a new one
    before it expires (on a live cluster the kubelet writes it on its next volume sync after 80 %). On a
    live cluster this check takes eight to ten minutes."""
    rotation = aksai_token_rotation
    assert not rotation.problem, f"[hop: token rotation] {rotation.problem}"
    assert rotation.rotated, (
        f"[hop: token rotation] the kubelet did not replace the projected token of probe pod {rotation.pod} "
        f"({aksai_identity.ref}, lifetime {rotation.lifetime_s} s, {rotation.first}) within "
        f"{rotation.waited_s:.0f} cluster seconds; the kubelet rotates it at 80 % of its lifetime, so "
        "long-running pods present an expired assertion to Entra ID (AADSTS700024). Fix: check the kubelet of "
        "the node (journalctl -u kubelet: 'token manager'), its clock, and that nothing mounts a frozen copy of "
        "the token; upgrade the node image (az aks nodepool upgrade --node-image-only)"
    )
    assert rotation.waited_s >= 0.7 * rotation.lifetime_s, (
        f"[hop: token rotation] the token of {rotation.pod} changed after {rotation.waited_s:.0f} s, long "
        f"before 80 % of its {rotation.lifetime_s} s lifetime"
    )


def test_keda_operator_reads_the_queue(aksai_keda_identities: list[KedaIdentity]) -> None:
    """[hop: KEDA azure-workload] For each TriggerAuthentication with podIdentity.provider azure-workload,
    the KEDA operator's own ServiceAccount token is exchanged at Entra ID as `identityId` (else the
    ServiceAccount's client-id) and that identity reads the queue depth of every queue its ScaledObjects
    name (`get_queue_runtime_properties`, what KEDA's azure-servicebus scaler reads)."""
    problems: list[str] = []
    causes: list[str] = []
    for chain in aksai_keda_identities:
        who = f"{chain.trigger_authentication}: the KEDA operator ({chain.operator}, from {chain.operator_source})"
        if chain.problem:
            fix = (
                f"set spec.podIdentity.identityId in {chain.trigger_authentication} or annotate the operator's "
                f"ServiceAccount: kubectl annotate serviceaccount -n {chain.operator.split('/')[0]} "
                f"{chain.operator.split('/')[1]} azure.workload.identity/client-id=<client id>"
                if "identityId" in chain.problem
                else "the identity running the suite needs create on serviceaccounts/token there"
            )
            problems.append(f"{who}: {chain.problem}. Fix: {fix}")
            continue
        answer = chain.exchange
        if answer is not None and not answer.ok and answer.code in _ISSUER_CODES:
            causes.append(
                f"root cause: Entra ID cannot validate the cluster's service-account tokens ({answer}) "
                "(explained by test_issuer_publishes_the_signing_key)"
            )
            continue
        if answer is not None and not answer.ok:
            hop = aadsts_meaning(answer.code).hop
            problems.append(
                f"{who}: Entra ID refused its token as {chain.client_id} ({chain.client_id_source}) at the {hop} "
                f"hop: {answer}. KEDA logs 'error getting service bus entity length' and the ScaledObject never "
                f"scales. Fix: az identity federated-credential create --name keda-operator --identity-name "
                f"<identity with client id {chain.client_id}> --resource-group <rg> --issuer {chain.issuer!r} "
                f"--subject {chain.subject!r} --audiences api://AzureADTokenExchange"
            )
            continue
        if not chain.queues:
            problems.append(
                f"{who}: no queue to read (no azure-servicebus ScaledObject uses it and the profile's [azure] "
                "names no service_bus_namespace/service_bus_queue)"
            )
        for depth in chain.queues:
            if depth.ok:
                continue
            if depth.status == 401:
                fix = (
                    f'az role assignment create --role "Azure Service Bus Data Owner" --assignee {chain.client_id} '
                    f"--scope $(az servicebus namespace show -n {depth.namespace.split('.')[0]} -g <rg> --query "
                    "id -o tsv) (KEDA reads runtime properties through the management API: Manage/EntityRead)"
                )
            elif depth.status == 404:
                fix = "fix queueName/namespace in the ScaledObject's trigger metadata, or create the queue"
            else:
                fix = "check the namespace's network access from the cluster"
            problems.append(
                f"{who} as {chain.client_id} cannot read the depth of {depth.namespace}/{depth.queue}: {depth}. "
                f"Fix: {fix}"
            )
    assert not problems, "[hop: KEDA azure-workload] " + "; ".join(problems)
    if causes:
        pytest.fail(causes[0], pytrace=False)
