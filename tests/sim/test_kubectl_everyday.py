"""The everyday kubectl commands an operator types, through the real kubectl 1.32: imperative creates (their
protobuf bodies), auth, explain and client-side validation (OpenAPI v2 in protobuf, v3), and what it prints."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_aksai.sim import SimCluster
from pytest_aksai.sim._apiserver import _protobuf

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


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


@pytest.fixture
def kns(sim: SimCluster) -> Iterator[str]:
    name = f"k-{uuid.uuid4().hex[:8]}"
    yield name
    if KUBECTL is not None:
        _kubectl(sim, "delete", "namespace", name, "--wait=false", check=False)


@needs_kubectl
def test_imperative_creates_send_protobuf_the_server_decodes(sim, kns):
    run = lambda *a: _kubectl(sim, *a).stdout  # noqa: E731
    assert run("create", "namespace", kns).strip() == f"namespace/{kns} created"
    n = ("-n", kns)
    assert "created" in run(
        "create", "deployment", "web", "--image=nginx:1.27", "--replicas=0", "--port=80", *n
    )
    assert "created" in run("create", "configmap", "cm", "--from-literal=mode=fast", *n)
    assert "created" in run("create", "secret", "generic", "creds", "--from-literal=password=s3cret", *n)
    assert "created" in run("create", "serviceaccount", "robot", *n)
    assert "created" in run("create", "job", "once", "--image=busybox", *n, "--", "echo", "hi")
    assert "created" in run("create", "cronjob", "tick", "--image=busybox", "--schedule=*/5 * * * *", *n)
    assert "created" in run("create", "service", "nodeport", "np", "--tcp=80:8080", *n)
    assert "created" in run("create", "quota", "q", "--hard=pods=10,requests.cpu=4", *n)
    assert "created" in run("create", "role", "reader", "--verb=get,list", "--resource=pods", *n)
    assert "created" in run(
        "create", "rolebinding", "rb", "--role=reader", "--serviceaccount", f"{kns}:robot", *n
    )
    assert "created" in run("create", "pdb", "web", "--selector=app=web", "--min-available=1", *n)
    assert "created" in run("create", "ingress", "web", "--rule=web.example.com/=web:80", *n)
    assert "created" in run("run", "pod1", "--image=nginx", "--env=A=B", "--labels=app=pod1", "--port=80", *n)
    assert "exposed" in run("expose", "deployment", "web", "--port=80", *n)
    assert "autoscaled" in run("autoscale", "deployment", "web", "--min=1", "--max=3", *n)
    assert run("create", "token", "robot", *n).startswith("eyJ")

    deployment = json.loads(run("get", "deployment", "web", "-o", "json", *n))
    assert deployment["spec"]["replicas"] == 0  # a pointer field's zero survives the protobuf decoding
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert "hostNetwork" not in deployment["spec"]["template"]["spec"]  # omitempty zero values stay omitted
    secret = json.loads(run("get", "secret", "creds", "-o", "json", *n))
    assert base64.b64decode(secret["data"]["password"]) == b"s3cret"
    quota = json.loads(run("get", "quota", "q", "-o", "json", *n))
    assert quota["spec"]["hard"] == {"pods": "10", "requests.cpu": "4"}
    ingress = json.loads(run("get", "ingress", "web", "-o", "json", *n))
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["number"] == 80
    pod = json.loads(run("get", "pod", "pod1", "-o", "json", *n))
    assert pod["spec"]["containers"][0]["env"] == [{"name": "A", "value": "B"}]
    hpa = json.loads(run("get", "hpa", "web", "-o", "json", *n))
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3)


def test_a_protobuf_body_of_a_kind_the_server_cannot_decode_gets_a_415_naming_it(raw):
    unknown = _protobuf._message_class("k8s.io.apimachinery.pkg.runtime.Unknown")()
    type_meta = getattr(unknown, "typeMeta")  # noqa: B009
    type_meta.apiVersion, type_meta.kind = "example.com/v1", "Widget"
    body = _protobuf.MAGIC + unknown.SerializeToString()
    response = raw.request(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        content=body,
        headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
    )
    assert response.status_code == 415
    message = response.json()["message"]
    assert "not Widget (example.com/v1)" in message and "ConfigMap" in message
    garbage = raw.request(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        content=b"k8s\x00\xff\xff\xff",
        headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
    )
    assert garbage.status_code == 415


@needs_kubectl
def test_auth_can_i_and_whoami(sim):
    assert _kubectl(sim, "auth", "can-i", "create", "pods").stdout.strip() == "yes"
    whoami = _kubectl(sim, "auth", "whoami", "-o", "json").stdout
    assert "system:masters" in json.loads(whoami)["status"]["userInfo"]["groups"]
    assert _kubectl(sim, "auth", "can-i", "--list").stdout.splitlines()[1].startswith("*.*")


@needs_kubectl
def test_explain_reads_the_real_schemas(sim):
    out = _kubectl(sim, "explain", "pod.spec").stdout
    assert "FIELD: spec <PodSpec>" in out
    assert "containers\t<[]Container>" in out and "nodeSelector\t<map[string]string>" in out
    strategy = _kubectl(sim, "explain", "deployment.spec.strategy.rollingUpdate").stdout
    assert "maxSurge" in strategy
    v2 = _kubectl(sim, "explain", "pod.spec.containers.resources", "--output=plaintext-openapiv2").stdout
    assert "limits" in v2
    missing = _kubectl(sim, "explain", "pod.spec.nope", check=False)
    assert missing.returncode == 1 and 'field "nope" does not exist' in missing.stderr


@needs_kubectl
def test_apply_of_a_file_whose_crd_is_missing_applies_the_rest(sim, tmp_path: Path, kns):
    _kubectl(sim, "create", "namespace", kns)
    manifest = tmp_path / "mixed.yaml"
    manifest.write_text(
        f"""\
apiVersion: v1
kind: ConfigMap
metadata: {{name: first, namespace: {kns}}}
---
apiVersion: example.com/v1
kind: Widget
metadata: {{name: w, namespace: {kns}}}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {{name: second, namespace: {kns}}}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {{name: listed, namespace: {kns}}}
  spec:
    selector: {{matchLabels: {{app: listed}}}}
    template:
      metadata: {{labels: {{app: listed}}}}
      spec:
        containers:
        - {{name: c, image: nginx, resources: {{limits: {{cpu: 1, memory: 1Gi}}}}}}
"""
    )
    result = _kubectl(sim, "apply", "-f", str(manifest), check=False)
    assert result.returncode == 1
    assert "proto:" not in result.stderr
    assert 'resource mapping not found for name: "w"' in result.stderr
    assert "ensure CRDs are installed first" in result.stderr
    for created in ("configmap/first created", "configmap/second created", "deployment.apps/listed created"):
        assert created in result.stdout
    typo = tmp_path / "typo.yaml"
    typo.write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: t, namespace: {kns}}}\ndatta: {{}}\n"
    )
    strict = _kubectl(sim, "apply", "-f", str(typo), check=False)
    assert strict.returncode == 1 and 'unknown field "datta"' in strict.stderr
