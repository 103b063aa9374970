"""kubectl against the simulated cluster, and the standalone `serve` command."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import kubernetes
import pytest

from pytest_aksai.sim import SimCluster

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      schedulerName: nobody
      containers:
      - name: web
        image: nginx:1.27
        env: [{name: MODE, value: one}]
"""


def _kubectl(sim: SimCluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    result = subprocess.run(
        [KUBECTL, "--kubeconfig", str(sim.kubeconfig_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@needs_kubectl
def test_kubectl_apply_get_scale_delete(sim, api, ns, tmp_path: Path):
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(DEPLOYMENT)
    assert "deployment.apps/web created" in _kubectl(sim, "apply", "-n", ns, "-f", str(manifest)).stdout
    manifest.write_text(DEPLOYMENT.replace("value: one", "value: two"))
    assert "deployment.apps/web configured" in _kubectl(sim, "apply", "-n", ns, "-f", str(manifest)).stdout
    apps = kubernetes.client.AppsV1Api(api)
    dep = apps.read_namespaced_deployment("web", ns)
    assert dep.spec.template.spec.containers[0].env[0].value == "two"
    assert dep.metadata.generation == 2
    out = _kubectl(sim, "get", "deploy,pods", "-A").stdout
    assert "NAMESPACE" in out.splitlines()[0]
    assert f"{ns}" in out and "deployment.apps/web" in out
    _kubectl(sim, "scale", "-n", ns, "deployment/web", "--replicas=3")
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 3
    assert 'deployment.apps "web" deleted' in _kubectl(sim, "delete", "-n", ns, "deployment", "web").stdout
    missing = _kubectl(sim, "get", "-n", ns, "deployment", "web", check=False)
    assert missing.returncode == 1
    assert 'Error from server (NotFound): deployments.apps "web" not found' in missing.stderr


@needs_kubectl
def test_kubectl_get_custom_resources_with_printer_columns(sim, api):
    out = _kubectl(sim, "get", "crd").stdout
    assert "workspaces.kaito.sh" in out
    custom = kubernetes.client.CustomObjectsApi(api)
    custom.create_cluster_custom_object(
        "karpenter.azure.com",
        "v1beta1",
        "aksnodeclasses",
        {
            "apiVersion": "karpenter.azure.com/v1beta1",
            "kind": "AKSNodeClass",
            "metadata": {"name": "kubectl-nc"},
            "spec": {"imageFamily": "AzureLinux"},
        },
    )
    try:
        out = _kubectl(sim, "get", "aksnc", "kubectl-nc", "-o", "wide").stdout.splitlines()
        assert out[0].split() == ["NAME", "READY", "AGE", "IMAGEFAMILY"]
        assert out[1].split()[0] == "kubectl-nc"
        assert out[1].split()[-1] == "AzureLinux"
    finally:
        custom.delete_cluster_custom_object("karpenter.azure.com", "v1beta1", "aksnodeclasses", "kubectl-nc")


@needs_kubectl
def test_kubectl_logs(sim, api, ns):
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": "talker"},
            "spec": {"schedulerName": "nobody", "containers": [{"name": "c", "image": "i"}]},
        },
    )
    done = threading.Event()

    def _write() -> None:
        sim._runtime.ctx.pod_logs.append(ns, "talker", "c", "hello from the sim\n")  # type: ignore[union-attr]
        done.set()

    assert sim.loop is not None
    sim.loop.call_soon_threadsafe(_write)
    assert done.wait(5)
    assert _kubectl(sim, "logs", "-n", ns, "talker").stdout == "hello from the sim\n"


@needs_kubectl
def test_kubectl_get_watch(sim, api, ns):
    assert KUBECTL is not None
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "watched"}, "data": {"a": "1"}})
    # A list (not `get configmaps watched`): for a single named object kubectl watches from resourceVersion 0
    # and skips the first event, so a change made before its watch request lands would be lost on any server.
    proc = subprocess.Popen(
        [
            KUBECTL,
            "--kubeconfig",
            str(sim.kubeconfig_path),
            "get",
            "configmaps",
            "-n",
            ns,
            "--field-selector",
            "metadata.name=watched",
            "-w",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        header, first = proc.stdout.readline().split(), proc.stdout.readline().split()
        assert header == ["NAME", "DATA", "AGE"]
        assert first[:2] == ["watched", "1"]
        # kubectl watches from the list's resourceVersion, so this change reaches it even if its watch
        # request is still on the way.
        core.patch_namespaced_config_map("watched", ns, {"data": {"b": "2"}})
        assert proc.stdout.readline().split()[:2] == ["watched", "2"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def test_serve_prints_ready_and_exits_cleanly(tmp_path: Path):
    kubeconfig = tmp_path / "sim.kubeconfig"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_aksai.sim",
            "serve",
            "--kubeconfig",
            str(kubeconfig),
            "--time-scale",
            "120",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("ready https://127.0.0.1:"), line + (proc.stderr.read() if proc.stderr else "")
        client = kubernetes.config.new_client_from_config(str(kubeconfig))
        cm = kubernetes.client.CoreV1Api(client).read_namespaced_config_map("aksai-sim", "kube-system")
        assert cm.data["timeScale"] == "120.0"
        assert cm.data["scenario"] == "default"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert proc.stdout.read() == "", "exactly one line on stdout"
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(
    "args",
    [
        ["serve"],
        ["serve", "--kubeconfig", "x", "--time-scale", "0"],
        ["serve", "--kubeconfig", "x", "--fault", "no-such-fault"],
        ["bogus"],
    ],
)
def test_serve_rejects_bad_arguments(args: list[str], tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "pytest_aksai.sim", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error:") or "error:" in result.stderr


@needs_kubectl
def test_kubectl_apply_rejects_unknown_fields_like_a_real_server(sim, ns, tmp_path: Path):
    manifest = tmp_path / "typo.yaml"
    manifest.write_text(DEPLOYMENT.replace("replicas: 1", "replicass: 1"))
    result = _kubectl(sim, "apply", "-n", ns, "-f", str(manifest), check=False)
    assert result.returncode == 1
    assert (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field '
        '"spec.replicass"'
    ) in result.stderr
