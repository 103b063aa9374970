"""Watch-based waits: success from a later event, the explanation on timeout, and compacted history."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException

from pytest_aksai.kube import Cluster, connect
from pytest_aksai.kube._rest import CONFIGMAPS, WORKSPACES, create, patch_merge, watch
from pytest_aksai.kube._wait import WaitTimeout, wait_for
from pytest_aksai.sim import SimCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with SimCluster(kubeconfig_path=tmp_path_factory.mktemp("sim") / "kc") as sim:
        cluster = connect(
            profile="sim", provider="sim", kubeconfig=Path(sim.kubeconfig_path), context="aksai-sim"
        )
        cluster.time_scale = 60.0
        yield cluster
        cluster.close()


def _labelled(obj: dict | None) -> bool:
    return (obj or {}).get("metadata", {}).get("labels", {}).get("ready") == "yes"


def test_a_wait_ends_on_the_event_it_waits_for(cluster: Cluster) -> None:
    create(cluster._api, CONFIGMAPS, {"metadata": {"name": "later"}, "data": {}}, "default")
    writer = threading.Thread(
        target=patch_merge,
        args=(cluster._api, CONFIGMAPS, "later", {"metadata": {"labels": {"ready": "yes"}}}, "default"),
    )
    writer.start()
    result = wait_for(
        cluster, CONFIGMAPS, "later", "default", until=_labelled, expected="labelled", timeout=600
    )
    writer.join()
    assert _labelled(result.obj)
    assert result.timeline[0].event == "LIST"
    assert 0 <= result.elapsed < 600


def test_a_timed_out_wait_says_what_was_expected_and_seen(cluster: Cluster) -> None:
    create(cluster._api, CONFIGMAPS, {"metadata": {"name": "never"}, "data": {}}, "default")
    with pytest.raises(WaitTimeout) as raised:
        wait_for(
            cluster,
            CONFIGMAPS,
            "never",
            "default",
            until=_labelled,
            expected="labelled ready=yes",
            timeout=60,
        )
    message = str(raised.value)
    assert message.startswith(
        "ConfigMap default/never did not become labelled ready=yes within 60 cluster seconds."
    )
    assert (
        " Expected labelled ready=yes. Observed no status yet. Look at kubectl describe configmaps never -n "
        "default.\n  timeline: +"
    ) in message
    # The first observation comes when the wait lists the object: +0 s, or +1 s on a busy machine.
    assert re.search(r"\n  timeline: \+[01]s no status yet", message), message
    assert (
        raised.value.headline()
        == "ConfigMap default/never did not become labelled ready=yes within 60 cluster seconds"
    )
    assert raised.value.timeline and raised.value.timeline[0].event == "LIST"


def test_a_compacted_resource_version_is_an_api_error_not_a_crash(cluster: Cluster) -> None:
    with pytest.raises(ApiException) as raised:
        list(watch(cluster._api, WORKSPACES, "inference", resource_version="1", timeout_seconds=2))
    assert raised.value.status == 410
    assert "too old resource version" in str(raised.value.reason)
