"""The Workspace readiness wait aborts within seconds on every state that will not heal by itself, naming the
reason and the fix; it still waits (and succeeds) while things are only slow."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from pytest_aksai.kube import Cluster, WaitAborted, _rest, connect, wait_workspace_ready
from pytest_aksai.sim import SimCluster
from pytest_aksai.sim._addons.karpenter._provisioner import LAUNCH_SECONDS

SCALE = 30
"""Slow enough that 30 cluster seconds (the most a terminal state may take to end the wait) is 1 s wall, enough for a loaded CI machine."""
REF = "inference/workspace-phi4-mini"
BUDGET = 3600.0
"""Cluster seconds: the wait's whole budget; a terminal state must end it long before."""


@contextmanager
def _lab(tmp_path: Path, *, faults: tuple[str, ...] = (), scenario: dict | None = None) -> Iterator[Cluster]:
    name = "default"
    if scenario is not None:
        path = tmp_path / "scenario.yaml"
        path.write_text(yaml.safe_dump(scenario))
        name = str(path)
    with SimCluster(
        scenario=name, time_scale=SCALE, faults=list(faults), kubeconfig_path=tmp_path / "kc"
    ) as sim:
        cluster = connect(profile="sim", provider="sim", kubeconfig=sim.kubeconfig_path, context="aksai-sim")
        try:
            yield cluster
        finally:
            cluster.close()


def _config(vllm: dict) -> dict:
    return {
        "extends": "default",
        "description": "the default lab with another inference config",
        "objects": [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "phi4-vllm-config", "namespace": "inference"},
                "data": {"inference_config.yaml": yaml.safe_dump({"vllm": vllm})},
            }
        ],
    }


def _cluster_now(cluster: Cluster) -> datetime:
    """The cluster's clock: the creationTimestamp the API server gives a new object."""
    created = _rest.create(
        cluster._api, _rest.CONFIGMAPS, {"metadata": {"generateName": "clock-"}}, "default"
    )
    return _time(created["metadata"]["creationTimestamp"])


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _aborted(cluster: Cluster) -> tuple[WaitAborted, datetime, datetime]:
    """The wait's error, and the cluster's clock when the wait started and when it ended."""
    started = _cluster_now(cluster)
    with pytest.raises(WaitAborted) as raised:
        wait_workspace_ready(cluster, REF, BUDGET)
    return raised.value, started, _cluster_now(cluster)


def _within_30_s(appeared: datetime, started: datetime, ended: datetime) -> None:
    """The wait ended less than 30 cluster seconds after the state appeared (or after it began, if later)."""
    since = (ended - max(appeared, started)).total_seconds()
    assert since < 30, f"the wait ended {since:.0f} cluster seconds after the state appeared"


def test_a_misspelt_engine_flag_crash_loops_and_the_wait_names_vllms_refusal(tmp_path: Path) -> None:
    scenario = _config({"max-model-len": 4096, "max-num-sequences": 12, "gpu-memory-utilization": 0.9})
    with _lab(tmp_path, scenario=scenario) as cluster:
        error, started, ended = _aborted(cluster)
        pod = _rest.get(cluster._api, _rest.PODS, "workspace-phi4-mini-0", "inference")
        assert pod is not None
        status = pod["status"]["containerStatuses"][0]
        _within_30_s(_time(status["lastState"]["terminated"]["finishedAt"]), started, ended)
        assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        assert status["lastState"]["terminated"]["exitCode"] == 2
        previous = _rest.raw_text(
            cluster._api,
            "/api/v1/namespaces/inference/pods/workspace-phi4-mini-0/log",
            query={"previous": "true"},
        )
    message = str(error)
    assert "is crash-looping (CrashLoopBackOff" in message and "exited with code 2" in message, message
    assert "unrecognized arguments: --max-num-sequences 12" in message, message
    assert "ConfigMap inference/phi4-vllm-config" in message, message
    assert "--previous" in message
    assert "inference_api.py: error: unrecognized arguments: --max-num-sequences 12" in previous


def test_an_oom_killed_model_pod_ends_the_wait(tmp_path: Path) -> None:
    with _lab(tmp_path, faults=("kaito-inference-oom",)) as cluster:
        error, _, _ = _aborted(cluster)
    assert "OOMKilled" in str(error), str(error)
    assert "larger resource.instanceType or a smaller model" in str(error)


def test_an_image_that_cannot_be_pulled_ends_the_wait(tmp_path: Path) -> None:
    with _lab(tmp_path, faults=("image-pull-backoff=kaito-base",)) as cluster:
        error, _, _ = _aborted(cluster)
    message = str(error)
    assert "cannot pull image 'mcr.microsoft.com/aks/kaito/kaito-base" in message, message
    assert "AcrPull" in message


def test_a_gpu_node_without_the_device_plugin_ends_the_wait(tmp_path: Path) -> None:
    with _lab(tmp_path, faults=("gpu-device-plugin-missing",)) as cluster:
        error, _, _ = _aborted(cluster)
    message = str(error)
    assert "advertises no allocatable nvidia.com/gpu" in message, message
    assert "NVIDIA device plugin" in message


def test_an_untolerated_taint_on_the_gpu_node_is_unschedulable_and_says_why(tmp_path: Path) -> None:
    scenario = {
        "extends": "default",
        "description": "a pre-provisioned GPU node the Workspace selects, with a taint its pods do not tolerate",
        "nodePools": [
            {
                "name": "gpu",
                "mode": "User",
                "vmSize": "Standard_NC4as_T4_v3",
                "count": 1,
                "labels": {"apps": "phi4-mini-inference"},
                "taints": ["dedicated=batch:NoSchedule"],
            }
        ],
    }
    with _lab(tmp_path, scenario=scenario) as cluster:
        error, started, ended = _aborted(cluster)
        pod = _rest.get(cluster._api, _rest.PODS, "workspace-phi4-mini-0", "inference")
        assert pod is not None
        since = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
        _within_30_s(_time(since["lastTransitionTime"]), started, ended)
    message = str(error)
    assert "unschedulable for" in message and "untolerated taint" in message, message
    assert "taints the model pod does not tolerate" in message


def test_a_nodeclaim_that_fails_to_launch_ends_the_wait(tmp_path: Path) -> None:
    scenario = yaml.safe_load(
        (Path(__file__).parents[1] / "faults" / "scenarios" / "nodeclaim-launch-failed.yaml").read_text()
    )
    with _lab(tmp_path, scenario=scenario, faults=("nap-quota-exceeded=kaito",)) as cluster:
        error, started, ended = _aborted(cluster)
        claims = _rest.items(
            cluster._api, _rest.NODECLAIMS, label_selector="kaito.sh/workspace=workspace-phi4-mini"
        )
        created = _time(claims[0]["metadata"]["creationTimestamp"])
        # Launched stays Unknown (AwaitingReconciliation, then the provider's reason) with one transition time:
        # the create call fails LAUNCH_SECONDS after the claim appears.
        _within_30_s(created + timedelta(seconds=LAUNCH_SECONDS), started, ended)
    message = str(error)
    assert "failed to launch: Launched=Unknown, reason SubscriptionQuotaReached" in message
    assert "quota" in message
