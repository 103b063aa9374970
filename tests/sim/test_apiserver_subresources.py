"""Subresources: status, scale, TokenRequest (+ OIDC discovery), TokenReview, pods/log, service/pod proxy."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator

import jwt
import kubernetes
import pytest
from aiohttp import web
from kubernetes.client.exceptions import ApiException

from pytest_aksai.sim import SimCluster


def _deployment() -> dict:  # type: ignore[type-arg]
    return {
        "metadata": {"name": "d"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"schedulerName": "nobody", "containers": [{"name": "c", "image": "i"}]},
            },
        },
    }


def test_status_subresource_separates_spec_and_status(api, ns):
    apps = kubernetes.client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, _deployment())
    main = apps.patch_namespaced_deployment("d", ns, {"status": {"observedGeneration": 99}})
    assert main.status.observed_generation != 99, "the main resource ignores status"
    status = apps.patch_namespaced_deployment_status(
        "d", ns, {"spec": {"replicas": 5}, "status": {"observedGeneration": 1}}
    )
    assert status.status.observed_generation == 1
    assert status.spec.replicas == 0, "the status subresource ignores spec"
    assert status.metadata.generation == 1


def test_scale_subresource_of_deployments(api, ns):
    apps = kubernetes.client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, _deployment())
    scale = apps.read_namespaced_deployment_scale("d", ns)
    assert scale.spec.replicas == 0
    assert scale.status.selector == "app=d"
    apps.patch_namespaced_deployment_scale("d", ns, {"spec": {"replicas": 0}})
    out = apps.replace_namespaced_deployment_scale(
        "d", ns, {"metadata": {"name": "d"}, "spec": {"replicas": 0}}
    )
    assert out.spec.replicas == 0
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment_scale("d", ns, {"spec": {"replicas": -3}})
    assert err.value.status == 422
    assert json.loads(err.value.body)["reason"] == "Invalid"


def test_scale_subresource_of_custom_resources(api):
    custom = kubernetes.client.CustomObjectsApi(api)
    body = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "scale-me"},
        "spec": {
            "template": {
                "spec": {
                    "nodeClassRef": {
                        "group": "karpenter.azure.com",
                        "kind": "AKSNodeClass",
                        "name": "default",
                    },
                    "requirements": [],
                }
            },
            "replicas": 0,
        },
    }
    custom.create_cluster_custom_object("karpenter.sh", "v1", "nodepools", body)
    try:
        scale = custom.get_cluster_custom_object_scale("karpenter.sh", "v1", "nodepools", "scale-me")
        assert scale["kind"] == "Scale"
        assert scale["spec"]["replicas"] == 0
        custom.patch_cluster_custom_object_scale(
            "karpenter.sh", "v1", "nodepools", "scale-me", {"spec": {"replicas": 2}}
        )
        assert (
            custom.get_cluster_custom_object("karpenter.sh", "v1", "nodepools", "scale-me")["spec"][
                "replicas"
            ]
            == 2
        )
    finally:
        custom.delete_cluster_custom_object("karpenter.sh", "v1", "nodepools", "scale-me")


def test_token_request_is_a_verifiable_rs256_jwt(api, raw, ns):
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_service_account(ns, {"metadata": {"name": "workload"}})
    sa = core.read_namespaced_service_account("workload", ns)
    out = core.create_namespaced_service_account_token(
        "workload", ns, {"spec": {"audiences": ["api://AzureADTokenExchange"], "expirationSeconds": 3600}}
    )
    token = out.status.token
    config = raw.request("GET", "/.well-known/openid-configuration", headers={"Authorization": ""}).json()
    # With the azure add-on the issuer is the cluster's OIDC issuer host (as on AKS), not the API server.
    assert config["issuer"].startswith("https://127.0.0.1:")
    assert config["jwks_uri"] == config["issuer"].rstrip("/") + "/openid/v1/jwks"
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    jwks = raw.request("GET", "/openid/v1/jwks", headers={"Authorization": ""}).json()
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(
        token,
        jwt.PyJWK(key).key,
        algorithms=["RS256"],
        audience="api://AzureADTokenExchange",
        issuer=config["issuer"],
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["sub"] == f"system:serviceaccount:{ns}:workload"
    assert claims["kubernetes.io"]["serviceaccount"]["uid"] == sa.metadata.uid
    assert claims["exp"] - claims["iat"] == 3600
    with pytest.raises(ApiException) as err:
        core.create_namespaced_service_account_token("workload", ns, {"spec": {"expirationSeconds": 60}})
    assert err.value.status == 422
    with pytest.raises(ApiException) as err:
        core.create_namespaced_service_account_token("nobody", ns, {"spec": {}})
    assert err.value.status == 404


def test_token_review_and_access_review(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    token = core.create_namespaced_service_account_token(
        "default", ns, {"spec": {"audiences": ["a"]}}
    ).status.token
    auth = kubernetes.client.AuthenticationV1Api(api)
    review = auth.create_token_review({"spec": {"token": token, "audiences": ["a"]}})
    assert review.status.authenticated is True
    assert review.status.user.username == f"system:serviceaccount:{ns}:default"
    bad = auth.create_token_review({"spec": {"token": token + "x"}})
    assert bad.status.authenticated is False
    authz = kubernetes.client.AuthorizationV1Api(api)
    ssar = authz.create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"verb": "list", "resource": "pods"}}}
    )
    assert ssar.status.allowed is True


def test_pod_logs(sim: SimCluster, api, ns):
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": "p"},
            "spec": {
                "schedulerName": "nobody",
                "containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"}],
            },
        },
    )
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("p", ns)
    assert err.value.status == 400
    assert (
        json.loads(err.value.body)["message"]
        == "a container name must be specified for pod p, choose one of: [a b]"
    )
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("p", ns, container="a")
    assert err.value.status == 400
    assert "is waiting to start: ContainerCreating" in json.loads(err.value.body)["message"]
    runtime = sim._runtime
    assert sim.loop is not None and runtime is not None
    done = threading.Event()

    def _append() -> None:
        runtime.ctx.pod_logs.append(ns, "p", "a", "line 1\nline 2\nline 3\n")  # type: ignore[attr-defined]
        done.set()

    sim.loop.call_soon_threadsafe(_append)
    assert done.wait(5)
    assert core.read_namespaced_pod_log("p", ns, container="a") == "line 1\nline 2\nline 3\n"
    assert core.read_namespaced_pod_log("p", ns, container="a", tail_lines=1) == "line 3\n"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("p", ns, container="zzz")
    assert err.value.status == 400


@pytest.fixture
def upstream() -> Iterator[tuple[int, threading.Event]]:
    """A local HTTP server standing in for a model pod: `/hello` and an SSE stream `/stream`."""
    gate = threading.Event()
    loop = asyncio.new_event_loop()

    async def hello(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "path": request.path,
                "query": request.query_string,
                "auth": request.headers.get("Authorization"),
            }
        )

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: first\n\n")
        await loop.run_in_executor(None, gate.wait, 10)
        await response.write(b"data: second\n\n")
        return response

    app = web.Application()
    app.add_routes([web.get("/hello", hello), web.get("/stream", stream)])
    runner = web.AppRunner(app)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(5)
    yield port, gate
    gate.set()
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_service_proxy_forwards_and_streams(api, raw, ns, upstream):
    port, gate = upstream
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": "model"},
            "spec": {
                "selector": {"app": "model"},
                "ports": [{"name": "http", "port": 80, "targetPort": 5000}],
            },
        },
    )
    response = raw.request("GET", f"/api/v1/namespaces/{ns}/services/model:80/proxy/hello")
    assert response.status_code == 503
    assert response.json()["reason"] == "ServiceUnavailable"
    core.create_namespaced_pod(
        ns,
        {
            "metadata": {
                "name": "m",
                "labels": {"app": "model"},
                "annotations": {"sim.aksai.dev/http-port": str(port)},
            },
            "spec": {"schedulerName": "nobody", "containers": [{"name": "c", "image": "i"}]},
        },
    )
    core.patch_namespaced_pod_status(
        "m", ns, {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    )
    response = raw.request("GET", f"/api/v1/namespaces/{ns}/services/model:80/proxy/hello", params={"x": "1"})
    assert response.status_code == 200
    assert response.json() == {"path": "/hello", "query": "x=1", "auth": None}
    by_name = raw.request("GET", f"/api/v1/namespaces/{ns}/services/model:http/proxy/hello")
    assert by_name.status_code == 200
    pod = raw.request("GET", f"/api/v1/namespaces/{ns}/pods/m/proxy/hello")
    assert pod.json()["path"] == "/hello"
    with raw.client.stream("GET", f"/api/v1/namespaces/{ns}/services/model:80/proxy/stream") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        chunks = stream.iter_raw()
        started = time.monotonic()
        assert next(chunks) == b"data: first\n\n", "the first event arrives before the upstream finishes"
        assert time.monotonic() - started < 5
        gate.set()
        assert b"".join(chunks) == b"data: second\n\n"
