"""Reaching a workspace's model server: port-forward, the service proxy, the fallback between them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_aksai import Finding
from pytest_aksai.kube import Cluster, connect
from pytest_aksai.kube._endpoint import workspace_endpoint
from pytest_aksai.kube._rest import PODS, SERVICES, create
from pytest_aksai.kube._wait import condition_is, wait_for
from pytest_aksai.sim import SimCluster

PHI4 = "inference/workspace-phi4-mini"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with SimCluster(time_scale=600, kubeconfig_path=tmp_path_factory.mktemp("sim") / "kc") as sim:
        cluster = connect(profile="sim", provider="sim", kubeconfig=sim.kubeconfig_path, context="aksai-sim")
        cluster.time_scale = 600
        from pytest_aksai.kube._kaito import wait_workspace_ready

        wait_workspace_ready(cluster, PHI4, 3600)
        yield cluster
        cluster.close()


@pytest.mark.parametrize(
    ("route", "via"),
    [("auto", "port-forward"), ("port-forward", "port-forward"), ("service-proxy", "service-proxy")],
)
def test_each_route_reaches_the_model(cluster: Cluster, route: str, via: str) -> None:
    endpoint = workspace_endpoint(cluster, PHI4, direct_urls={}, route=route)  # type: ignore[arg-type]
    try:
        assert endpoint.via == via
        with endpoint.http() as http:
            assert [m["id"] for m in http.get("v1/models").json()["data"]] == ["phi-4-mini-instruct"]
        with endpoint.openai() as client:
            chunks = list(
                client.chat.completions.create(
                    model="phi-4-mini-instruct",
                    max_tokens=8,
                    stream=True,
                    messages=[{"role": "user", "content": "hello"}],
                )
            )
        assert len(chunks) > 2
    finally:
        endpoint.close()


def test_direct_url_wins(cluster: Cluster) -> None:
    endpoint = workspace_endpoint(cluster, PHI4, direct_urls={PHI4: "http://gateway.example/phi4"})
    assert (endpoint.via, endpoint.base_url) == ("direct", "http://gateway.example/phi4")


def test_refused_port_forward_falls_back_or_fails_clearly(cluster: Cluster) -> None:
    """A ready pod whose port nothing serves: the API server refuses the port-forward."""
    create(
        cluster._api,
        PODS,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "plain", "labels": {"app": "plain"}},
            # an image with no web server of its own (the sim's nginx would answer on 80)
            "spec": {
                "containers": [
                    {"name": "c", "image": "example.com/plain:1", "ports": [{"containerPort": 80}]}
                ]
            },
        },
        "default",
    )
    create(
        cluster._api,
        SERVICES,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "plain"},
            "spec": {"selector": {"app": "plain"}, "ports": [{"name": "http", "port": 80, "targetPort": 80}]},
        },
        "default",
    )
    wait_for(
        cluster,
        PODS,
        "plain",
        "default",
        until=lambda p: condition_is(p, "Ready"),
        timeout=600,
        expected="Ready",
    )
    # Nothing listens on the target port: the service proxy would dial the same port, so `auto` does not fall
    # back (that is for an API server that refuses port-forwards); both routes name the refused port.
    for route in ("port-forward", "auto"):
        with pytest.raises(Finding, match="connection refused on the target port 80 of ready pod plain"):
            workspace_endpoint(cluster, "default/plain", direct_urls={}, route=route)


def test_no_token_in_the_endpoints_repr(cluster: Cluster) -> None:
    endpoint = workspace_endpoint(cluster, PHI4, direct_urls={}, route="service-proxy")
    token = endpoint.headers()["Authorization"].removeprefix("Bearer ")
    assert len(token) > 16
    assert token not in repr(endpoint)
    assert token not in str(endpoint)
