"""exec, attach, cp and port-forward: through the official Python client's `stream` helpers, through the real
kubectl (WebSocket first, SPDY when told to fall back), and the runtime's commands one by one."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.stream import portforward, stream
from kubernetes.stream.ws_client import ERROR_CHANNEL

from pytest_aksai.sim import SimCluster

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
MODEL_NAMESPACE = "inference"
MODEL_POD = "workspace-phi4-mini-0"
MODEL_SERVICE = "workspace-phi4-mini"


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


@pytest.fixture(scope="module")
def core(api: kubernetes.client.ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(api)


@pytest.fixture(scope="module")
def model_pod(core: kubernetes.client.CoreV1Api, watch_until: Any) -> str:
    """The default lab's Phi-4 Mini pod, once Ready (its vLLM process listens on 5000)."""
    watch_until(
        core.list_namespaced_pod,
        _ready,
        f"pod {MODEL_NAMESPACE}/{MODEL_POD} Ready",
        timeout=90,
        namespace=MODEL_NAMESPACE,
        field_selector=f"metadata.name={MODEL_POD}",
    )
    return MODEL_POD


@pytest.fixture(scope="module")
def shell_pod(core: kubernetes.client.CoreV1Api, watch_until: Any) -> Iterator[tuple[str, str]]:
    """A busybox pod with a ConfigMap volume and env from it, in a namespace of its own."""
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "settings"}, "data": {"mode": "fast", "greeting.txt": "hello\n"}}
    )
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "box", "labels": {"app": "box"}},
            "spec": {
                "containers": [
                    {
                        "name": "box",
                        "image": "busybox:1.36",
                        "command": ["sh", "-c", "sleep 3600"],
                        "env": [
                            {"name": "GREETING", "value": "hi"},
                            {"name": "ECHOED", "value": "$(GREETING) there"},
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {
                                "name": "MODE",
                                "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}},
                            },
                        ],
                        "volumeMounts": [{"name": "settings", "mountPath": "/etc/settings"}],
                    }
                ],
                "volumes": [{"name": "settings", "configMap": {"name": "settings"}}],
            },
        },
    )
    watch_until(
        core.list_namespaced_pod,
        lambda p: p.status.phase == "Running",
        "pod box Running",
        timeout=60,
        namespace=namespace,
        field_selector="metadata.name=box",
    )
    yield namespace, "box"
    core.delete_namespace(namespace)


def _exec(
    core: kubernetes.client.CoreV1Api, namespace: str, pod: str, argv: list[str], stdin: bytes | None = None
) -> tuple[str, str, dict[str, Any]]:
    """stdout, stderr and the final Status of one exec through `kubernetes.stream.stream`."""
    client = stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        namespace,
        command=argv,
        stdin=stdin is not None,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
    )
    try:
        if stdin is not None:
            client.write_stdin(stdin.decode())
            client.close_channel(0)
        client.run_forever(timeout=30)
        status = yaml.safe_load(client.read_channel(ERROR_CHANNEL) or "{}")
        return client.read_stdout() or "", client.read_stderr() or "", status
    finally:
        client.close()


# ---- the official Python client --------------------------------------------------------------------------
def test_python_client_exec_sees_the_kubelets_environment_and_mounts(core, shell_pod):
    namespace, pod = shell_pod
    out, err, status = _exec(core, namespace, pod, ["env"])
    assert status == {"metadata": {}, "status": "Success"}, err
    env = dict(line.split("=", 1) for line in out.splitlines())
    assert env["ECHOED"] == "hi there" and env["POD_NAME"] == "box" and env["MODE"] == "fast"
    assert env["KUBERNETES_SERVICE_HOST"] and env["HOSTNAME"] == "box"
    out, _, _ = _exec(core, namespace, pod, ["cat", "/etc/settings/greeting.txt"])
    assert out == "hello\n"
    out, _, _ = _exec(core, namespace, pod, ["ls", "/var/run/secrets/kubernetes.io/serviceaccount"])
    assert out.split() == ["ca.crt", "namespace", "token"]


