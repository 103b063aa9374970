"""The `aks-ai-lab` scenario is the seed lab as published: the sizing suite finds its misconfigurations."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_aksai.sim._scenarios import load_scenario

pytest_plugins = ["pytester"]

SUITES = Path(__file__).resolve().parents[2] / "suites"
LAB_PROFILE = (
    '[clusters.lab]\nprovider = "sim"\n[clusters.lab.sim]\nscenario = "aks-ai-lab"\ntime_scale = 600\n'
)


def test_aks_ai_lab_keeps_the_published_settings_and_the_default_stays_correct() -> None:
    lab, default = load_scenario("aks-ai-lab"), load_scenario("default")

    def config(scenario_objects: list[dict[str, object]]) -> str:
        [cm] = [o for o in scenario_objects if o["kind"] == "ConfigMap"]
        data = cm["data"]
        assert isinstance(data, dict)
        return str(data["inference_config.yaml"])

    assert "max-num-seqs: 64" in config(lab.objects)
    assert "max-num-seqs: 12" in config(default.objects)
    pools = {o["metadata"]["name"]: o for o in lab.objects if o["kind"] == "NodePool"}
    assert sorted(pools) == ["gpu-inference", "gpu-inference-spot"]
    assert all("values: [NC]" in str(p) or "'NC'" in str(p) for p in pools.values())


def test_sizing_suite_finds_the_published_labs_misconfigurations(pytester: pytest.Pytester) -> None:
    shutil.copy(SUITES / "test_sizing.py", pytester.path / "test_sizing.py")
    pytester.makefile(".toml", aksai=LAB_PROFILE)
    result = pytester.runpytest_subprocess(
        "--aksai-cluster=lab", "--aksai-strict", "-p", "no:randomly", "-rf", timeout=300
    )
    failed = {line.split(" ")[1] for line in result.outlines if line.startswith("FAILED ")}
    assert failed == {
        "test_sizing.py::test_sizing_invariant[cluster:lab::Workspace/workspace-phi4-mini::kv-concurrency]",
        "test_sizing.py::test_sizing_invariant[cluster:lab::NodePool/gpu-inference::nodepool-sku-match]",
        "test_sizing.py::test_sizing_invariant[cluster:lab::NodePool/gpu-inference-spot::nodepool-sku-match]",
        # The default lab's KEDA scalers hit the same NodePool bug: no node can come for their replicas.
        *(
            f"test_sizing.py::test_sizing_invariant[cluster:lab::{scaler}::keda-gpu-limit]"
            for scaler in (
                "ScaledObject/workspace-phi4-mini",
                "ScaledObject/vllm-phi4-mini",
                "HTTPScaledObject/vllm-phi4-mini",
            )
        ),
    }, result.outlines
    result.stdout.fnmatch_lines(["*max-num-seqs 64 > 12 sequences*", "*sku-family*family letter only*"])
