"""Evidence files of a real run: every kind of check (kaito, api, keda, nap, identity, load, sizing) names the
objects it is about, and each gets one small file with its YAML, events and pod log tails, with no secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pytest_aksai.kube._subjects import MAX_CHARS, scrubbed
from tests.faults._matrix import Case, run_suites

ONE_CHECK_PER_AREA = {
    "test_workspace_is_ready": "Workspace",  # kaito
    "test_health": "Workspace",  # api
    "test_target_is_what_runs": "ScaledObject",  # keda
    "test_nodeclass_is_ready": "NodePool",  # nap
    "test_serviceaccount_annotations": "ServiceAccount",  # identity
    "test_error_rate": "Workspace",  # load (a run the busy machine finds invalid still errors with evidence)
    "test_sizing_invariant": "",  # sizing: the object of each finding
}
SECRETS_OF_THE_DEFAULT_LAB = (
    "hf_simulatedTokenNotARealOne0000000000",
    "sim-foundry-key-0000000000000000",
    "SharedAccessKey=notreal=",
    "aksai-canary-3f9c1e7a5b2d4068",
)


@pytest.mark.timeout(600)
def test_every_kind_of_check_gets_its_objects_yaml_events_and_logs(tmp_path: Path) -> None:
    case = Case(
        suites=(
            "test_kaito.py",
            "test_api_surface.py",
            "test_keda.py",
            "test_nap.py",
            "test_identity.py",
            "test_load.py",
            "test_sizing.py",
        ),
        time_scale=60,
        args=("--aksai-report-all", "-k", " or ".join(ONE_CHECK_PER_AREA)),
    )
    run_suites(tmp_path, case)
    folder = tmp_path / "report"
    data = json.loads((folder / "report.json").read_text())
    seen_areas: set[str] = set()
    for check in data["checks"]:
        name = check["nodeid"].split("::", 1)[1].split("[")[0]
        if name not in ONE_CHECK_PER_AREA:
            continue
        seen_areas.update(check["areas"])
        assert check["object_files"], f"{check['nodeid']} names no object"
        kind = ONE_CHECK_PER_AREA[name]
        if kind:
            assert any(o.startswith(f"{kind}/") for o in check["objects"]), check["objects"]
        evidence = (folder / check["evidence_file"]).read_text()
        assert "objects involved" in evidence
        for file in check["object_files"]:
            assert file in evidence
            text = (folder / file).read_text()
            assert len(text) <= MAX_CHARS
            assert "\nkind: " in text and "managedFields" not in text, file
    assert {"kaito", "api", "keda", "nap", "identity", "load", "sizing"} <= seen_areas, seen_areas
    # The Workspace's cold-start waterfall gets the model pod's image pull and engine start from its events.
    phases = {
        p["label"]: p for p in data["timelines"]["kaito/inference/workspace-phi4-mini/cold-start"]["phases"]
    }
    pull, engine = (
        phases["image pull (Pulling → Pulled)"],
        phases["engine start (container Started → pod Ready)"],
    )
    assert 0 < pull["start"] < pull["end"] <= engine["start"] < engine["end"], phases
    objects = list((folder / "evidence" / "objects").iterdir())
    # A Workspace's file brings its pods' log tails; no Secret or ConfigMap is ever read.
    workspace = next(p for p in objects if p.name.startswith("Workspace-"))
    assert "--- log of pod" in workspace.read_text()
    assert not [p for p in objects if p.name.startswith(("Secret-", "ConfigMap-"))]
    for path in folder.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            for secret in SECRETS_OF_THE_DEFAULT_LAB:
                assert secret not in text, f"{path.relative_to(folder)} holds a secret value"


def test_scrubbing_drops_managed_fields_and_secret_named_env_values() -> None:
    pod = yaml.safe_load(
        """
metadata:
  name: p
  managedFields: [{manager: kubectl}]
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{"env": "HF_TOKEN=hf_x"}'
    kept: "yes"
spec:
  containers:
  - name: vllm
    env:
    - {name: HF_TOKEN, value: hf_realLookingValue}
    - {name: SB_CONNECTION_STRING, value: "Endpoint=sb://x/;SharedAccessKey=abc"}
    - {name: AZURE_CLIENT_ID, value: 2a3b4c5d}
    - {name: API_KEY, valueFrom: {secretKeyRef: {name: s, key: k}}}
"""
    )
    out = scrubbed(pod)
    assert "managedFields" not in out["metadata"]
    assert out["metadata"]["annotations"] == {"kept": "yes"}
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in out["spec"]["containers"][0]["env"]}
    assert env == {
        "HF_TOKEN": "[redacted]",
        "SB_CONNECTION_STRING": "[redacted]",
        "AZURE_CLIENT_ID": "2a3b4c5d",
        "API_KEY": {"secretKeyRef": {"name": "s", "key": "k"}},
    }
    assert pod["spec"]["containers"][0]["env"][0]["value"] == "hf_realLookingValue", (
        "the input is not changed"
    )
