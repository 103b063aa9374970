"""Each identity fault fails exactly the check of the hop it breaks (and the hops after it, with one line
naming the root cause), with a message that names the hop, what was observed and the fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults._matrix import Case, Verdicts, failing

IDENTITY_CHECKS = {
    "test_serviceaccount_annotations",
    "test_label_is_on_the_pod_templates",
    "test_webhook_injects_the_identity",
    "test_token_names_the_cluster_issuer",
    "test_issuer_publishes_the_signing_key",
    "test_entra_exchange",
    "test_key_vault_secrets_are_readable",
    "test_secret_provider_classes_use_the_identity",
    "test_service_bus_accepts_the_identitys_messages",
    "test_a_mounting_pod_gets_the_secrets",
    "test_kubelet_rotates_the_projected_token",
    "test_keda_operator_reads_the_queue",
}
SCENARIO = str(Path(__file__).parent / "scenarios" / "identity-keda.yaml")
"""The default lab with the lab's azure-workload TriggerAuthentication (see the file)."""
SUITE = ("test_identity.py",)
SERVICE_BUS = (
    '[clusters.fast.azure]\nservice_bus_namespace = "sb-aksai-lab.servicebus.windows.net"\n'
    'service_bus_queue = "inference-requests"\n'
    # The workload's chain; the KEDA operator's (kube-system/keda-operator) is judged by the keda suite.
    'service_accounts = ["inference/inference-sa"]'
)

# fault → (the check that explains it, what its message must say, the checks that fail with a root-cause line)
FAULTS: dict[str, tuple[str, tuple[str, ...], set[str]]] = {
    "wi-subject-mismatch": (
        "test_entra_exchange",
        (
            "at the federated credential subject hop",
            "AADSTS700213",
            "--subject 'system:serviceaccount:inference:inference-sa'",
        ),
        {
            "test_key_vault_secrets_are_readable",
            "test_service_bus_accepts_the_identitys_messages",
            "test_a_mounting_pod_gets_the_secrets",
        },
    ),
    "wi-issuer-mismatch": (
        "test_entra_exchange",
        ("at the federated credential issuer hop", "AADSTS700211", "--issuer 'https://127.0.0.1:"),
        {
            "test_key_vault_secrets_are_readable",
            "test_service_bus_accepts_the_identitys_messages",
            "test_a_mounting_pod_gets_the_secrets",
        },
    ),
    "wi-audience-mismatch": (
        "test_entra_exchange",
        (
            "at the federated credential audience hop",
            "AADSTS700212",
            "--audiences 'api://AzureADTokenExchange'",
        ),
        {
            "test_key_vault_secrets_are_readable",
            "test_service_bus_accepts_the_identitys_messages",
            "test_a_mounting_pod_gets_the_secrets",
        },
    ),
    "wi-label-on-serviceaccount": (
        "test_label_is_on_the_pod_templates",
        (
            "[hop: pod label]",
            "where the Workload Identity webhook never looks",
            "Deployment inference/inference-worker",
        ),
        set(),
    ),
    "wi-missing-client-id": (
        "test_serviceaccount_annotations",
        (
            "has no azure.workload.identity/client-id annotation",
            "kubectl annotate serviceaccount -n inference",
        ),
        {
            "test_webhook_injects_the_identity",
            "test_entra_exchange",
            "test_key_vault_secrets_are_readable",
            "test_service_bus_accepts_the_identitys_messages",
        },
    ),
    "wi-webhook-down": (
        "test_webhook_injects_the_identity",
        (
            "[hop: webhook]",
            'failed calling webhook "mutation.azure-workload-identity.io"',
            "--enable-workload-identity",
        ),
        set(),
    ),
    "oidc-discovery-unreachable": (
        "test_issuer_publishes_the_signing_key",
        ("does not serve its discovery document and JWKS", "discovery HTTP 404", "--enable-oidc-issuer"),
        {
            "test_entra_exchange",
            "test_key_vault_secrets_are_readable",
            "test_service_bus_accepts_the_identitys_messages",
            "test_a_mounting_pod_gets_the_secrets",
            "test_keda_operator_reads_the_queue",
        },
    ),
    "kv-no-role": (
        "test_key_vault_secrets_are_readable",
        (
            "[hop: Key Vault]",
            "HTTP 403 Forbidden (ForbiddenByRbac)",
            'az role assignment create --role "Key Vault Secrets User"',
        ),
        {"test_a_mounting_pod_gets_the_secrets"},
    ),
    "kv-secret-missing": (
        "test_key_vault_secrets_are_readable",
        (
            "kv-aksai-lab/hf-token answered HTTP 404 SecretNotFound",
            "az keyvault secret set --vault-name kv-aksai-lab --name hf-token",
        ),
        {"test_a_mounting_pod_gets_the_secrets"},
    ),
    "sb-no-send-claim": (
        "test_service_bus_accepts_the_identitys_messages",
        (
            "[hop: Service Bus] inference/inference-sa cannot send to",
            "Unauthorized access. 'Send' claim(s) are required to perform this operation.",
            "(condition amqp:unauthorized-access)",
            '--role "Azure Service Bus Data Sender"',
        ),
        set(),
    ),
    "wi-token-not-rotated": (
        "test_kubelet_rotates_the_projected_token",
        ("[hop: token rotation]", "did not replace the projected token", "kubelet", "AADSTS700024"),
        set(),
    ),
    "keda-identity-not-federated": (
        "test_keda_operator_reads_the_queue",
        (
            "[hop: KEDA azure-workload] TriggerAuthentication inference/azure-sb-auth",
            "as 9e1f2a3b-4c5d-4e6f-8a7b-0c1d2e3f4a5b",
            "AADSTS70025",
            "has no configured federated identity credentials",
            "az identity federated-credential create --name keda-operator",
        ),
        set(),
    ),
    "spc-wrong-client-id": (
        "test_secret_provider_classes_use_the_identity",
        (
            "[hop: SecretProviderClass] inference/lab-secrets uses clientID",
            "AADSTS700213",
            "set spec.parameters.clientID to 5b0e9f0c",
        ),
        set(),
    ),
}

