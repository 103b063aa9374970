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


def _columns(output: str) -> list[str]:
    import re

    return re.split(r"\s{2,}", output.splitlines()[0].strip())


@needs_kubectl
def test_wide_output_has_the_server_printers_columns(sim, model_pod_running):
    pods = _kubectl(sim, "get", "pods", "-A", "-o", "wide").stdout
    assert _columns(pods) == [
        "NAMESPACE",
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED NODE",
        "READINESS GATES",
    ]
    nodes = _kubectl(sim, "get", "nodes", "-o", "wide").stdout
    assert _columns(nodes) == [
        "NAME",
        "STATUS",
        "ROLES",
        "AGE",
        "VERSION",
        "INTERNAL-IP",
        "EXTERNAL-IP",
        "OS-IMAGE",
        "KERNEL-VERSION",
        "CONTAINER-RUNTIME",
    ]
    deployments = _kubectl(sim, "get", "deployments", "-A", "-o", "wide").stdout
    assert _columns(deployments)[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    services = _kubectl(sim, "get", "services", "-A", "-o", "wide").stdout
    assert _columns(services)[-2:] == ["AGE", "SELECTOR"]
    sts = _kubectl(sim, "get", "statefulsets", "-A", "-o", "wide").stdout
    assert _columns(sts) == ["NAMESPACE", "NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]
    ips = [line.split()[6] for line in pods.splitlines()[1:] if line.split()[6] != "<none>"]
    assert len(ips) == len(set(ips)), f"pod IPs are not unique: {ips}"


@pytest.fixture
def model_pod_running(api, watch_until):
    import kubernetes

    core = kubernetes.client.CoreV1Api(api)
    watch_until(
        core.list_namespaced_pod,
        lambda p: p.status.phase == "Running" and p.status.pod_ip,
        "the model pod running",
        timeout=90,
        namespace="inference",
    )


@needs_kubectl
def test_sort_by_and_event_ages(sim, model_pod_running):
    events = _kubectl(sim, "get", "events", "-A", "--sort-by=.lastTimestamp").stdout
    assert len(events.splitlines()) > 2 and "No resources found" not in events
    pods = _kubectl(sim, "get", "pods", "-A", "--sort-by=.metadata.name", "-o", "name").stdout.split()
    assert pods == sorted(pods, key=lambda p: p.split("/")[1])
    described = _kubectl(sim, "describe", "pod", "-n", "inference").stdout
    assert "Events:" in described and "<invalid>" not in described


@needs_kubectl
def test_job_logs_nodeport_and_rollout_undo(sim, kns, api, watch_until):
    import kubernetes

    _kubectl(sim, "create", "namespace", kns)
    n = ("-n", kns)
    _kubectl(sim, "create", "job", "once", "--image=busybox", *n, "--", "echo", "from the job")
    _kubectl(sim, "create", "deployment", "decoy", "--image=nginx", *n)
    batch = kubernetes.client.BatchV1Api(api)
    watch_until(
        batch.list_namespaced_job,
        lambda j: j.status.succeeded == 1,
        "job once complete",
        timeout=60,
        namespace=kns,
    )
    assert _kubectl(sim, "logs", "job/once", *n).stdout == "from the job\n"
    job = json.loads(_kubectl(sim, "get", "job", "once", "-o", "json", *n).stdout)
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert job["spec"]["template"]["metadata"]["labels"]["job-name"] == "once"

    _kubectl(sim, "create", "service", "nodeport", "np", "--tcp=80:8080", *n)
    port = json.loads(_kubectl(sim, "get", "svc", "np", "-o", "json", *n).stdout)["spec"]["ports"][0]
    assert 30000 <= port["nodePort"] <= 32767

    _kubectl(sim, "create", "deployment", "web", "--image=nginx:1.26", *n)
    _kubectl(sim, "rollout", "status", "deployment/web", "--timeout=60s", *n)
    _kubectl(sim, "set", "image", "deployment/web", "nginx=nginx:1.27", *n)
    _kubectl(sim, "rollout", "status", "deployment/web", "--timeout=60s", *n)
    history = _kubectl(sim, "rollout", "history", "deployment/web", *n).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    _kubectl(sim, "rollout", "undo", "deployment/web", *n)
    _kubectl(sim, "rollout", "status", "deployment/web", "--timeout=60s", *n)
    replica_sets = _kubectl(sim, "get", "rs", "-l", "app=web", "-o", "name", *n).stdout.split()
    assert len(replica_sets) == 2, replica_sets  # the first ReplicaSet came back, no third one


@needs_kubectl
def test_rollout_history_and_undo_of_statefulsets_and_daemonsets(sim, kns, tmp_path: Path):
    _kubectl(sim, "create", "namespace", kns)
    manifest = tmp_path / "workloads.yaml"
    manifest.write_text(
        f"""\
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db, namespace: {kns}}}
spec:
  serviceName: db
  replicas: 1
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec: {{containers: [{{name: db, image: "postgres:15"}}]}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent, namespace: {kns}}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec: {{containers: [{{name: agent, image: "busybox:1.36"}}]}}
"""
    )
    _kubectl(sim, "apply", "-f", str(manifest))
    n = ("-n", kns)
    _kubectl(sim, "rollout", "status", "sts/db", "--timeout=60s", *n)
    _kubectl(sim, "set", "image", "sts/db", "db=postgres:16", *n)
    _kubectl(sim, "set", "image", "ds/agent", "agent=busybox:1.37", *n)
    for workload in ("sts/db", "ds/agent"):
        history = _kubectl(sim, "rollout", "history", workload, *n).stdout
        assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"], history
    first = _kubectl(sim, "rollout", "history", "sts/db", "--revision=1", *n).stdout
    assert "postgres:15" in first
    assert "rolled back" in _kubectl(sim, "rollout", "undo", "sts/db", *n).stdout
    assert "rolled back" in _kubectl(sim, "rollout", "undo", "ds/agent", *n).stdout
    image = _kubectl(sim, "get", "sts", "db", "-o", "jsonpath={.spec.template.spec.containers[0].image}", *n)
    assert image.stdout == "postgres:15"
    revisions = _kubectl(sim, "get", "controllerrevisions", "-l", "app=db", *n).stdout.splitlines()[1:]
    assert sorted(int(r.split()[2]) for r in revisions) == [2, 3]  # revision 1 came back as 3


def test_server_side_apply_refuses_a_namespace_other_than_the_urls(raw, ns):
    body = json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "elsewhere"}}
    )
    response = raw.request(
        "PATCH",
        f"/api/v1/namespaces/{ns}/configmaps/x",
        params={"fieldManager": "test"},
        content=body,
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    assert response.status_code == 400
    assert response.json()["message"] == (
        "the namespace of the provided object does not match the namespace sent on the request"
    )


def test_a_failing_json_patch_test_gets_upstreams_answer(raw, ns):
    raw.request(
        "POST", f"/api/v1/namespaces/{ns}/configmaps", json={"metadata": {"name": "t"}, "data": {"a": "1"}}
    )
    response = raw.request(
        "PATCH",
        f"/api/v1/namespaces/{ns}/configmaps/t",
        content=json.dumps([{"op": "test", "path": "/data/a", "value": "2"}]),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 422
    status = response.json()
    assert (status["reason"], status["message"]) == (
        "Invalid",
        "the server rejected our request due to an error in our request",
    )


def test_network_policies_are_defaulted_and_validated(raw, ns):
    good = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-gateway"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "model"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 5000}]}],
        },
    }
    created = raw.request("POST", f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies", json=good)
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["ingress"][0]["ports"][0]["protocol"] == "TCP"
    bad = {
        **good,
        "metadata": {"name": "bad"},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Sideways"],
            "egress": [{"to": [{}, {"ipBlock": {"cidr": "10.0.0.0"}, "podSelector": {}}]}],
        },
    }
    refused = raw.request("POST", f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies", json=bad)
    assert refused.status_code == 422
    message = refused.json()["message"]
    assert 'spec.policyTypes[0]: Unsupported value: "Sideways"' in message
    assert "spec.egress[0].to[0]: Required value: must specify a peer" in message
    assert "spec.egress[0].to[1]: Forbidden: may not specify both ipBlock and another peer" in message
