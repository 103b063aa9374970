"""The plugin's port-forward under load: 200 forwards opened, used and closed, several at once, beside a CPU
hog, with zero resets — a closed forward never accepts a connection meant for another one."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from pytest_aksai.kube import Cluster, connect, wait_workspace_ready
from pytest_aksai.kube._portforward import PortForward
from pytest_aksai.sim import SimCluster

FORWARDS = 200
AT_ONCE = 8
POD = ("inference", "workspace-phi4-mini-0")


@pytest.fixture(scope="module")
def ready_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    kubeconfig = tmp_path_factory.mktemp("pf") / "kc"
    with SimCluster(time_scale=600, kubeconfig_path=kubeconfig) as sim:
        cluster = connect(profile="sim", provider="sim", kubeconfig=sim.kubeconfig_path, context="aksai-sim")
        wait_workspace_ready(cluster, "inference/workspace-phi4-mini", 3600)
        try:
            yield cluster
        finally:
            cluster.close()


@pytest.fixture
def cpu_hog() -> Iterator[None]:
    """A process spinning one core for the test's duration (the machine's other work, a CI neighbour)."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        hog.kill()
        hog.wait(10)


def _one(cluster: Cluster, index: int) -> str:
    """Open a forward, send two requests through it (a new connection each), close it; '' when all is well."""
    forward = PortForward(cluster._api, *POD, 5000)
    try:
        for _ in range(2):
            with httpx.Client(base_url=forward.url, timeout=30) as http:
                response = http.get("health", headers={"Connection": "close"})
            if response.status_code != 200:
                return f"forward {index}: /health answered {response.status_code}"
    except httpx.TransportError as exc:
        return f"forward {index}: {type(exc).__name__}: {exc} ({forward.last_error})"
    finally:
        forward.close()
    return ""


def test_two_hundred_forwards_beside_a_cpu_hog_see_no_reset(ready_lab: Cluster, cpu_hog: None) -> None:
    with ThreadPoolExecutor(AT_ONCE) as pool:
        problems = [p for p in pool.map(lambda i: _one(ready_lab, i), range(FORWARDS)) if p]
    assert problems == [], f"{len(problems)} of {FORWARDS} forwards failed: {problems[:5]}"


def test_a_closed_forward_frees_its_port_before_close_returns(ready_lab: Cluster, tmp_path: Path) -> None:
    forward = PortForward(ready_lab._api, *POD, 5000)
    port = forward.local_port
    forward.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
