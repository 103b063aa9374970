"""The identity suite end to end: static mode on the seed lab's manifests, the tenant changed at run time,
and the canary proving no secret value, token or kubeconfig credential reaches any output."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_aksai.sim import SimCluster, contract

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "suites" / "test_identity.py"
SEED_LAB = REPO / ".." / "shared" / "upstream" / "aks-ai-lab-manifests" / "workload-identity"
SCENARIO = str(REPO / "tests" / "faults" / "scenarios" / "identity-keda.yaml")
"""The default lab with the lab's azure-workload TriggerAuthentication, so that every hop has something to walk."""


def _run(
    folder: Path, *args: str, suites: tuple[Path, ...] = (SUITE,)
) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, Any]]]:
    for suite in suites:
        shutil.copy(suite, folder / suite.name)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "--aksai-report=report", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    report = folder / "report" / "report.json"
    assert report.is_file(), run.stdout[-3000:]
    checks = json.loads(report.read_text())["checks"]
    return run, {c["nodeid"].split("::")[-1].split("[")[0]: c for c in checks}


@pytest.mark.skipif(not SEED_LAB.is_dir(), reason="the seed lab's manifests are not beside the repository")
def test_static_mode_fails_the_seed_lab_on_the_serviceaccount_label(tmp_path: Path) -> None:
    run, checks = _run(tmp_path, f"--aksai-manifests={SEED_LAB}", "-m", "identity")
    assert run.returncode == 1, run.stdout[-3000:]
    label = checks["test_label_is_on_the_pod_templates"]
    assert label["outcome"] == "failed"
    assert (
        "ServiceAccount inference/inference-sa carries the label azure.workload.identity/use"
        in label["message"]
    )
    assert "serviceaccount.yaml" in label["message"]
    # The lab's placeholders are not client ids either; the hops that need a cluster skip in static mode.
    assert (
        "is '<WORKLOAD_IDENTITY_CLIENT_ID>', not a client id"
        in checks["test_serviceaccount_annotations"]["message"]
    )
    assert checks["test_entra_exchange"]["outcome"] == "skipped"
    assert checks["test_key_vault_secrets_are_readable"]["outcome"] == "skipped"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimCluster]:
    with SimCluster(
        kubeconfig_path=tmp_path_factory.mktemp("sim") / "kubeconfig", time_scale=600, scenario=SCENARIO
    ) as cluster:
        yield cluster


def _profile(folder: Path, sim: SimCluster, extra: str = "") -> None:
    (folder / "aksai.toml").write_text(
        f'[clusters.running]\nprovider = "sim"\nkubeconfig = "{sim.kubeconfig_path}"\n'
        f'allow = ["disruptive"]\n[clusters.running.azure]\n'
        'service_bus_namespace = "sb-aksai-lab.servicebus.windows.net"\nservice_bus_queue = "inference-requests"\n'
        # The workload's chain; the KEDA operator's own is walked by test_keda_operator_reads_the_queue.
        'service_accounts = ["inference/inference-sa"]\n'
        f"{extra}"
    )


def _tenant_configmap(sim: SimCluster) -> tuple[Any, dict[str, Any]]:
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(str(sim.kubeconfig_path)))
    cm = api.read_namespaced_config_map(contract.AZURE_CONFIGMAP, contract.SIM_NAMESPACE)
    return api, yaml.safe_load(cm.data[contract.KEY_TENANT])


def _write_tenant(api: Any, tenant: dict[str, Any]) -> None:
    api.patch_namespaced_config_map(
        contract.AZURE_CONFIGMAP,
        contract.SIM_NAMESPACE,
        {"data": {contract.KEY_TENANT: yaml.safe_dump(tenant, sort_keys=False)}},
    )


def test_a_tenant_change_at_run_time_breaks_and_restores_the_entra_hop(
    sim: SimCluster, tmp_path: Path
) -> None:
    _profile(tmp_path, sim)
    api, tenant = _tenant_configmap(sim)
    [workload] = [i for i in tenant["identities"] if i["name"] == "workload-identity"]
    subject = workload["federatedCredentials"][0]["subject"]
    workload["federatedCredentials"][0]["subject"] = "system:serviceaccount:inference:Inference-SA"
    _write_tenant(api, tenant)
    try:
        run, checks = _run(tmp_path, "--aksai-cluster=running")
        entra = checks["test_entra_exchange"]
        assert entra["outcome"] == "failed", run.stdout[-3000:]
        assert "AADSTS700213" in entra["message"] and "federated credential subject" in entra["message"]
    finally:
        workload["federatedCredentials"][0]["subject"] = subject
        _write_tenant(api, tenant)
    run, checks = _run(tmp_path, "--aksai-cluster=running")
    assert run.returncode == 0, run.stdout[-3000:]
    assert {c["outcome"] for c in checks.values()} == {"passed"}