# fault → checks that fail with a full message of their own too (an observation of the same hop, not a
# consequence of it): the static SecretProviderClass check judges the class, the mount check sees a pod fail.
ALSO_EXPLAINED: dict[str, dict[str, tuple[str, ...]]] = {
    "spc-wrong-client-id": {
        "test_a_mounting_pod_gets_the_secrets": (
            "[hop: SecretProviderClass mount] a probe pod running as inference/inference-sa that mounts "
            "inference/lab-secrets (clientID 9e1f2a3b-4c5d-4e6f-8a7b-0c1d2e3f4a5b",
            "stays ContainerCreating: FailedMount object hf-token (secret); AADSTS700213",
            "Fix: set spec.parameters.clientID of inference/lab-secrets to 5b0e9f0c-3a52-4d8e-9f43-2c1f8e6a7d10",
            "az identity federated-credential create",
        )
    },
}

TIME_SCALE = 120
"""Not the matrix's 600×: the kubelet rotates a 600 s token in a 120 cluster-second window (80 % to 100 % of
its lifetime), 0.2 wall seconds at 600×, which a loaded machine's event loop can miss."""

CASES: dict[str, Case] = {
    "identity-healthy": Case(suites=SUITE, profile=SERVICE_BUS, scenario=SCENARIO, time_scale=TIME_SCALE),
    "identity-healthy-strict": Case(
        suites=SUITE, strict=True, profile=SERVICE_BUS, scenario=SCENARIO, time_scale=TIME_SCALE
    ),
    **{
        fault: Case((fault,), suites=SUITE, profile=SERVICE_BUS, scenario=SCENARIO, time_scale=TIME_SCALE)
        for fault in FAULTS
    },
}


@pytest.mark.parametrize("case", ["identity-healthy", "identity-healthy-strict"])
def test_the_default_lab_passes_every_identity_check(matrix: Callable[[str], Verdicts], case: str) -> None:
    verdicts = matrix(case)
    assert set(verdicts) == IDENTITY_CHECKS
    assert {n: c["outcome"] for n, c in verdicts.items() if c["outcome"] != "passed"} == {}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_identity_fault_fails_exactly_its_hop(matrix: Callable[[str], Verdicts], fault: str) -> None:
    explainer, says, dependents = FAULTS[fault]
    also = ALSO_EXPLAINED.get(fault, {})
    failed = failing(matrix(fault))
    assert set(failed) == {explainer} | dependents | set(also), failed
    for fragment in says:
        assert fragment in failed[explainer], (fragment, failed[explainer])
    for name, fragments in also.items():
        for fragment in fragments:
            assert fragment in failed[name], (fragment, failed[name])
    for name in dependents:
        assert "root cause: " in failed[name], (name, failed[name])
        assert explainer in failed[name], (name, failed[name])
