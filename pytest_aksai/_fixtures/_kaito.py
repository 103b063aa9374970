"""Workspaces, their model endpoints and metrics, as fixtures parametrized over the Workspaces under test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from pytest_aksai._fixtures._cluster import runtime_of
from pytest_aksai._settings import settings_of
from pytest_aksai.kube import Cluster, ConnectError
from pytest_aksai.kube._endpoint import Endpoint, workspace_endpoint
from pytest_aksai.kube._kaito import Workspace, pod_failure, read_workspace, workspace_refs
from pytest_aksai.kube._rest import WORKSPACES
from pytest_aksai.kube._wait import WaitResult, wait_for
from pytest_aksai.load import MetricsSnapshot, parse_metrics

WORKSPACE_FIXTURES = ("aksai_workspace", "aksai_endpoint", "aksai_metrics", "aksai_ready_workspace")


def _workspace_params(config: pytest.Config) -> list[Any]:
    settings = settings_of(config)
    if settings.profile.workspaces:
        return [pytest.param(ref, id=ref) for ref in settings.profile.workspaces]
    if config.getoption("collectonly"):
        return [pytest.param("<discovered at run time>", id="discovered-at-run-time")]
    if settings.manifests is not None:
        reason = (
            "static mode (--aksai-manifests) reads files and contacts no cluster; checks of running "
            "Workspaces need a cluster"
        )
        return [pytest.param(None, id="static-mode", marks=pytest.mark.skip(reason=reason))]
    runtime = runtime_of(config)
    try:
        cluster = runtime.cluster()
    except ConnectError as exc:
        code = pytest.ExitCode.USAGE_ERROR if exc.configuration_problem else pytest.ExitCode.TESTS_FAILED
        pytest.exit(str(exc), returncode=code)
    missing = cluster.missing_api_reason("kaito.sh", "v1beta1")
    if missing:
        return [pytest.param(None, id="no-kaito", marks=pytest.mark.skip(reason=missing))]
    try:
        refs = workspace_refs(cluster, settings.namespace)
    except ApiException as exc:
        where = f"in namespace {settings.namespace!r}" if settings.namespace else "cluster-wide"
        pytest.exit(
            f"Listing KAITO Workspaces {where} on cluster {settings.cluster!r} was refused ({exc.status} "
            f"{exc.reason}). Grant the identity list on workspaces.kaito.sh, or name the Workspaces to check in "
            "the profile's workspaces key, or narrow the search with --aksai-namespace.",
            returncode=pytest.ExitCode.TESTS_FAILED,
        )
    if not refs:
        where = f"namespace {settings.namespace!r}" if settings.namespace else "any namespace"
        return [
            pytest.param(
                None,
                id="no-workspace",
                marks=pytest.mark.skip(
                    reason=f"no KAITO Workspace found in {where} of cluster {settings.cluster!r}; create one, or list "
                    f"them in the profile's workspaces key"
                ),
            )
        ]
    return [pytest.param(ref, id=ref) for ref in refs]


def generate_workspace_params(metafunc: pytest.Metafunc) -> None:
    if any(name in metafunc.fixturenames for name in WORKSPACE_FIXTURES):
        cache = metafunc.config.stash.setdefault(_PARAMS, [])
        if not cache:
            cache.extend(_workspace_params(metafunc.config))
        metafunc.parametrize("aksai_workspace_ref", cache, scope="module")


_PARAMS = pytest.StashKey[list[Any]]()


@pytest.fixture(scope="module")
def aksai_workspace(aksai_cluster: Cluster, aksai_workspace_ref: str) -> Workspace:
    """The KAITO Workspace under test (one per Workspace in the profile, or per Workspace found)."""
    found = read_workspace(aksai_cluster, aksai_workspace_ref)
    if found is None:
        pytest.fail(
            f"Workspace {aksai_workspace_ref} does not exist on cluster {aksai_cluster.profile!r} "
            f"(kubectl get workspaces.kaito.sh -A); fix the profile's workspaces key or create it",
            pytrace=False,
        )
    return found


def wait_workspace_ready(cluster: Cluster, ref: str, timeout: float) -> WaitResult:
    namespace, name = ref.split("/", 1)

    def ready(obj: dict[str, Any] | None) -> bool:
        return obj is not None and Workspace.model_validate(obj).is_ready

    def failed(obj: dict[str, Any]) -> str | None:
        return Workspace.model_validate(obj).failure() or pod_failure(cluster, namespace, name)

    return wait_for(
        cluster,
        WORKSPACES,
        name,
        namespace,
        until=ready,
        abort_if=failed,
        timeout=timeout,
        expected="Ready (ResourceReady, InferenceReady and WorkspaceSucceeded all True)",
    )


@pytest.fixture(scope="module")
def aksai_ready_workspace(
    request: pytest.FixtureRequest, aksai_cluster: Cluster, aksai_workspace: Workspace
) -> tuple[Workspace, WaitResult]:
    """The Workspace once Ready, with the wait's timeline; the setup fails with KAITO's reason if it never is."""
    budget = settings_of(request.config).timeout("workspace_ready")
    result = wait_workspace_ready(aksai_cluster, aksai_workspace.ref, budget)
    assert result.obj is not None
    return Workspace.model_validate(result.obj), result


@pytest.fixture(scope="module")
def aksai_endpoint(
    request: pytest.FixtureRequest,
    aksai_cluster: Cluster,
    aksai_ready_workspace: tuple[Workspace, WaitResult],
) -> Iterator[Endpoint]:
    """The Ready Workspace's OpenAI-compatible server: `.openai()` (official SDK), `.http()` (httpx).

    Reached through a direct URL from the profile's [endpoints], else a port-forward to the pod behind Service
    `<ws>`, else (profile `endpoint_route`, or when port-forward is refused) the API server's service proxy.
    """
    workspace, _ = aksai_ready_workspace
    settings = settings_of(request.config)
    direct = settings.profile.endpoints
    try:
        endpoint = workspace_endpoint(
            aksai_cluster, workspace.ref, direct_urls=direct, route=settings.profile.endpoint_route
        )
    except LookupError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield endpoint
    finally:
        endpoint.close()


@pytest.fixture(scope="module")
def aksai_metrics(aksai_endpoint: Endpoint) -> Iterator[Callable[[], MetricsSnapshot]]:
    """Scrape the endpoint's `/metrics` now: `aksai_metrics()` returns a parsed snapshot.

    Raises `AssertionError` with the HTTP status when the server exposes no metrics.
    """
    with aksai_endpoint.http(timeout=30) as http:

        def scrape() -> MetricsSnapshot:
            response = http.get("metrics")
            assert response.status_code == 200, (
                f"GET {aksai_endpoint.url('metrics')} answered {response.status_code}, expected 200 with "
                "Prometheus text: the model server exposes no metrics, so autoscaling on vllm:* metrics and "
                "dashboards cannot work (vLLM serves /metrics by default; check a proxy or a "
                "--disable-metrics style flag)"
            )
            return parse_metrics(response.text)

        yield scrape