def test_python_client_exec_reports_exit_codes_and_missing_binaries(core, shell_pod):
    namespace, pod = shell_pod
    out, err, status = _exec(core, namespace, pod, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (out, err) == ("out\n", "err\n")
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    _, err, status = _exec(core, namespace, pod, ["sh", "-c", "no-such-tool --help"])
    assert "no-such-tool: not found" in err and status["details"]["causes"][0]["message"] == "127"
    _, _, status = _exec(core, namespace, pod, ["no-such-tool"])
    assert status["status"] == "Failure" and status["code"] == 500
    assert 'exec: "no-such-tool": executable file not found in $PATH' in status["message"]


def test_python_client_exec_pipes_stdin_and_shell_features(core, shell_pod):
    namespace, pod = shell_pod
    out, _, _ = _exec(
        core, namespace, pod, ["sh", "-c", "cat > /tmp/in.txt && wc -l < /tmp/in.txt"], b"a\nb\n"
    )
    assert out.strip() == "2"
    script = (
        'X=1; export Y=two; test "$X" = 1 && echo "$Y" || echo no; false || echo "rc=$?"; env | grep -c ^Y='
    )
    out, _, _ = _exec(core, namespace, pod, ["sh", "-c", script])
    assert out.splitlines() == ["two", "rc=1", "1"]


def test_python_client_exec_curl_reaches_services_and_the_pod_itself(core, model_pod):
    out, err, status = _exec(core, MODEL_NAMESPACE, model_pod, ["curl", "-s", "localhost:5000/v1/models"])
    assert status["status"] == "Success", err
    assert json.loads(out)["data"][0]["id"]
    url = f"http://{MODEL_SERVICE}.{MODEL_NAMESPACE}.svc.cluster.local/v1/models"
    out, _, _ = _exec(
        core, MODEL_NAMESPACE, model_pod, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url]
    )
    assert out == "200"
    _, err, status = _exec(core, MODEL_NAMESPACE, model_pod, ["curl", "-sS", "localhost:6000/"])
    assert "Failed to connect to localhost port 6000" in err
    assert status["details"]["causes"][0]["message"] == "7"
    _, err, status = _exec(core, MODEL_NAMESPACE, model_pod, ["curl", "-sS", "http://huggingface.co/"])
    assert "Could not resolve host: huggingface.co" in err
    _, _, status = _exec(core, MODEL_NAMESPACE, model_pod, ["curl", "-sf", "localhost:5000/no-such-path"])
    assert status["details"]["causes"][0]["message"] == "22"


def test_python_client_portforward_reaches_the_model_server(core, model_pod):
    forward = portforward(
        core.connect_get_namespaced_pod_portforward, model_pod, MODEL_NAMESPACE, ports="5000"
    )
    sock = forward.socket(5000)
    sock.setblocking(True)
    sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    response = b""
    while chunk := sock.recv(65536):
        response += chunk
    sock.close()
    assert response.startswith(b"HTTP/1.1 200")
    assert b'"object": "list"' in response or b'"object":"list"' in response
    assert forward.error(5000) is None


def test_exec_into_a_container_that_does_not_exist_is_refused(raw, shell_pod):
    namespace, pod = shell_pod
    response = raw.request(
        "GET",
        f"/api/v1/namespaces/{namespace}/pods/{pod}/exec",
        params={"command": "ls", "stdout": "1", "container": "nope"},
    )
    assert response.status_code == 400
    assert response.json()["message"] == "container nope is not valid for pod box"
    response = raw.request(
        "GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/exec", params={"command": "ls", "stdout": "1"}
    )
    assert (response.status_code, response.json()["message"]) == (400, "Upgrade request required")


# ---- the real kubectl ------------------------------------------------------------------------------------
def _kubectl(
    sim: SimCluster, *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    assert KUBECTL is not None
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(sim.kubeconfig_path), *args],
        capture_output=True,
        timeout=60,
        check=False,
        input=stdin,
        env={**os.environ, **(env or {})},
    )


SPDY_ONLY = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false", "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}


