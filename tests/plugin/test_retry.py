"""The kube layer's one retry policy (`pytest_aksai.kube._retry`): its numbers, and that a flaky API server
(the sim's `api-flaky` fault, every error kind) changes no answer of the plugin's own calls."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
from kubernetes.client.exceptions import ApiException
from urllib3 import HTTPResponse

from pytest_aksai.kube import _rest, _retry
from pytest_aksai.kube._connect import load_client
from pytest_aksai.sim import SimCluster
from pytest_aksai.sim.contract import KUBECONFIG_CONTEXT, api_flaky_parameter


def test_backoff_is_full_jitter_under_a_capped_exponential(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_retry.random, "uniform", lambda low, high: high)
    assert [_retry.backoff(n) for n in range(0, 9)] == [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    monkeypatch.setattr(_retry.random, "uniform", lambda low, high: low)
    assert _retry.backoff(5) == 0.0


def test_policy_retries_every_verb_on_429_and_5xx_and_no_other_status() -> None:
    policy = _retry.api_retry()
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        for status in (429, 500, 502, 503, 504):
            assert policy.is_retry(method, status, has_retry_after=status == 429), (method, status)
        for status in (400, 401, 403, 404, 409, 410, 422):
            assert not policy.is_retry(method, status), (method, status)
    assert policy.total == _retry.MAX_RETRIES == 6
    assert policy.connect == _retry.MAX_CONNECT_RETRIES == 3


def test_retry_after_is_honoured_and_capped() -> None:
    policy = _retry.api_retry()
    throttled = HTTPResponse(body=b"", status=429, headers={"Retry-After": "1"})
    assert policy.get_retry_after(throttled) == 1.0
    assert policy.parse_retry_after("3600") == _retry.RETRY_AFTER_CAP == 30.0
    after = policy.increment("POST", "/api/v1/namespaces/x/pods", response=throttled)
    assert after.total == _retry.MAX_RETRIES - 1


def test_api_flaky_parameter_takes_a_rate_and_error_kinds() -> None:
    assert api_flaky_parameter("") == (20.0, ("429", "500", "503", "reset"))
    assert api_flaky_parameter("10") == (10.0, ("429", "500", "503", "reset"))
    assert api_flaky_parameter("10:429,reset") == (10.0, ("429", "reset"))
    assert api_flaky_parameter("x:nope") == (20.0, ("429", "500", "503", "reset"))


@pytest.fixture(scope="module")
def flaky_sim() -> Iterator[SimCluster]:
    with SimCluster(faults=["api-flaky=20:500,503,reset"]) as sim:
        yield sim


def test_a_flaky_api_server_changes_no_answer(
    flaky_sim: SimCluster, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """At 20 % failed requests (500, 503, resets) every read, create (create-or-get), patch and delete the
    kube layer sends gives the answer a healthy server gives; the failures did happen."""
    monkeypatch.setattr(_retry.random, "uniform", lambda low, high: low)  # no waiting between attempts
    caplog.set_level(logging.DEBUG, "urllib3.connectionpool")
    api, _, _ = load_client(profile="sim", kubeconfig=flaky_sim.kubeconfig_path, context=KUBECONFIG_CONTEXT)
    name = f"flaky-{uuid.uuid4().hex[:6]}"
    try:
        for i in range(20):
            body = {"metadata": {"name": f"{name}-{i}"}, "data": {"i": str(i)}}
            created = _rest.create(api, _rest.CONFIGMAPS, body, "default")
            assert created["data"] == {"i": str(i)}
            patched = _rest.patch_merge(api, _rest.CONFIGMAPS, f"{name}-{i}", {"data": {"j": "1"}}, "default")
            assert patched["data"] == {"i": str(i), "j": "1"}
        listed = _rest.items(api, _rest.CONFIGMAPS, "default")
        assert sorted(
            o["metadata"]["name"] for o in listed if o["metadata"]["name"].startswith(name)
        ) == sorted(f"{name}-{i}" for i in range(20))
        assert all(_rest.delete(api, _rest.CONFIGMAPS, f"{name}-{i}", "default") for i in range(20))
        assert not any(_rest.delete(api, _rest.CONFIGMAPS, f"{name}-{i}", "default") for i in range(3))
    finally:
        api.close()
    retried = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Retry")]
    assert len(retried) >= 3, "the fault failed too few requests to prove anything"


def test_create_or_get_returns_the_object_a_lost_answer_created(flaky_sim: SimCluster) -> None:
    api, _, _ = load_client(profile="sim", kubeconfig=flaky_sim.kubeconfig_path, context=KUBECONFIG_CONTEXT)
    body = {"metadata": {"name": f"twice-{uuid.uuid4().hex[:6]}"}, "data": {"a": "1"}}
    try:
        first = _rest.create(api, _rest.CONFIGMAPS, body, "default")
        again = _rest.create(api, _rest.CONFIGMAPS, body, "default")
        assert again["metadata"]["uid"] == first["metadata"]["uid"]
        _rest.delete(api, _rest.CONFIGMAPS, body["metadata"]["name"], "default")
    finally:
        api.close()


def test_retries_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that always fails: the last answer (503 with the server's message) after 1 + 6 attempts."""
    monkeypatch.setattr(_retry.random, "uniform", lambda low, high: low)
    with SimCluster(faults=["api-flaky=100:503"]) as sim:
        api, _, _ = load_client(profile="sim", kubeconfig=sim.kubeconfig_path, context=KUBECONFIG_CONTEXT)
        try:
            with pytest.raises(ApiException) as err:
                _rest.get(api, _rest.CONFIGMAPS, "nope", "default")
        finally:
            api.close()
    assert err.value.status == 503
    assert "the server is currently unable to handle the request" in str(err.value.body)


def test_port_forward_upgrades_retry_on_throttling_failures_and_resets_only() -> None:
    from pytest_aksai.kube._portforward import _retryable_upgrade

    def failed(reason: str) -> ApiException:
        return ApiException(status=0, reason=reason)

    assert _retryable_upgrade(failed("Handshake status 429 Too Many Requests -+-+- {...}"))
    assert _retryable_upgrade(failed("Handshake status 503 Service Unavailable -+-+- {...}"))
    assert _retryable_upgrade(failed("Connection to remote host was lost."))
    assert _retryable_upgrade(failed("[Errno 104] Connection reset by peer"))
    assert not _retryable_upgrade(failed("Handshake status 403 Forbidden -+-+- {...}"))
    assert not _retryable_upgrade(failed("Handshake status 404 Not Found -+-+- {...}"))


def test_back_off_is_in_cluster_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a simulated cluster at 60 cluster seconds per wall second, the client backs off for as long in the
    cluster's time as it would on a live one: a 60th of the wall time."""
    monkeypatch.setattr(_retry.random, "uniform", lambda low, high: high)
    policy = _retry.api_retry()
    clock = _retry.clock_of(policy)
    assert clock is not None
    clock.time_scale = 60.0
    throttled = HTTPResponse(body=b"", status=429, headers={"Retry-After": "30"})
    later = policy.increment("GET", "/api/v1/pods", response=throttled).increment(
        "GET", "/api/v1/pods", response=throttled
    )
    assert later.get_backoff_time() == 0.5 / 60
    assert later.get_retry_after(throttled) == 30.0 / 60
    assert _retry.clock_of(later) is clock