def test_an_invalid_tenant_is_refused_with_an_event_and_the_old_one_stays(
    sim: SimCluster, tmp_path: Path
) -> None:
    api, tenant = _tenant_configmap(sim)
    api.patch_namespaced_config_map(
        contract.AZURE_CONFIGMAP, contract.SIM_NAMESPACE, {"data": {contract.KEY_TENANT: "identities: 7\n"}}
    )
    try:
        from kubernetes import watch

        stream = watch.Watch().stream(
            api.list_namespaced_event,
            contract.SIM_NAMESPACE,
            field_selector=f"involvedObject.name={contract.AZURE_CONFIGMAP}",
            timeout_seconds=10,
        )
        reasons = []
        for event in stream:
            reasons.append((event["object"].reason, event["object"].message))
            if event["object"].reason == "InvalidTenant":
                break
        assert any(r == "InvalidTenant" and "tenantId" in m for r, m in reasons), reasons
    finally:
        _write_tenant(api, tenant)
    _profile(tmp_path, sim)
    run, _ = _run(tmp_path, "--aksai-cluster=running", "-k", "entra")
    assert run.returncode == 0, run.stdout[-3000:]


CANARY_RUNS = {
    "healthy": (),
    "early-hops": (
        "wi-label-on-serviceaccount",
        "wi-webhook-down",
        "spc-wrong-client-id",
        "wi-subject-mismatch",
    ),
    "issuer": ("oidc-discovery-unreachable", "wi-missing-client-id"),
    "vault": ("kv-no-role",),
    "canary-missing": ("kv-secret-missing=aksai-canary",),
    "rotation-and-keda": ("wi-token-not-rotated", "keda-identity-not-federated", "sb-no-send-claim"),
    # Every suite, failing in every area at once (kaito: a wrong served name; nap: no consolidation;
    # keda: minReplicaCount 1; identity: no Key Vault role; load: a slow TTFT), with a Secret in the cluster.
    "every-area": (
        "vllm-wrong-served-name",
        "nap-no-consolidation",
        "keda-min-replicas-one",
        "kv-no-role",
        "vllm-slow-ttft",
    ),
}
EVERY_SUITE = tuple(sorted((REPO / "suites").glob("test_*.py")))
SECRET_DATA = "aksai-secret-data-canary-7f3c1e"


def _secret(sim: SimCluster, value: str) -> None:
    """A Secret the way a lab keeps its Hugging Face token, in the workloads' namespace."""
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(str(sim.kubeconfig_path)))
    api.create_namespaced_secret(
        "inference", {"metadata": {"name": "hf-token"}, "stringData": {"HF_TOKEN": value}}
    )


@pytest.mark.parametrize("name", list(CANARY_RUNS))
def test_no_secret_value_token_or_credential_reaches_any_output(tmp_path: Path, name: str) -> None:
    """The vault's canary (and every other secret), every token and the kubeconfig's credential appear in no
    terminal output, JUnit file, run report or log, on a healthy run and on runs failing at every hop (one
    sub-run per parameter, so that each stays within the per-test timeout)."""
    faults = CANARY_RUNS[name]
    folder = tmp_path / name
    folder.mkdir()
    with SimCluster(
        kubeconfig_path=folder / "kubeconfig",
        time_scale=600 if name == "every-area" else 120,
        faults=faults,
        scenario=SCENARIO,
    ) as sim:
        _, tenant = _tenant_configmap(sim)
        secrets = [v for vault in tenant["keyVaults"] for v in vault["secrets"].values()]
        credential = yaml.safe_load(sim.kubeconfig_path.read_text())["users"][0]["user"]["token"]
        every_area = name == "every-area"
        if every_area:
            _secret(sim, SECRET_DATA)
            secrets += [SECRET_DATA, base64.b64encode(SECRET_DATA.encode()).decode()]
        _profile(
            folder,
            sim,
            '[clusters.running.azure.key_vaults]\nkv-aksai-lab = ["aksai-canary", "hf-token", "servicebus-conn"]\n',
        )
        run, checks = _run(
            folder,
            "--aksai-cluster=running",
            "-vv",
            "-rA",
            "--log-level=DEBUG",
            "--log-file=run.log",
            "--log-file-level=DEBUG",
            "--junitxml=junit.xml",
            "--aksai-keep",
            "--aksai-report-all",  # every check's evidence file and its objects' files, to search too
            *(("--showlocals", "--tb=long") if every_area else ()),
            suites=EVERY_SUITE if every_area else (SUITE,),
        )
        if name == "healthy":
            assert {c["outcome"] for c in checks.values()} == {"passed"}, run.stdout[-3000:]
        else:
            assert any(c["outcome"] == "failed" for c in checks.values())
        if every_area:  # a failure in every area's suite, so that every area's messages are searched
            every = json.loads((folder / "report" / "report.json").read_text())["checks"]
            failed_suites = {c["nodeid"].split("::")[0] for c in every if c["outcome"] in ("failed", "error")}
            wanted = {s.name for s in EVERY_SUITE} - {"test_api_surface.py", "test_sizing.py"}  # these pass
            assert failed_suites >= wanted, (failed_suites, run.stdout[-3000:])
    texts = [run.stdout, run.stderr]
    texts += [
        p.read_text(errors="replace")
        for p in folder.rglob("*")
        if p.is_file() and p.suffix != ".py" and p.name != "kubeconfig" and p.name != "aksai.toml"
    ]
    for text in texts:
        for value in [*secrets, credential]:
            assert value not in text, f"{name}: a secret value or credential leaked"
        assert not re.search(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.", text), f"{name}: a JWT leaked"
    if name == "canary-missing":
        message = checks["test_key_vault_secrets_are_readable"]["message"]
        assert "kv-aksai-lab/aksai-canary answered HTTP 404 SecretNotFound" in message, message