@needs_kubectl
@pytest.mark.parametrize("transport", ["websocket", "spdy"])
def test_kubectl_exec_runs_commands_with_their_exit_codes(sim, model_pod, transport):
    env = SPDY_ONLY if transport == "spdy" else None
    smi = _kubectl(sim, "exec", "-n", MODEL_NAMESPACE, model_pod, "--", "nvidia-smi", env=env)
    assert smi.returncode == 0, smi.stderr
    assert b"NVIDIA-SMI" in smi.stdout and b"Tesla T4" in smi.stdout
    health = _kubectl(
        sim,
        "exec",
        "-n",
        MODEL_NAMESPACE,
        model_pod,
        "--",
        "curl",
        "-s",
        "-w",
        "%{http_code}",
        "localhost:5000/health",
        env=env,
    )
    assert health.stdout == b"200"
    failing = _kubectl(
        sim, "exec", "-n", MODEL_NAMESPACE, model_pod, "--", "sh", "-c", "echo bad >&2; exit 4", env=env
    )
    assert failing.returncode == 4
    assert b"bad" in failing.stderr and b"command terminated with exit code 4" in failing.stderr
    missing = _kubectl(sim, "exec", "-n", MODEL_NAMESPACE, model_pod, "--", "htop", env=env)
    assert missing.returncode == 1
    assert b'exec: "htop": executable file not found in $PATH' in missing.stderr
    piped = _kubectl(
        sim, "exec", "-i", "-n", MODEL_NAMESPACE, model_pod, "--", "cat", env=env, stdin=b"through stdin\n"
    )
    assert piped.stdout == b"through stdin\n"


@needs_kubectl
def test_kubectl_cp_round_trips_a_directory(sim, shell_pod, tmp_path: Path):
    namespace, pod = shell_pod
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("alpha\n")
    (source / "sub" / "b.txt").write_text("beta\n")
    copied = _kubectl(sim, "cp", str(source), f"{namespace}/{pod}:/data")
    assert copied.returncode == 0, copied.stderr
    listed = _kubectl(sim, "exec", "-n", namespace, pod, "--", "cat", "/data/sub/b.txt")
    assert listed.stdout == b"beta\n"
    back = tmp_path / "back"
    fetched = _kubectl(sim, "cp", f"{namespace}/{pod}:/data", str(back))
    assert fetched.returncode == 0, fetched.stderr
    assert (back / "a.txt").read_text() == "alpha\n" and (back / "sub" / "b.txt").read_text() == "beta\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http_get(port: int, path: str, deadline: float) -> bytes:
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
                if data:
                    return data
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing answered on 127.0.0.1:{port}{path}")
        time.sleep(0.1)


@needs_kubectl
@pytest.mark.parametrize("transport", ["websocket", "spdy"])
def test_kubectl_port_forward_to_the_service_reaches_the_model(sim, model_pod, transport):
    assert KUBECTL is not None
    port = _free_port()
    process = subprocess.Popen(
        [
            KUBECTL,
            "--kubeconfig",
            str(sim.kubeconfig_path),
            "port-forward",
            "-n",
            MODEL_NAMESPACE,
            f"svc/{MODEL_SERVICE}",
            f"{port}:80",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(SPDY_ONLY if transport == "spdy" else {})},
    )
    try:
        for _ in range(2):  # two connections through one forward
            response = _http_get(port, "/v1/models", time.monotonic() + 20)
            assert response.startswith(b"HTTP/1.1 200"), response[:200]
            assert b"phi-4-mini-instruct" in response
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert f"Forwarding from 127.0.0.1:{port} -> 5000".encode() in out, err


@needs_kubectl
def test_kubectl_port_forward_to_a_port_the_service_lacks_says_so(sim, model_pod):
    result = _kubectl(sim, "port-forward", "-n", MODEL_NAMESPACE, f"svc/{MODEL_SERVICE}", "5000:5000")
    assert result.returncode == 1
    assert b"does not have a service port 5000" in result.stderr


