"""The `api` area's fixtures: each Ready Workspace's OpenAI-compatible server, and its metrics.

Parametrized over the Workspaces under test by the `kaito` area (`aksai_workspace_ref`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from pytest_aksai._data import fixture_path
from pytest_aksai._settings import settings_of

if TYPE_CHECKING:
    from pytest_aksai.kube import Cluster, Endpoint, WaitResult, Workspace
    from pytest_aksai.load import MetricsSnapshot


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> object:
    """A check whose request to the model server failed says what broke (no ready endpoints, a pod restart,
    connection refused, an engine error), not just `Connection error.`; any check that fails while a model
    pod restarts says so."""
    from pytest_aksai._errors import Finding

    endpoint = getattr(item, "funcargs", {}).get("aksai_endpoint")
    before = endpoint.restarts_during_run() if endpoint is not None else []
    try:
        return (yield)
    except Exception as exc:
        if endpoint is None:
            raise
        finding = None if isinstance(exc, Finding) else endpoint.explain_failure(exc)
        if finding is not None:
            raise finding from exc
        after = endpoint.restarts_during_run()
        if after != before:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise Finding(
                f"The model pod restarted during the check: {after[-1]}",
                observed=f"the check failed with: {first_line}",
                where="kubectl logs <pod> --previous",
                fix="Read the previous instance's log for why the model server exited; a restart drops every "
                "in-flight request",
            ) from exc
        raise


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
    from pytest_aksai._errors import Finding
    from pytest_aksai.kube import workspace_endpoint

    workspace, _ = aksai_ready_workspace
    settings = settings_of(request.config)
    try:
        endpoint = workspace_endpoint(
            aksai_cluster,
            workspace.ref,
            direct_urls=settings.profile.endpoints,
            route=settings.profile.endpoint_route,
        )
    except LookupError as exc:
        raise Finding(str(exc)) from None
    try:
        yield endpoint
    finally:
        endpoint.close()


@pytest.fixture(scope="module")
def aksai_metrics(aksai_endpoint: Endpoint) -> Callable[[], MetricsSnapshot]:
    """Scrape the endpoint's `/metrics` now: `aksai_metrics()` returns a parsed snapshot.

    Raises a `Finding` with the HTTP status when the server exposes no metrics.
    """
    from pytest_aksai._errors import Finding
    from pytest_aksai.load import parse_metrics

    def scrape() -> MetricsSnapshot:
        __tracebackhide__ = True
        status, text = aksai_endpoint.fetch("metrics")
        if status != 200:
            raise Finding(
                f"GET {aksai_endpoint.url('metrics')} answered {status}, expected 200 with Prometheus text: the "
                "model server exposes no metrics, so autoscaling on vllm:* metrics and dashboards cannot work",
                fix="vLLM serves /metrics by default; check a proxy in front of it or a flag that disables it",
            )
        return parse_metrics(text)

    return scrape


PROBE_TIMEOUT_S = 120.0
"""Cluster seconds for a probe pod to be scheduled, pull its image and finish (curl itself stops at 10 s)."""


@pytest.fixture(scope="module")
def aksai_client_probes(
    request: pytest.FixtureRequest,
    aksai_cluster: Cluster,
    aksai_ready_workspace: tuple[Workspace, WaitResult],
) -> list[str]:
    """Run `fixtures/probe-curl.yaml` in each client namespace (the profile's `client_namespaces`, else the
    model's own), calling `http://<ws>.<ns>.svc.cluster.local/v1/models` as an application pod would; one line
    per probe that failed (empty: every client reached the model). Probes carry the run's labels and are
    deleted; a probe in a namespace the run does not own is disruptive (refused on live clusters unless
    allowed), and when every probe is refused the check skips with the refusal."""
    from pytest_aksai._fixtures._kaito import client_namespaces
    from pytest_aksai.kube import NAMESPACES, RUN_LABEL, client_probe_manifest, run_client_probe, run_labels

    workspace, _ = aksai_ready_workspace
    settings = settings_of(request.config)
    namespace, name = workspace.metadata.namespace, workspace.metadata.name
    url = f"http://{name}.{namespace}.svc.cluster.local/v1/models"
    problems: list[str] = []
    refused: list[str] = []
    for client in client_namespaces(request, workspace):
        ns = aksai_cluster.get(NAMESPACES, client)
        owned = ((ns or {}).get("metadata", {}).get("labels") or {}).get(RUN_LABEL) == settings.run_id
        if not owned and not settings.allows("disruptive"):
            refused.append(client)
            continue
        manifest = client_probe_manifest(fixture_path(""), url, run_labels(settings.run_id))
        result = run_client_probe(aksai_cluster, client, manifest, PROBE_TIMEOUT_S)
        if result.exit_code != 0 or result.output != "200":
            problems.append(
                f"from namespace {client!r}: probe pod {result.pod} got exit code {result.exit_code} with "
                f"{result.output or 'no output'!r}"
            )
    if refused and not problems and len(refused) == len(client_namespaces(request, workspace)):
        pytest.skip(settings.refusal("disruptive") + f" (probe pods in {', '.join(refused)})")
    return problems
