"""Cleanup that survives interrupts: the run record, bounded cleanup, the second Ctrl-C, and the janitor that
reaps what dead runs left and nothing else (see also test_namespaces.py for success, failure and Ctrl-C)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import config as k8s_config

from pytest_aksai._fixtures._cluster import ClusterRuntime
from pytest_aksai._settings import resolve_for_help
from pytest_aksai.kube import Janitor, RunScope, _rest, connect
from pytest_aksai.sim import SimCluster

MANAGED = {"app.kubernetes.io/managed-by": "pytest-aksai"}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimCluster]:
    with SimCluster(kubeconfig_path=tmp_path_factory.mktemp("sim") / "sim.kubeconfig") as cluster:
        yield cluster


@pytest.fixture
def api(sim: SimCluster) -> Iterator[Any]:
    client = k8s_config.new_client_from_config(config_file=str(sim.kubeconfig_path), context="aksai-sim")
    yield client
    client.close()


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _configmap(api: Any, name: str, labels: dict[str, str], namespace: str = "default") -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}
    _rest.create(api, _rest.CONFIGMAPS, body, namespace)


def _exists(api: Any, name: str) -> bool:
    return _rest.get(api, _rest.CONFIGMAPS, name, "default") is not None


def test_janitor_reaps_dead_expired_runs_and_nothing_else(api: Any) -> None:
    now = datetime.now(UTC)
    past, future = _stamp(now - timedelta(minutes=5)), _stamp(now + timedelta(hours=1))
    _configmap(api, "dead-expired", {**MANAGED, "aksai.dev/run": "rdead001", "aksai.dev/expires": past})
    _configmap(api, "dead-not-expired", {**MANAGED, "aksai.dev/run": "rdead002", "aksai.dev/expires": future})
    _configmap(api, "live-expired", {**MANAGED, "aksai.dev/run": "rlive001", "aksai.dev/expires": past})
    _configmap(api, "run-label-only", {"aksai.dev/run": "rdead001", "aksai.dev/expires": past})
    _configmap(api, "unlabelled", {})
    live = RunScope(api, "rlive001")
    live.start_heartbeat()
    try:
        dry = Janitor(api).reap(dry_run=True)
        assert dry.removed == ["ConfigMap default/dead-expired"]
        assert _exists(api, "dead-expired")
        report = Janitor(api).reap(wait_s=5)
    finally:
        live.stop_heartbeat(delete=True)
    assert report.removed == ["ConfigMap default/dead-expired"]
    assert "rlive001" in report.live_runs
    assert "ConfigMap default/dead-not-expired" in report.not_expired
    assert not _exists(api, "dead-expired")
    for kept in ("dead-not-expired", "live-expired", "run-label-only", "unlabelled"):
        assert _exists(api, kept), kept
    # Once the live run's Lease is gone, its expired leftovers are a dead run's.
    assert Janitor(api).reap(wait_s=5).removed == ["ConfigMap default/live-expired"]
    # --run ID removes that run's objects now, whatever their expiry.
    assert Janitor(api, only_run="rdead002").reap(wait_s=5).removed == ["ConfigMap default/dead-not-expired"]


def test_a_namespace_stuck_terminating_is_reported_with_its_finalizer(api: Any) -> None:
    past = _stamp(datetime.now(UTC) - timedelta(minutes=5))
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "aksai-rdead003-stuck",
            "labels": {**MANAGED, "aksai.dev/run": "rdead003", "aksai.dev/expires": past},
            "finalizers": ["example.com/hold"],
        },
    }
    _rest.create(api, _rest.NAMESPACES, body)
    try:
        assert Janitor(api).reap(wait_s=0).removed == ["Namespace aksai-rdead003-stuck"]
        report = Janitor(api).reap(wait_s=0)
        assert report.removed == []
        assert len(report.terminating) == 1
        assert report.terminating[0].startswith("namespace aksai-rdead003-stuck is stuck Terminating since ")
        assert "held by example.com/hold" in report.terminating[0]
    finally:
        _rest.patch_merge(api, _rest.NAMESPACES, "aksai-rdead003-stuck", {"metadata": {"finalizers": None}})


def test_cleanup_removes_the_record_and_the_runs_labelled_objects_and_its_lease(
    sim: SimCluster, api: Any
) -> None:
    cluster = connect(profile="t", provider="sim", kubeconfig=sim.kubeconfig_path, context="aksai-sim")
    try:
        scope = RunScope.for_cluster(cluster, "rclean01")
        scope.start_heartbeat()
        entry = scope.record("ConfigMap", "recorded", "default")
        _configmap(api, "recorded", {})  # recorded: removed even without the labels
        _configmap(api, "labelled", scope.labels)
        _configmap(api, "other-run", {**MANAGED, "aksai.dev/run": "rother01"})
        assert entry in scope.recorded
        result = scope.cleanup(30)
        assert set(result.removed) == {"ConfigMap default/recorded", "ConfigMap default/labelled"}
        assert result.left == []
        assert not _exists(api, "recorded") and not _exists(api, "labelled")
        assert _exists(api, "other-run")
        assert (
            _rest.get(api, _rest.Kind("coordination.k8s.io", "v1", "leases"), "aksai-run-rclean01", "default")
            is None
        )
    finally:
        cluster.close()


class _Interrupted:
    """A run scope whose cleanup is interrupted by a second Ctrl-C."""

    def cleanup(self, budget_s: float) -> Any:
        raise KeyboardInterrupt

    def stop_heartbeat(self, *, delete: bool) -> None:
        pass

    def left(self) -> list[str]:
        return ["NodeClaim gpu-inference-x1", "Namespace aksai-r1234567-test-nap"]


def test_a_second_ctrl_c_prints_what_is_left_and_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    import dataclasses

    settings = dataclasses.replace(resolve_for_help(None), cluster="lab", run_id="r1234567")  # type: ignore[arg-type]
    runtime = ClusterRuntime(settings)
    runtime._clean(_Interrupted())  # type: ignore[arg-type]
    assert capsys.readouterr().err == (
        "aksai: cleanup was interrupted; left on cluster 'lab' by run r1234567: NodeClaim gpu-inference-x1, "
        "Namespace aksai-r1234567-test-nap. Remove it with `python -m pytest_aksai janitor --aksai-cluster lab "
        "--run r1234567` (a later run also reaps it once its expiry has passed).\n"
    )
    assert runtime.left == ["NodeClaim gpu-inference-x1", "Namespace aksai-r1234567-test-nap"]


SLOW = """
import time

def test_slow(aksai_namespace):
    print("NAMESPACE", aksai_namespace, flush=True)
    time.sleep(60)
"""


def test_sigterm_ends_the_run_and_cleans_up(sim: SimCluster, api: Any, tmp_path: Path) -> None:
    (tmp_path / "aksai.toml").write_text(
        f'[clusters.mine]\nprovider = "sim"\nkubeconfig = "{sim.kubeconfig_path}"\ncontext = "aksai-sim"\n'
    )
    (tmp_path / "test_slow.py").write_text(SLOW)
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--aksai-cluster=mine", "-s", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert run.stdout is not None
    namespace = ""
    for line in run.stdout:
        if "NAMESPACE " in line:
            namespace = line.split("NAMESPACE ", 1)[1].split()[0]
            break
    assert namespace, "the test never started"
    sent = time.monotonic()
    run.send_signal(signal.SIGTERM)
    rest, _ = run.communicate(timeout=90)
    assert time.monotonic() - sent < 60, rest
    assert "KeyboardInterrupt: SIGTERM" in rest
    ns = _rest.get(api, _rest.NAMESPACES, namespace)
    assert ns is None or ns["metadata"].get("deletionTimestamp"), ns