@needs_kubectl
def test_kubectl_port_forward_to_a_closed_pod_port_reports_the_kubelets_error(sim, model_pod):
    assert KUBECTL is not None
    port = _free_port()
    process = subprocess.Popen(
        [
            KUBECTL,
            "--kubeconfig",
            str(sim.kubeconfig_path),
            "port-forward",
            "-n",
            MODEL_NAMESPACE,
            f"pod/{model_pod}",
            f"{port}:6000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
                    sock.recv(10)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        _, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert b"connect: connection refused" in err and b"error forwarding port 6000" in err


@needs_kubectl
def test_kubectl_attach_streams_until_the_pod_goes_away(sim, core, shell_pod, watch_until):
    namespace, _ = shell_pod
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "attached"},
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"]}]},
        },
    )
    watch_until(
        core.list_namespaced_pod,
        lambda p: p.status.phase == "Running",
        "pod attached Running",
        timeout=60,
        namespace=namespace,
        field_selector="metadata.name=attached",
    )
    result: dict[str, subprocess.CompletedProcess[bytes]] = {}

    def attach() -> None:
        result["attach"] = _kubectl(sim, "attach", "-n", namespace, "attached")

    thread = threading.Thread(target=attach)
    thread.start()
    thread.join(timeout=3)
    assert thread.is_alive(), result.get("attach")
    core.delete_namespaced_pod("attached", namespace, grace_period_seconds=0)
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_shell_loops_conditionals_and_command_substitution(core, shell_pod):
    namespace, pod = shell_pod
    script = (
        'for i in $(seq 1 3); do echo "n=$i"; done; '
        "if test -f /etc/settings/mode; then echo has-mode; elif true; then echo no-mode; else echo never; fi; "
        "n=0; while [ $n -lt 2 ]; do n=$(echo 2); echo looped; done; "
        "echo \"quoted $(echo a   b)\" $(printf 'x y')"
    )
    out, err, status = _exec(core, namespace, pod, ["sh", "-c", script])
    assert status["status"] == "Success", err
    assert out.splitlines() == ["n=1", "n=2", "n=3", "has-mode", "looped", "quoted a b x y"]
    _, err, status = _exec(core, namespace, pod, ["sh", "-c", "for x in a; do echo"])
    assert "Syntax error" in err and status["details"]["causes"][0]["message"] == "2"
    out, _, _ = _exec(core, namespace, pod, ["sh", "-c", "echo -n hello | gzip | gunzip"])
    assert out == "hello"


def test_an_nginx_container_serves_its_default_page_through_port_forward(core, shell_pod, watch_until):
    namespace, _ = shell_pod
    core.create_namespaced_pod(
        namespace,
        {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}},
    )
    watch_until(
        core.list_namespaced_pod,
        lambda p: p.status.phase == "Running",
        "pod web Running",
        timeout=60,
        namespace=namespace,
        field_selector="metadata.name=web",
    )
    forward = portforward(core.connect_get_namespaced_pod_portforward, "web", namespace, ports="80")
    sock = forward.socket(80)
    sock.setblocking(True)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
    response = b""
    while chunk := sock.recv(65536):
        response += chunk
    sock.close()
    assert response.startswith(b"HTTP/1.1 200") and b"<h1>Welcome to nginx!</h1>" in response
    web_ip = core.read_namespaced_pod("web", namespace).status.pod_ip
    out, _, _ = _exec(core, namespace, "box", ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", web_ip])
    assert out == "200"  # pod to pod, by IP


def test_logs_previous_serves_the_last_terminated_instance(sim, core, shell_pod):
    namespace, pod = shell_pod
    logs = sim._runtime.server.pod_logs  # the kubelet's side of the log store
    with pytest.raises(kubernetes.client.ApiException) as missing:
        core.read_namespaced_pod_log(pod, namespace, previous=True)
    assert missing.value.status == 400 and "previous terminated container" in missing.value.body
    logs.append(namespace, pod, "box", "first life\n")
    logs.rotate(namespace, pod, "box")  # what the kubelet does when it restarts the container
    logs.append(namespace, pod, "box", "second life\n")
    assert core.read_namespaced_pod_log(pod, namespace, previous=True) == "first life\n"
    assert core.read_namespaced_pod_log(pod, namespace) == "second life\n"
