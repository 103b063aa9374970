"""Run-scoped namespaces, labels, cleanup (on success, failure and Ctrl-C), --aksai-keep and reaping.

The inner runs target a simulated cluster started here, through a profile, so that this test can inspect
the cluster after the inner run has ended.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from pytest_aksai.kube import namespace_name
from pytest_aksai.sim import SimCluster

CREATES = """
def test_creates(aksai_namespace, aksai_labels):
    print("NAMESPACE", aksai_namespace)
    assert aksai_labels["app.kubernetes.io/managed-by"] == "pytest-aksai"
"""


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimCluster]:
    with SimCluster(kubeconfig_path=tmp_path_factory.mktemp("sim") / "sim.kubeconfig") as cluster:
        yield cluster


@pytest.fixture
def core(sim: SimCluster) -> Iterator[k8s.CoreV1Api]:
    api_client = k8s_config.new_client_from_config(config_file=str(sim.kubeconfig_path), context="aksai-sim")
    yield k8s.CoreV1Api(api_client)
    api_client.close()


def _profile(pytester: pytest.Pytester, sim: SimCluster, provider: str = "sim") -> None:
    pytester.makefile(
        ".toml",
        aksai=f'[clusters.mine]\nprovider = "{provider}"\nkubeconfig = "{sim.kubeconfig_path}"\n'
        'context = "aksai-sim"\n',
    )


def _live_namespaces(core: k8s.CoreV1Api, run: str) -> list[str]:
    items = core.list_namespace(label_selector=f"aksai.dev/run={run}").items
    return [ns.metadata.name for ns in items if ns.metadata.deletion_timestamp is None]


def _run_id(result: pytest.RunResult) -> str:
    header = next(line for line in result.outlines if line.startswith("aksai: "))
    found = re.search(r"run=(r[0-9a-f]{7})", header)
    assert found, header
    return found.group(1)


def test_namespace_names_are_dns_labels() -> None:
    name = namespace_name("r1234567", "test_something[inference/workspace-phi4-mini-with-a-very-long-id]")
    assert len(name) <= 63
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
    assert name.startswith("aksai-r1234567-test-something-inference-workspace")
    assert namespace_name("r1234567", "x" * 100) != namespace_name("r1234567", "x" * 99 + "y")
    assert namespace_name("r1234567", "test_ok") == "aksai-r1234567-test-ok"


def test_namespace_is_labelled_and_deleted_after_the_test(
    pytester: pytest.Pytester, sim: SimCluster, core: k8s.CoreV1Api
) -> None:
    _profile(pytester, sim)
    pytester.makepyfile(CREATES)
    result = pytester.runpytest("--aksai-cluster=mine", "-s")
    result.assert_outcomes(passed=1)
    run = _run_id(result)
    created = next(line for line in result.outlines if "NAMESPACE " in line).split("NAMESPACE ")[1].strip()
    assert created == f"aksai-{run}-test-creates"
    assert _live_namespaces(core, run) == []


def test_failed_and_interrupted_runs_clean_up_too(
    pytester: pytest.Pytester, sim: SimCluster, core: k8s.CoreV1Api
) -> None:
    _profile(pytester, sim)
    pytester.makepyfile("""
        def test_fails(aksai_namespace):
            raise AssertionError("boom")

        def test_interrupted(aksai_module_namespace):
            raise KeyboardInterrupt
        """)
    result = pytester.runpytest_subprocess("--aksai-cluster=mine")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    run = _run_id(result)
    assert _live_namespaces(core, run) == []
    deleted = core.list_namespace(label_selector=f"aksai.dev/run={run}").items
    assert all(ns.metadata.deletion_timestamp is not None for ns in deleted)


def test_keep_keeps_and_lists_what_was_created(
    pytester: pytest.Pytester, sim: SimCluster, core: k8s.CoreV1Api
) -> None:
    _profile(pytester, sim)
    pytester.makepyfile(CREATES)
    result = pytester.runpytest("--aksai-cluster=mine", "--aksai-keep")
    result.assert_outcomes(passed=1)
    run = _run_id(result)
    kept = _live_namespaces(core, run)
    assert kept == [f"aksai-{run}-test-creates"]
    result.stdout.fnmatch_lines(
        [
            f"aksai: kept (--aksai-keep): namespaces aksai-{run}-test-creates; delete them with "
            f"`kubectl delete ns -l aksai.dev/run={run}`"
        ]
    )
    core.delete_namespace(kept[0])


def test_next_live_run_reaps_expired_leftovers_only(
    pytester: pytest.Pytester, sim: SimCluster, core: k8s.CoreV1Api
) -> None:
    def namespace(name: str, labels: dict[str, str], expires: datetime | None) -> None:
        annotations = {"aksai.dev/expires-at": expires.strftime("%Y-%m-%dT%H:%M:%SZ")} if expires else {}
        core.create_namespace(
            k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name, labels=labels, annotations=annotations))
        )

    now = datetime.now(UTC)
    managed = {"app.kubernetes.io/managed-by": "pytest-aksai", "aksai.dev/run": "rdead000"}
    namespace("aksai-rdead000-expired", managed, now - timedelta(hours=1))
    namespace("aksai-rlive000-running", {**managed, "aksai.dev/run": "rlive000"}, now + timedelta(hours=1))
    namespace("not-ours", {"aksai.dev/run": "rdead000"}, now - timedelta(hours=1))
    _profile(pytester, sim, provider="kind")
    pytester.makepyfile(CREATES)
    result = pytester.runpytest("--aksai-cluster=mine")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["aksai: reaped expired leftovers of dead runs: Namespace aksai-rdead000-expired"]
    )
    alive = {ns.metadata.name for ns in core.list_namespace().items if ns.metadata.deletion_timestamp is None}
    assert "aksai-rdead000-expired" not in alive
    assert {"aksai-rlive000-running", "not-ours"} <= alive
