"""Static mode end to end: `pytest --aksai-manifests PATH -m sizing` with the vendored suite, via pytester."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "suites" / "test_sizing.py"
UPSTREAM = REPO / ".." / "shared" / "upstream" / "aks-ai-lab-manifests"


WORKSPACE = """
apiVersion: kaito.sh/v1beta1
kind: Workspace
metadata: {{name: {name}, namespace: ml}}
resource: {{instanceType: {sku}}}
inference:
  preset: {{name: {preset}}}
  config: {name}-cfg
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}-cfg, namespace: ml}}
data:
  inference_config.yaml: |
    vllm:
      max-model-len: {mml}
      max-num-seqs: {seqs}
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    # A name of its own: the outer session has imported suites/test_sizing.py as module `test_sizing` already.
    shutil.copy(SUITE, pytester.path / "test_vendored_sizing.py")
    (pytester.path / "deploy").mkdir()
    return pytester


def run(p: pytest.Pytester, *args: str) -> pytest.RunResult:
    # In-process runs re-import the already imported package; that rewrite notice is not ours to count.
    return p.runpytest("-W", "ignore::pytest.PytestAssertRewriteWarning", *args)


def write(p: pytest.Pytester, name: str, text: str) -> None:
    (p.path / "deploy" / name).write_text(textwrap.dedent(text), encoding="utf-8")


def test_each_finding_is_an_item_with_a_readable_id(suite: pytest.Pytester) -> None:
    write(
        suite,
        "ws.yaml",
        WORKSPACE.format(
            name="phi", sku="Standard_NC4as_T4_v3", preset="phi-4-mini-instruct", mml=4096, seqs=8
        ),
    )
    write(
        suite,
        "big.yaml",
        WORKSPACE.format(
            name="mis", sku="Standard_NC16as_T4_v3", preset="mistral-7b-instruct", mml=8192, seqs=8
        ),
    )
    r = run(suite, "--aksai-manifests", "deploy", "-m", "sizing", "-v")
    r.assert_outcomes(passed=6 + 4, failed=2, warnings=1)
    r.stdout.fnmatch_lines(
        [
            "*test_sizing_invariant?big.yaml::Workspace/mis::weights-fit? FAILED*",
            "*test_sizing_invariant?ws.yaml::Workspace/phi::weights-fit? PASSED*",
        ]
    )
    r.stdout.fnmatch_lines(
        ["*weights-fit (Workspace/mis in big.yaml): mistral-7b-instruct weights 13.50 GiB × 1.3*"]
    )


def test_warning_passes_with_a_warning_and_fails_under_strict(suite: pytest.Pytester) -> None:
    write(
        suite,
        "ws.yaml",
        WORKSPACE.format(
            name="phi", sku="Standard_NC4as_T4_v3", preset="phi-4-mini-instruct", mml=4096, seqs=64
        ),
    )
    r = run(suite, "--aksai-manifests", "deploy", "-m", "sizing", "-k", "kv-concurrency")
    r.assert_outcomes(passed=1, warnings=1)
    r.stdout.fnmatch_lines(["*AksaiSizingWarning*max-num-seqs 64 > 12 sequences*"])
    strict = run(
        suite, "--aksai-manifests", "deploy", "-m", "sizing", "-k", "kv-concurrency", "--aksai-strict"
    )
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(["*kv-concurrency (warning, failed under --aksai-strict): max-num-seqs 64*"])


def test_unknown_model_skips_and_fails_under_strict(suite: pytest.Pytester) -> None:
    write(
        suite,
        "ws.yaml",
        WORKSPACE.format(name="x", sku="Standard_NC4as_T4_v3", preset="falcon-7b", mml=2048, seqs=8),
    )
    r = run(suite, "--aksai-manifests", "deploy", "-rs")
    r.assert_outcomes(skipped=1)
    r.stdout.fnmatch_lines(["*catalog not checked: unknown model 'falcon-7b'*"])
    assert r.ret == pytest.ExitCode.TESTS_FAILED, "a run whose only check could not be made checked nothing"
    r.stdout.fnmatch_lines(["aksai: nothing was checked: all 1 selected conformance checks skipped*"])
    run(suite, "--aksai-manifests", "deploy", "--aksai-strict").assert_outcomes(failed=1)


def test_without_manifests_the_suite_checks_the_clusters_objects(suite: pytest.Pytester) -> None:
    r = run(suite, "-m", "sizing", "-v", "-W", "default")
    outcomes = r.parseoutcomes()
    assert outcomes.get("passed", 0) >= 3, r.stdout.str()
    r.stdout.fnmatch_lines(
        [
            "*[[]cluster:sim::Workspace/workspace-phi4-mini::weights-fit[]] PASSED*",
            "*[[]cluster:sim::Workspace/workspace-phi4-mini::kv-concurrency[]] PASSED*",
        ]
    )
    # The default lab is configured correctly: no sizing warning (the seed lab's is in scenario aks-ai-lab).
    assert "AksaiSizingWarning" not in r.stdout.str()


def test_collect_only_does_not_read_the_cluster(suite: pytest.Pytester) -> None:
    r = run(suite, "-m", "sizing", "--collect-only", "-q")
    r.stdout.fnmatch_lines(["*test_vendored_sizing.py::test_sizing_invariant[[]cluster-objects[]]*"])


def test_profile_sizing_table_adds_a_model(suite: pytest.Pytester) -> None:
    write(
        suite,
        "ws.yaml",
        WORKSPACE.format(name="t", sku="Standard_NC4as_T4_v3", preset="tiny-chat", mml=2048, seqs=4),
    )
    suite.makefile(
        ".toml",
        aksai=textwrap.dedent("""
        [clusters.static]
        provider = "sim"
        [[clusters.static.sizing.models]]
        name = "tiny-chat"
        hf_id = "acme/tiny-chat"
        parameters = 1000000000
        layers = 16
        attention_heads = 16
        kv_heads = 4
        head_dim = 64
        max_context = 4096
    """),
    )
    r = run(suite, "--aksai-cluster", "static", "--aksai-manifests", "deploy", "-k", "weights-fit", "-v")
    r.assert_outcomes(passed=1)
    r.stdout.fnmatch_lines(["*ws.yaml::Workspace/t::weights-fit? PASSED*"])


@pytest.mark.skipif(not UPSTREAM.is_dir(), reason=f"the real lab's manifests are not at {UPSTREAM}")
def test_real_lab_manifests_through_the_suite(suite: pytest.Pytester) -> None:
    r = run(suite, f"--aksai-manifests={UPSTREAM.resolve()}", "-m", "sizing")
    r.assert_outcomes(passed=21, failed=10, warnings=4)
