"""A simulated cluster shared by the sim's tests, and clients for it."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes
import kubernetes.watch
import pytest
import yaml

from pytest_aksai.sim import SimCluster
from tests.sim import _watching


class Raw:
    """Plain HTTP against the simulated API server (for what the official client cannot express)."""

    def __init__(self, sim: SimCluster) -> None:
        config = yaml.safe_load(Path(sim.kubeconfig_path).read_text())
        self.token: str = config["users"][0]["user"]["token"]
        self.base = sim.server_url
        context = ssl.create_default_context(cadata=sim.ca_pem.decode())
        self.client = httpx.Client(
            base_url=self.base, verify=context, timeout=30, headers={"Authorization": f"Bearer {self.token}"}
        )

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.client.request(method, path, **kw)


@pytest.fixture(scope="session")
def sim() -> Iterator[SimCluster]:
    with SimCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def api(sim: SimCluster) -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(str(sim.kubeconfig_path))


@pytest.fixture(scope="session")
def raw(sim: SimCluster) -> Iterator[Raw]:
    client = Raw(sim)
    yield client
    client.client.close()


@pytest.fixture
def ns(api: kubernetes.client.ApiClient) -> Iterator[str]:
    """A fresh namespace for one test."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="session")
def watch_until() -> Callable[..., Any]:
    """`watch_until(list_fn, predicate, what, timeout=10, **list_kwargs)`: the first object the official client's
    `list_fn` lists, or then watches (server-side `timeoutSeconds`), that satisfies `predicate`; an
    AssertionError naming `what` and the last object seen after `timeout` wall seconds."""
    return _watching.wait_for


@pytest.fixture(scope="session")
def watch_gone() -> Callable[..., None]:
    """`watch_gone(list_fn, what, timeout=10, **list_kwargs)`: returns once `list_fn` lists nothing."""
    return _watching.wait_gone


WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.test.aksai.dev"},
    "spec": {
        "group": "test.aksai.dev",
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "shortNames": ["wd"],
            "categories": ["all"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {
                    "status": {},
                    "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"},
                },
                "additionalPrinterColumns": [{"name": "Size", "type": "string", "jsonPath": ".spec.size"}],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {
                                    "size": {"type": "string", "enum": ["S", "M", "L"]},
                                    "replicas": {"type": "integer", "minimum": 0, "default": 1},
                                    "port": {"x-kubernetes-int-or-string": True},
                                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                },
                            },
                            "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def widgets(api: kubernetes.client.ApiClient) -> Iterator[object]:
    """A namespaced test CRD (`widgets.test.aksai.dev`), so API-server tests need no add-on's CRDs."""
    ext = kubernetes.client.ApiextensionsV1Api(api)
    crd = ext.create_custom_resource_definition(WIDGET_CRD)
    yield crd
    ext.delete_custom_resource_definition("widgets.test.aksai.dev")
