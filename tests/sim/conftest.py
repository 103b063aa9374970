"""A simulated cluster shared by the sim's tests, and clients for it."""

from __future__ import annotations

import ssl
import time
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


class Raw:
    """Plain HTTP against the simulated API server (for what the official client cannot express)."""

    def __init__(self, sim: SimCluster) -> None:
        config = yaml.safe_load(Path(sim.kubeconfig_path).read_text())
        self.token: str = config["users"][0]["user"]["token"]
        self.base = sim.server_url
        context = ssl.create_default_context(cadata=sim.ca_pem.decode())
        self.client = httpx.Client(base_url=self.base, verify=context, timeout=30,
                                   headers={"Authorization": f"Bearer {self.token}"})

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


def _watch_until(list_fn: Callable[..., Any], predicate: Callable[[Any], bool], what: str, *,
                 timeout: float = 10.0, **kwargs: Any) -> Any:
    deadline = time.monotonic() + timeout
    listing = list_fn(**kwargs)
    last = None
    for obj in listing.items:
        last = obj
        if predicate(obj):
            return obj
    version = listing.metadata.resource_version
    while (remaining := deadline - time.monotonic()) > 0:
        stream = kubernetes.watch.Watch()
        for event in stream.stream(list_fn, resource_version=version, timeout_seconds=max(1, int(remaining)),
                                   **kwargs):
            obj = event["object"]
            version = obj.metadata.resource_version
            last = obj
            if event["type"] != "DELETED" and predicate(obj):
                stream.stop()
                return obj
            if time.monotonic() > deadline:
                stream.stop()
                break
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last}")


def _watch_gone(list_fn: Callable[..., Any], what: str, *, timeout: float = 10.0, **kwargs: Any) -> None:
    deadline = time.monotonic() + timeout
    while (listing := list_fn(**kwargs)).items:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} to go; still there: "
                                 f"{[o.metadata.name for o in listing.items]}")
        stream = kubernetes.watch.Watch()
        for event in stream.stream(list_fn, resource_version=listing.metadata.resource_version,
                                   timeout_seconds=max(1, int(remaining)), **kwargs):
            if event["type"] == "DELETED":
                stream.stop()


@pytest.fixture(scope="session")
def watch_until() -> Callable[..., Any]:
    """`watch_until(list_fn, predicate, what, timeout=10, **list_kwargs)`: the first object the official client's
    `list_fn` lists, or then watches (server-side `timeoutSeconds`), that satisfies `predicate`; an
    AssertionError naming `what` and the last object seen after `timeout` wall seconds."""
    return _watch_until


@pytest.fixture(scope="session")
def watch_gone() -> Callable[..., None]:
    """`watch_gone(list_fn, what, timeout=10, **list_kwargs)`: returns once `list_fn` lists nothing."""
    return _watch_gone
