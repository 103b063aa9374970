"""A broken cluster gives failures that read as findings, once each; a run that checks nothing is not green."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

SUITES = Path(__file__).resolve().parents[2] / "suites"
FAST_SIM = '[clusters.fast]\nprovider = "sim"\n[clusters.fast.sim]\ntime_scale = 600\n'


def _suites(pytester: pytest.Pytester, *names: str, profile: str = FAST_SIM) -> None:
    for name in names:
        shutil.copy(SUITES / name, pytester.path / name)
    pytester.makefile(".toml", aksai=profile)


def _junit(pytester: pytest.Pytester) -> dict[str, str]:
    """Test case name → `failure`, `error`, `skipped` or `passed`, from the JUnit file."""
    outcomes: dict[str, str] = {}
    for case in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.attrib["name"]] = kinds[0] if kinds else "passed"
    return outcomes


@pytest.mark.parametrize(
    ("selection", "explainer"),
    [
        ("api or kaito", "test_kaito.py::test_workspace_is_ready[inference/workspace-phi4-mini]"),
        ("api", "test_api_surface.py::test_health[inference/workspace-phi4-mini]"),
    ],
)
def test_a_workspace_that_never_gets_ready_fails_each_check_once_and_explains_it_once(
    pytester: pytest.Pytester, selection: str, explainer: str
) -> None:
    _suites(pytester, "test_kaito.py", "test_api_surface.py")
    result = pytester.runpytest_subprocess(
        "--aksai-cluster=fast",
        "--aksai-sim-fault=kaito-inference-oom",
        "-m",
        selection,
        "-p",
        "no:randomly",
        "--junitxml=junit.xml",
        timeout=300,
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = _junit(pytester)
    failing = {name for name, kind in outcomes.items() if kind == "failure"}
    assert "error" not in outcomes.values(), outcomes
    expected_passing = {"test_inference_config_is_valid"} if "kaito" in selection else set()
    assert {name.split("[")[0] for name in outcomes if name not in failing} == expected_passing
    # The failures section (the short summary repeats each message, whole when CI is set).
    text = result.stdout.str().split("short test summary info")[0]
    assert text.count("  timeline: ") == 1, text
    assert text.count(" aksai evidence ") == 1, text
    root_cause_lines = [line for line in text.splitlines() if line.startswith("root cause: ")]
    assert len(root_cause_lines) == len(failing) - 1
    for line in root_cause_lines:
        assert "was OOMKilled" in line, line
        assert line.endswith(f"(explained by {explainer})"), line
    assert "Killed" in text, "the evidence carries the model pod's log tail"


def test_a_misspelt_namespace_fails_and_says_where_the_workspaces_are(pytester: pytest.Pytester) -> None:
    _suites(pytester, "test_kaito.py")
    result = pytester.runpytest_subprocess("--aksai-cluster=fast", "--aksai-namespace=inferenc", timeout=300)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == 0 and "errors" not in outcomes and outcomes["failed"] >= 1
    result.stdout.fnmatch_lines(
        [
            "Found no KAITO Workspace to check in namespace 'inferenc' of cluster 'fast': a run that checks "
            "nothing is not a pass. Expected at least one Workspace (kubectl get workspaces.kaito.sh -A). "
            "Observed no Workspace; Workspaces exist elsewhere: inference/workspace-phi4-mini. Point "
            "--aksai-namespace (or the profile's namespace) at 'inference'.",
        ]
    )


def test_an_empty_manifests_folder_fails_naming_the_folder(pytester: pytest.Pytester) -> None:
    _suites(pytester, "test_sizing.py")
    (pytester.path / "deploy").mkdir()
    result = pytester.runpytest_subprocess("--aksai-manifests=deploy", timeout=120)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*Found nothing to size in the YAML under {pytester.path / 'deploy'}*"])


def test_checks_of_an_area_absent_on_purpose_skip_and_the_run_passes(pytester: pytest.Pytester) -> None:
    _suites(pytester, "test_kaito.py", profile='[clusters.fast]\nprovider = "sim"\nabsent = ["kaito"]\n')
    result = pytester.runpytest_subprocess("--aksai-cluster=fast", "-rs", timeout=120)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["*the kaito area is absent on purpose on cluster 'fast'*"])
    assert "nothing was checked" not in result.stdout.str()


def test_a_run_whose_checks_all_skip_is_not_green(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kaito
        def test_needs_something():
            pytest.skip("nothing here")
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["aksai: nothing was checked: all 1 selected conformance checks skipped*"])


def test_a_project_without_area_checks_is_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("import pytest\n\ndef test_other():\n    pytest.skip('unrelated')\n")
    assert pytester.runpytest().ret == pytest.ExitCode.OK


def test_a_connection_problem_while_collecting_ends_the_run_with_one_paragraph(
    pytester: pytest.Pytester,
) -> None:
    _suites(
        pytester, "test_kaito.py", profile='[clusters.lab]\nprovider = "aks"\nkubeconfig = "missing.yaml"\n'
    )
    result = pytester.runpytest("--aksai-cluster=lab")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stdout.str() + result.stderr.str()
    assert "ERROR collecting" not in text and "Traceback" not in text, text
    assert text.count("the kubeconfig file") == 1, text
    assert "Cluster profile 'lab': the kubeconfig file" in text


def test_profile_keys_of_areas_not_built_yet_are_named_in_the_header(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if NAP were not built yet: the test must not change each time an area lands.
    monkeypatch.setattr("pytest_aksai._profiles.AREA_KEYS", {"nodepools": "nap"})
    pytester.makefile(".toml", aksai='[clusters.sim2]\nprovider = "sim"\nnodepools = ["gpu"]\n')
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--aksai-cluster=sim2")
    result.stdout.fnmatch_lines(
        [
            "aksai: profile 'sim2' sets nodepools (nap): keys of areas this version of pytest-aksai "
            "does not check yet; they are ignored"
        ]
    )


def test_measurements_are_junit_properties_without_a_warning(pytester: pytest.Pytester) -> None:
    _suites(pytester, "test_kaito.py")
    result = pytester.runpytest_subprocess(
        "--aksai-cluster=fast",
        "-k",
        "cold_start",
        "--junitxml=junit.xml",
        "-W",
        "error::pytest.PytestWarning",
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "record_property" not in result.stdout.str()
    case = next(ET.parse(pytester.path / "junit.xml").getroot().iter("testcase"))
    properties = {p.attrib["name"]: float(p.attrib["value"]) for p in case.iter("property")}
    assert properties["cold_start_model_load_s"] > 0 and properties["cold_start_node_provisioning_s"] > 0


NO_KEDA_LAB = """
description: A cluster with KAITO but without KEDA, as a user's may be.
addons: [core, kaito, vllm, karpenter]
nodePools:
  - {name: system, mode: System, vmSize: Standard_D4ds_v5, count: 1, zones: ["1"]}
namespaces: [inference]
objects: []
"""


def test_an_area_check_skips_naming_the_add_on_the_cluster_lacks(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", nokeda=NO_KEDA_LAB)
    pytester.makefile(".toml", aksai=FAST_SIM + f'scenario = "{pytester.path / "nokeda.yaml"}"\n')
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.keda
        def test_scales_to_zero(aksai_cluster):
            raise AssertionError("must not run on a cluster without KEDA")

        @pytest.mark.kaito
        def test_kaito_is_served(aksai_cluster):
            assert aksai_cluster.serves("kaito.sh")
        """
    )
    result = pytester.runpytest_subprocess("--aksai-cluster=fast", "-rs", timeout=120)
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*KEDA is not installed on cluster 'fast' (no keda.sh API group)"])
