"""Watch: event types, resume, 410 Expired, timeouts, bookmarks, filtering, custom resources; selectors; paging."""

from __future__ import annotations

import asyncio
import json
import time

import kubernetes
import pytest
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from pytest_aksai.sim._apiserver import ApiError, Store
from pytest_aksai.sim._clock import VirtualClock


def _cm(name: str, **labels: str) -> dict:  # type: ignore[type-arg]
    return {"metadata": {"name": name, "labels": labels}}


def _events(raw, path: str, params: dict, until: int | None = None) -> list[dict]:  # type: ignore[type-arg]
    """Read a watch stream until it ends (server-side timeout) or `until` events arrived."""
    out = []
    with raw.client.stream("GET", path, params={"watch": "true", **params}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line:
                out.append(json.loads(line))
                if until is not None and len(out) >= until:
                    break
    return out


def test_added_modified_deleted_with_resume(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, _cm("a"))
    core.patch_namespaced_config_map("a", ns, {"data": {"k": "v"}})
    core.delete_namespaced_config_map("a", ns)
    seen = []
    for event in k8s_watch.Watch().stream(
        core.list_namespaced_config_map, ns, resource_version=start, timeout_seconds=1
    ):
        seen.append((event["type"], event["object"].metadata.name))
    assert seen == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]


def test_watch_without_resource_version_starts_with_current_state(raw, api, ns):
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, _cm("x"))
    events = _events(raw, f"/api/v1/namespaces/{ns}/configmaps", {"timeoutSeconds": "1"})
    assert [
        (e["type"], e["object"]["metadata"]["name"]) for e in events if e["object"]["metadata"]["name"] == "x"
    ] == [("ADDED", "x")]


def test_compacted_resource_version_is_410_expired(api, raw, ns):
    events = _events(
        raw, f"/api/v1/namespaces/{ns}/configmaps", {"resourceVersion": "1", "timeoutSeconds": "5"}
    )
    assert len(events) == 1
    assert events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["kind"] == "Status"
    assert status["code"] == 410
    assert status["reason"] == "Expired"
    assert status["message"].startswith("too old resource version: 1 (")
    core = kubernetes.client.CoreV1Api(api)
    with pytest.raises(ApiException) as err:
        for _ in k8s_watch.Watch().stream(
            core.list_namespaced_config_map, ns, resource_version="1", timeout_seconds=5
        ):
            pass
    assert err.value.status == 410


def test_history_is_compacted_to_a_bounded_window():
    store = Store(VirtualClock(), history_window=50)
    cms = store.resource("v1", "configmaps")
    store.create(store.resource("v1", "namespaces"), {"metadata": {"name": "default"}})
    first = store.create(cms, _cm("c"))["metadata"]["resourceVersion"]
    for i in range(100):
        store.patch(cms, "c", {"data": {"i": str(i)}}, "merge", namespace="default")
    with pytest.raises(ApiError) as err:
        store.watch(cms, "default", resource_version=first)
    assert err.value.code == 410
    assert err.value.reason == "Expired"
    recent = int(store.resource_version) - 10
    watch = store.watch(cms, "default", resource_version=str(recent))
    assert watch.queue.qsize() == 10


def test_continue_token_past_compaction_is_410():
    store = Store(VirtualClock(), history_window=20)
    cms = store.resource("v1", "configmaps")
    store.create(store.resource("v1", "namespaces"), {"metadata": {"name": "default"}})
    for i in range(5):
        store.create(cms, _cm(f"c{i}"))
    page = store.list_page(cms, "default", limit=2)
    assert page.continue_token
    assert [o["metadata"]["name"] for o in page.items] == ["c0", "c1"]
    for i in range(30):
        store.patch(cms, "c4", {"data": {"i": str(i)}}, "merge", namespace="default")
    with pytest.raises(ApiError) as err:
        store.list_page(cms, "default", limit=2, continue_token=page.continue_token)
    assert err.value.code == 410
    assert err.value.reason == "Expired"
    assert err.value.message.startswith("The provided continue parameter is too old")


