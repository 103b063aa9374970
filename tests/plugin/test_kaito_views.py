"""Reading KAITO's state: failures that only the model pods show."""

from __future__ import annotations

from pathlib import Path

from pytest_aksai.kube import connect
from pytest_aksai.kube._kaito import pod_failure
from pytest_aksai.kube._rest import PODS
from pytest_aksai.kube._wait import wait_for
from pytest_aksai.sim import SimCluster


def _oom_restarted(pod: dict | None) -> bool:
    statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or []
    return any(
        ((s.get("lastState") or {}).get("terminated") or {}).get("reason") == "OOMKilled"
        and s.get("restartCount", 0) >= 1
        for s in statuses
    )


def test_an_oom_killed_model_pod_is_a_failure_even_when_the_workspace_does_not_say(tmp_path: Path) -> None:
    with SimCluster(time_scale=600, faults=["kaito-inference-oom"], kubeconfig_path=tmp_path / "kc") as sim:
        cluster = connect(profile="sim", provider="sim", kubeconfig=sim.kubeconfig_path, context="aksai-sim")
        cluster.time_scale = 600
        wait_for(
            cluster,
            PODS,
            "workspace-phi4-mini-0",
            "inference",
            until=_oom_restarted,
            timeout=3600,
            expected="OOMKilled and restarted",
        )
        message = pod_failure(cluster, "inference", "workspace-phi4-mini")
        assert message is not None
        assert message.startswith(
            "pod workspace-phi4-mini-0 container workspace-phi4-mini was OOMKilled (exit 137)"
        )
        assert "the model does not fit the memory it gets" in message
        assert pod_failure(cluster, "inference", "no-such-workspace") is None
        cluster.close()
