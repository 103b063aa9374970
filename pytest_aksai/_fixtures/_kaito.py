"""The `kaito` area's fixtures: the Workspaces under test, and each one once Ready.

Every test that needs a Workspace is parametrized over the Workspaces under test (the profile's
`workspaces`, else every Workspace found), here and nowhere else; the `api` area builds on these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_aksai._fixtures._cluster import cluster_during_collection, defer_exit
from pytest_aksai._fixtures._findings import once_per_run
from pytest_aksai._settings import settings_of

if TYPE_CHECKING:
    from pytest_aksai.kube import Cluster, WaitResult, Workspace

REF_ARGNAME = "aksai_workspace_ref"
WORKSPACE_FIXTURES = frozenset(
    {"aksai_workspace", "aksai_ready_workspace", "aksai_endpoint", "aksai_metrics"}
)


@dataclass(frozen=True)
class NoWorkspaceFound:
    """The parameter when the search found nothing: the checks fail with the paragraph saying where it looked."""

    namespace: str | None


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
    if settings.is_absent("kaito"):
        return [
            pytest.param(None, id="absent", marks=pytest.mark.skip(reason=settings.absence_reason("kaito")))
        ]
    cluster = cluster_during_collection(config)
    if cluster is None:
        return [pytest.param(None, id="not-connected")]
    missing = cluster.missing_api_reason("kaito.sh", "v1beta1")
    if missing:
        return [pytest.param(None, id="no-kaito", marks=pytest.mark.skip(reason=missing))]
    from pytest_aksai.kube import ConnectError, workspace_refs

    try:
        refs = workspace_refs(cluster, settings.namespace)
    except ConnectError as exc:
        defer_exit(config, exc)
        return [pytest.param(None, id="not-listed")]
    if not refs:
        return [pytest.param(NoWorkspaceFound(settings.namespace), id="no-workspace-found")]
    return [pytest.param(ref, id=ref) for ref in refs]


_PARAMS = pytest.StashKey[list[Any]]()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if WORKSPACE_FIXTURES.isdisjoint(metafunc.fixturenames):
        return
    params = metafunc.config.stash.get(_PARAMS, None)
    if params is None:
        params = metafunc.config.stash[_PARAMS] = _workspace_params(metafunc.config)
    metafunc.parametrize(REF_ARGNAME, params, scope="module")


@pytest.fixture(scope="module")
def aksai_workspace(
    request: pytest.FixtureRequest, aksai_cluster: Cluster, aksai_workspace_ref: str | NoWorkspaceFound
) -> Workspace:
    """The KAITO Workspace under test (one per Workspace in the profile, or per Workspace found)."""
    from pytest_aksai._errors import Finding
    from pytest_aksai.kube import nothing_found, read_workspace

    if isinstance(aksai_workspace_ref, NoWorkspaceFound):
        search = aksai_workspace_ref

        def nothing() -> NoReturn:
            raise nothing_found(aksai_cluster, search.namespace)

        once_per_run(request, "workspace-search", nothing, params={REF_ARGNAME: search})
    found = read_workspace(aksai_cluster, aksai_workspace_ref)
    if found is None:
        raise Finding(
            f"Workspace {aksai_workspace_ref} does not exist on cluster {aksai_cluster.profile!r}",
            expected="the Workspace the profile's workspaces key names",
            where="kubectl get workspaces.kaito.sh -A",
            fix="Fix the profile's workspaces key, or create the Workspace",
        )
    return found


@pytest.fixture(scope="module")
def aksai_ready_workspace(
    request: pytest.FixtureRequest, aksai_cluster: Cluster, aksai_workspace: Workspace
) -> tuple[Workspace, WaitResult]:
    """The Workspace once Ready, with the wait's timeline; waited for once per run.

    When it never becomes Ready, the check marked `explains("aksai_ready_workspace")` fails with KAITO's
    reason, the timeline and the evidence; every other check that needs it fails with one line.
    """
    from pytest_aksai.kube import Workspace, wait_workspace_ready, workspace_evidence

    ref = aksai_workspace.ref
    budget = settings_of(request.config).timeout("workspace_ready")
    result = once_per_run(
        request,
        f"workspace-ready:{ref}",
        lambda: wait_workspace_ready(aksai_cluster, ref, budget),
        params={REF_ARGNAME: ref},
        evidence=lambda: workspace_evidence(aksai_cluster, ref),
    )
    assert result.obj is not None, "a successful wait returns the object"
    workspace = Workspace.model_validate(result.obj)
    _record_pod_start(request.config, aksai_cluster, workspace)
    return workspace, result


def _record_pod_start(config: pytest.Config, cluster: Cluster, workspace: Workspace) -> None:
    """The model pod's image pull and engine start in the Workspace's cold-start waterfall (which
    `test_cold_start_by_phase` fills with node provisioning and model load), once per run."""
    from pytest_aksai._fixtures._report import run_artifacts
    from pytest_aksai.kube import pod_start_phases

    timeline = run_artifacts(config).timeline(
        f"kaito/{workspace.ref}/cold-start", f"{workspace.ref}: cold start"
    )
    if any(p.label.startswith("image pull") for p in timeline.phases):
        return
    namespace = str(workspace.metadata.namespace)
    created = workspace.metadata.creation_timestamp or ""
    for label, start, end in pod_start_phases(cluster, namespace, workspace.metadata.name, created):
        timeline.phase(label, start, end)


def client_namespaces(request: pytest.FixtureRequest, workspace: Workspace) -> list[str]:
    """The profile's `client_namespaces`, else the Workspace's own namespace."""
    named = settings_of(request.config).profile.client_namespaces
    return list(named) or [str(workspace.metadata.namespace)]


@pytest.fixture(scope="module")
def aksai_network_policy_blocks(
    request: pytest.FixtureRequest,
    aksai_cluster: Cluster,
    aksai_ready_workspace: tuple[Workspace, WaitResult],
) -> list[str]:
    """What the NetworkPolicies selecting the model pods refuse: one line per (client namespace, pod) that no
    policy admits on the Service's target port (empty: every client namespace may connect). Cilium policies in
    the namespace are not evaluated; a warning names them."""
    import warnings

    from pytest_aksai._warnings import AksaiWarning
    from pytest_aksai.kube import blocked_clients, cilium_policies

    workspace, _ = aksai_ready_workspace
    namespace, name = str(workspace.metadata.namespace), workspace.metadata.name
    cilium = cilium_policies(aksai_cluster, namespace)
    if cilium:
        warnings.warn(
            AksaiWarning(
                f"CiliumNetworkPolicies in namespace {namespace} ({', '.join(cilium)}) also govern traffic to "
                f"{workspace.ref} and are not evaluated; the DNS probe check sees their effect"
            ),
            stacklevel=1,
        )
    return [
        f"NetworkPolicy {', '.join(b.policies)} in {namespace} selects pod {b.pod} and admits no pod of namespace "
        f"{b.client_namespace!r} on the model's port"
        for b in blocked_clients(aksai_cluster, namespace, name, client_namespaces(request, workspace))
    ]