def test_server_side_timeout_ends_the_stream(raw, ns):
    started = time.monotonic()
    events = _events(
        raw, f"/api/v1/namespaces/{ns}/configmaps", {"timeoutSeconds": "1", "resourceVersion": "0"}
    )
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 5
    assert events == []


def test_bookmarks_when_asked(raw, api, ns):
    core = kubernetes.client.CoreV1Api(api)
    rv = core.create_namespaced_config_map(ns, _cm("b")).metadata.resource_version
    events = _events(
        raw,
        f"/api/v1/namespaces/{ns}/configmaps",
        {"timeoutSeconds": "2", "allowWatchBookmarks": "true", "resourceVersion": rv},
    )
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert bookmarks, events
    assert bookmarks[0]["object"]["kind"] == "ConfigMap"
    assert int(bookmarks[0]["object"]["metadata"]["resourceVersion"]) >= int(rv)
    without = _events(
        raw, f"/api/v1/namespaces/{ns}/configmaps", {"timeoutSeconds": "2", "resourceVersion": rv}
    )
    assert not [e for e in without if e["type"] == "BOOKMARK"]


def test_send_initial_events_ends_with_a_bookmark(raw, api, ns):
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, _cm("i"))
    events = _events(
        raw,
        f"/api/v1/namespaces/{ns}/configmaps",
        {
            "sendInitialEvents": "true",
            "allowWatchBookmarks": "true",
            "resourceVersionMatch": "NotOlderThan",
            "timeoutSeconds": "3",
        },
        until=2,
    )
    names = [(e["type"], e["object"]["metadata"].get("name")) for e in events]
    assert ("ADDED", "i") in names
    assert events[-1]["type"] == "BOOKMARK"
    assert events[-1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_namespace_and_selector_filtering(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    other = f"{ns}-o"
    core.create_namespace({"metadata": {"name": other}})
    try:
        start = core.list_config_map_for_all_namespaces().metadata.resource_version
        core.create_namespaced_config_map(ns, _cm("match", tier="web"))
        core.create_namespaced_config_map(ns, _cm("nomatch", tier="db"))
        core.create_namespaced_config_map(other, _cm("elsewhere", tier="web"))
        core.patch_namespaced_config_map("nomatch", ns, {"metadata": {"labels": {"tier": "web"}}})
        core.patch_namespaced_config_map("match", ns, {"metadata": {"labels": {"tier": "db"}}})
        seen = [
            (e["type"], e["object"].metadata.name)
            for e in k8s_watch.Watch().stream(
                core.list_namespaced_config_map,
                ns,
                label_selector="tier=web",
                resource_version=start,
                timeout_seconds=1,
            )
        ]
        # Objects that start or stop matching the selector are ADDED to / DELETED from the watch.
        assert seen == [("ADDED", "match"), ("ADDED", "nomatch"), ("DELETED", "match")]
    finally:
        core.delete_namespace(other)


def test_watch_custom_resources(api, ns, widgets):
    custom = kubernetes.client.CustomObjectsApi(api)
    start = custom.list_namespaced_custom_object("test.aksai.dev", "v1", ns, "widgets")["metadata"][
        "resourceVersion"
    ]
    custom.create_namespaced_custom_object(
        "test.aksai.dev",
        "v1",
        ns,
        "widgets",
        {
            "apiVersion": "test.aksai.dev/v1",
            "kind": "Widget",
            "metadata": {"name": "ta"},
            "spec": {"size": "S"},
        },
    )
    seen = [
        (e["type"], e["object"]["metadata"]["name"])
        for e in k8s_watch.Watch().stream(
            custom.list_namespaced_custom_object,
            "test.aksai.dev",
            "v1",
            ns,
            "widgets",
            resource_version=start,
            timeout_seconds=1,
        )
    ]
    assert seen == [("ADDED", "ta")]


def test_in_process_watch_yields_copies():
    async def scenario() -> list[tuple[str, str]]:
        store = Store(VirtualClock())
        store.attach_loop(asyncio.get_running_loop())
        store.create(store.resource("v1", "Namespace"), {"metadata": {"name": "default"}})
        cms = store.resource("v1", "ConfigMap")
        watch = store.watch(cms, "default", resource_version=store.resource_version)
        store.create(cms, _cm("a"))
        store.delete(cms, "a", "default")
        out = []
        async for event_type, obj in watch:
            obj["metadata"]["name"] += "-mutated"
            out.append((event_type, obj["metadata"]["name"]))
            if len(out) == 2:
                watch.close()
        return out

    assert asyncio.run(scenario()) == [("ADDED", "a-mutated"), ("DELETED", "a-mutated")]


# ---- selectors and paging ------------------------------------------------------------------------------
@pytest.fixture
def labelled(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    for name, labels in [
        ("a", {"app": "web", "tier": "front"}),
        ("b", {"app": "web", "tier": "back"}),
        ("c", {"app": "db"}),
        ("d", {}),
    ]:
        core.create_namespaced_config_map(ns, {"metadata": {"name": name, "labels": labels}})
    return core


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["a", "b"]),
        ("app==web", ["a", "b"]),
        ("app!=web", ["c", "d"]),
        ("app in (web,db)", ["a", "b", "c"]),
        ("app notin (web)", ["c", "d"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c", "d"]),
        ("app=web,tier=back", ["b"]),
    ],
)
def test_label_selectors(labelled, ns, selector, expected):
    names = [c.metadata.name for c in labelled.list_namespaced_config_map(ns, label_selector=selector).items]
    assert [n for n in names if n in "abcd"] == expected


def test_bad_label_selector_is_400(labelled, ns):
    with pytest.raises(ApiException) as err:
        labelled.list_namespaced_config_map(ns, label_selector="app in web")
    assert err.value.status == 400
    assert json.loads(err.value.body)["reason"] == "BadRequest"


def test_field_selectors(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    for name, policy in [("p1", "Always"), ("p2", "Never")]:
        core.create_namespaced_pod(
            ns,
            {
                "metadata": {"name": name},
                "spec": {
                    "restartPolicy": policy,
                    "schedulerName": "nobody",
                    "containers": [{"name": "c", "image": "i"}],
                },
            },
        )
    by_policy = core.list_namespaced_pod(ns, field_selector="spec.restartPolicy=Never").items
    assert [p.metadata.name for p in by_policy] == ["p2"]
    unbound = core.list_namespaced_pod(ns, field_selector="spec.nodeName=").items
    assert [p.metadata.name for p in unbound] == ["p1", "p2"]
    by_name = core.list_namespaced_pod(ns, field_selector="metadata.name=p1").items
    assert [p.metadata.name for p in by_name] == ["p1"]
    not_name = core.list_namespaced_pod(ns, field_selector="metadata.name!=p1,metadata.namespace=" + ns).items
    assert [p.metadata.name for p in not_name] == ["p2"]
    pending = core.list_pod_for_all_namespaces(
        field_selector=f"status.phase=Succeeded,metadata.namespace={ns}"
    )
    assert pending.items == []
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod(ns, field_selector="spec.bogus=x")
    assert err.value.status == 400
    assert json.loads(err.value.body)["message"] == "field label not supported: spec.bogus"


def test_pagination_with_continue(api, ns):
    core = kubernetes.client.CoreV1Api(api)
    for i in range(7):
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"p{i}", "labels": {"page": "yes"}}})
    names, token, pages = [], None, 0
    while True:
        page = core.list_namespaced_config_map(ns, label_selector="page=yes", limit=3, _continue=token)
        pages += 1
        names += [c.metadata.name for c in page.items]
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count == 7 - len(names)
    assert pages == 3
    assert names == [f"p{i}" for i in range(7)]
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map(ns, limit=3, _continue="garbage")
    assert err.value.status == 400
