"""The `keda` area's fixtures: the scalers under test, each one Ready, and each one's 0 → 1 → N → 0 lifecycle.

Scalers are the profile's `scaled_objects` (`namespace/name` of a ScaledObject or HTTPScaledObject), else every
HTTPScaledObject and every ScaledObject the HTTP add-on did not generate. In static mode
(`--aksai-manifests`) they come from the YAML, and only the static checks run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_aksai._errors import ReadOnlyRefusal
from pytest_aksai._fixtures._cluster import cluster_during_collection, defer_exit
from pytest_aksai._fixtures._findings import once_per_run
from pytest_aksai._fixtures._report import run_artifacts
from pytest_aksai._settings import settings_of

if TYPE_CHECKING:
    from pytest_aksai.azure import QueueDemand
    from pytest_aksai.kube import Cluster, Lifecycle, Scaler, WaitResult

REF_ARGNAME = "aksai_scaler_ref"
SCALER_FIXTURES = frozenset({"aksai_scaler", "aksai_scaler_ready", "aksai_keda_lifecycle"})
LIFECYCLE_SLACK_S = 30.0
"""Cluster seconds allowed beyond KEDA's own bounds (a watch event's and a poll's jitter)."""
HARNESS_SLACK_WALL_S = 2.0
"""Wall seconds for the harness's own path (API server watches, the port-forward): on a time-compressed
simulated cluster they are not compressed, so they are added to each budget at the cluster's time scale."""

ObjectList = list[tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class NoScalerFound:
    where: str


@dataclass(frozen=True)
class _Inventory:
    objects: ObjectList
    scalers: list[Scaler]
    where: str
    static: bool


_INVENTORY = pytest.StashKey[_Inventory | None]()
_PARAMS = pytest.StashKey[list[Any]]()


def _inventory(config: pytest.Config) -> _Inventory | None:
    if _INVENTORY in config.stash:
        return config.stash[_INVENTORY]
    from pytest_aksai.kube import ConnectError, keda_objects, scalers_from_objects

    settings = settings_of(config)
    found: _Inventory | None = None
    if settings.manifests is not None:
        from pytest_aksai.sizing import load_manifests

        objects: ObjectList = list(load_manifests([settings.manifests]))
        found = _Inventory(
            objects, scalers_from_objects(objects), f"the YAML under {settings.manifests}", True
        )
    else:
        cluster = cluster_during_collection(config)
        if cluster is not None and cluster.serves("keda.sh", "v1alpha1"):
            try:
                objects = keda_objects(cluster, settings.namespace)
            except ConnectError as exc:
                defer_exit(config, exc)
                objects = []
            where = f"cluster {settings.cluster!r}" + (
                f" (namespace {settings.namespace!r})" if settings.namespace else ""
            )
            found = _Inventory(objects, scalers_from_objects(objects), where, False)
    config.stash[_INVENTORY] = found
    return found


def _scaler_params(config: pytest.Config) -> list[Any]:
    settings = settings_of(config)
    if config.getoption("collectonly") and settings.manifests is None:
        return [pytest.param("<discovered at run time>", id="discovered-at-run-time")]
    if settings.is_absent("keda"):
        return [
            pytest.param(None, id="absent", marks=pytest.mark.skip(reason=settings.absence_reason("keda")))
        ]
    if settings.manifests is None:
        cluster = cluster_during_collection(config)
        if cluster is None:
            return [pytest.param(None, id="not-connected")]
        missing = cluster.missing_api_reason("keda.sh", "v1alpha1")
        if missing:
            return [pytest.param(None, id="no-keda", marks=pytest.mark.skip(reason=missing))]
    inventory = _inventory(config)
    if inventory is None:
        return [pytest.param(None, id="not-listed")]
    wanted = set(settings.profile.scaled_objects)
    scalers = [s for s in inventory.scalers if not wanted or s.ref in wanted]
    missing_refs = sorted(wanted - {s.ref for s in inventory.scalers})
    params = [pytest.param(s, id=str(s)) for s in scalers]
    params += [pytest.param(NoScalerFound(f"{ref} in {inventory.where}"), id=ref) for ref in missing_refs]
    if not params:
        return [pytest.param(NoScalerFound(inventory.where), id="no-scaler-found")]
    return params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if SCALER_FIXTURES.isdisjoint(metafunc.fixturenames):
        return
    params = metafunc.config.stash.get(_PARAMS, None)
    if params is None:
        params = metafunc.config.stash[_PARAMS] = _scaler_params(metafunc.config)
    metafunc.parametrize(REF_ARGNAME, params, scope="module")


@pytest.fixture(scope="module")
def aksai_scaler(request: pytest.FixtureRequest, aksai_scaler_ref: Any) -> Scaler:
    """The KEDA scaler under test: a ScaledObject, or an HTTPScaledObject with the ScaledObject it owns."""
    from pytest_aksai._errors import Finding

    if isinstance(aksai_scaler_ref, NoScalerFound):
        search = aksai_scaler_ref

        def nothing() -> NoReturn:
            raise Finding(
                f"no KEDA scaler found ({search.where})",
                expected="a ScaledObject or HTTPScaledObject (the profile's scaled_objects, or any found)",
                where="kubectl get scaledobjects,httpscaledobjects -A",
                fix="Point --aksai-namespace or --aksai-manifests at your scalers, fix the profile's "
                'scaled_objects, or add "keda" to the profile\'s absent list if this cluster has none on purpose',
            )

        once_per_run(request, "scaler-search", nothing, params={REF_ARGNAME: search})
    if aksai_scaler_ref is None:
        pytest.skip("the cluster could not be reached")
    scaler: Scaler = aksai_scaler_ref
    return scaler


@pytest.fixture(scope="session")
def aksai_keda_objects(request: pytest.FixtureRequest) -> ObjectList:
    """The scalers and what they refer to (targets, Services, Workspaces and their ConfigMaps), as
    `(source, object)` pairs: from the YAML in static mode, else from the cluster."""
    inventory = _inventory(request.config)
    return inventory.objects if inventory is not None else []


def _live(request: pytest.FixtureRequest) -> None:
    if settings_of(request.config).manifests is not None:
        pytest.skip(
            "static mode (--aksai-manifests) reads files and contacts no cluster; this check needs a cluster"
        )


@pytest.fixture(scope="module")
def aksai_scaler_ready(
    request: pytest.FixtureRequest, aksai_cluster: Cluster, aksai_scaler: Scaler
) -> WaitResult:
    """The scaler's ScaledObject once Ready=True with its metrics (within two polling intervals, plus the
    HTTP add-on's reconcile for an HTTPScaledObject); KEDA's Ready=False reason fails it at once."""
    from pytest_aksai.kube import wait_scaler_ready

    _live(request)
    budget = 2 * aksai_scaler.polling_interval + LIFECYCLE_SLACK_S
    return once_per_run(
        request,
        f"scaler-ready:{aksai_scaler.ref}",
        lambda: wait_scaler_ready(
            aksai_cluster,
            aksai_scaler,
            budget,
            workspace_budget=settings_of(request.config).timeout("workspace_ready"),
        ),
        params={REF_ARGNAME: aksai_scaler},
    )


@pytest.fixture(scope="module")
def aksai_keda_lifecycle(
    request: pytest.FixtureRequest,
    aksai_cluster: Cluster,
    aksai_scaler: Scaler,
    aksai_keda_objects: ObjectList,
) -> Lifecycle:
    """One 0 → 1 → N → 0 run of the scaler with demand through its own channel, once per run; the checks
    judge its phases. Scalers that keep a replica, or whose trigger has no demand generator yet, skip."""
    from pytest_aksai.kube import (
        model_endpoint,
        prometheus_trigger,
        queue_trigger,
        run_http_lifecycle,
        run_prometheus_lifecycle,
        run_queue_lifecycle,
    )

    queued = queue_trigger(aksai_scaler)
    # A prometheus trigger on the model's own series: demand at its Service, from minReplicaCount ≥ 1.
    on_series = None if aksai_scaler.is_http or queued else prometheus_trigger(aksai_scaler)
    if on_series is not None and aksai_scaler.scales_to_zero:
        pytest.skip(
            f"{aksai_scaler}: a prometheus trigger on the target's own series reads nothing at zero replicas, "
            "so no demand can wake it (the static check says so); its lifecycle starts from minReplicaCount ≥ 1"
        )
    if on_series is not None and aksai_scaler.max_replicas <= aksai_scaler.min_replicas:
        pytest.skip(
            f"{aksai_scaler}: minReplicaCount = maxReplicaCount = {aksai_scaler.min_replicas}: nothing to scale"
        )
    if on_series is None and not aksai_scaler.scales_to_zero:
        pytest.skip(
            f"{aksai_scaler} keeps at least {aksai_scaler.min_replicas} replica(s): no scale-to-zero lifecycle"
        )
    if not aksai_scaler.is_http and queued is None and on_series is None:
        kinds = ", ".join(t.type for t in aksai_scaler.triggers)
        pytest.skip(
            f"{aksai_scaler}: no demand generator for trigger type(s) {kinds} yet (HTTP add-on, "
            "azure-servicebus and prometheus only)"
        )
    if settings_of(request.config).readonly:  # the demand itself writes (messages, requests through a proxy)
        pytest.skip(str(ReadOnlyRefusal(f"drive demand through the trigger of {aksai_scaler}")))
    request.getfixturevalue("aksai_scaler_ready")
    budget = settings_of(request.config).timeout("scale_up")
    slack = LIFECYCLE_SLACK_S + HARNESS_SLACK_WALL_S * aksai_cluster.time_scale

    def run() -> Lifecycle:
        if on_series is not None:
            endpoint = model_endpoint(aksai_cluster, aksai_scaler, aksai_keda_objects)
            try:
                lifecycle = run_prometheus_lifecycle(
                    aksai_cluster,
                    aksai_scaler,
                    endpoint,
                    aksai_keda_objects,
                    slack=slack,
                    cold_start_budget=budget,
                )
            finally:
                endpoint.close()
        elif queued is None:
            lifecycle = run_http_lifecycle(
                aksai_cluster, aksai_scaler, aksai_keda_objects, slack=slack, cold_start_budget=budget
            )
        else:
            demand = _queue_demand(request, aksai_cluster, aksai_scaler, queued.metadata)
            try:
                lifecycle = run_queue_lifecycle(
                    aksai_cluster, aksai_scaler, demand, slack=slack, cold_start_budget=budget
                )
            finally:
                demand.drain()  # nothing this run sent stays on the queue, whatever happened
                demand.close()
        _record_timeline(request.config, lifecycle)
        return lifecycle

    return once_per_run(
        request, f"keda-lifecycle:{aksai_scaler.ref}", run, params={REF_ARGNAME: aksai_scaler}
    )


def _queue_demand(
    request: pytest.FixtureRequest, cluster: Cluster, scaler: Scaler, metadata: dict[str, str]
) -> QueueDemand:
    """Messages for the scaler's queue, sent and drained as the identity of the target's own ServiceAccount
    (the worker's: the one that consumes the queue, so it holds Send and Listen, as the identity suite checks)."""
    from pytest_aksai._errors import Finding
    from pytest_aksai.azure import CLIENT_ID_ANNOTATION, TOKEN_EXCHANGE_AUDIENCE, AzureTarget, QueueDemand
    from pytest_aksai.kube import DEPLOYMENTS, SERVICEACCOUNTS, STATEFULSETS, request_token

    kind = STATEFULSETS if scaler.target_kind == "StatefulSet" else DEPLOYMENTS
    workload = cluster.get(kind, scaler.target_name, scaler.namespace) or {}
    pod_spec = ((workload.get("spec") or {}).get("template") or {}).get("spec") or {}
    account = str(pod_spec.get("serviceAccountName") or "default")
    sa = cluster.get(SERVICEACCOUNTS, account, scaler.namespace) or {}
    annotations = (sa.get("metadata") or {}).get("annotations") or {}
    client_id = annotations.get(CLIENT_ID_ANNOTATION)
    if not client_id:
        raise Finding(
            f"{scaler}: no identity to put messages on its queue with",
            expected=f"ServiceAccount {scaler.namespace}/{account} (the target's) annotated {CLIENT_ID_ANNOTATION}",
            where=f"kubectl get sa {account} -n {scaler.namespace} -o yaml",
            fix="Annotate the worker's ServiceAccount with the client id of the identity that consumes the queue",
        )
    target: AzureTarget = request.getfixturevalue("aksai_azure")
    tenant = annotations.get("azure.workload.identity/tenant-id") or target.tenant_id

    def assertion() -> str:
        return request_token(cluster, scaler.namespace, account, TOKEN_EXCHANGE_AUDIENCE, 3600)

    settings = settings_of(request.config)
    return QueueDemand(
        target,
        metadata.get("namespace", ""),
        metadata.get("queueName", ""),
        target.credential(tenant, client_id, assertion),
        settings.run_id,
    )


def _record_timeline(config: pytest.Config, lifecycle: Lifecycle) -> None:
    """The lifecycle as the run report draws it: replicas, ready replicas, HPA desired and GPU nodes over cluster
    time, with the windows KEDA's configuration allows (the first poll after the demand, the cooldown)."""
    timeline = run_artifacts(config).timeline(
        lifecycle.report_key, f"{lifecycle.scaler}: replicas and GPU nodes", clock="cluster"
    )
    previous: dict[str, float] = {}
    for sample in lifecycle.samples:
        values = {
            "replicas": sample.replicas,
            "ready replicas": sample.ready_replicas,
            "HPA desired": sample.hpa_desired,
            "GPU nodes": sample.gpu_nodes,
        }
        for series, value in values.items():
            if value is not None and previous.get(series) != value:
                timeline.sample(series, sample.t, float(value))
                previous[series] = float(value)
    if lifecycle.demand_started is not None:
        timeline.mark(lifecycle.demand_started, "first request")
        timeline.band(
            "pollingInterval", lifecycle.demand_started, lifecycle.demand_started + lifecycle.polling
        )
    if lifecycle.demand_stopped is not None:
        timeline.mark(lifecycle.demand_stopped, "demand stops")
        stop = lifecycle.demand_stopped
        hold = "cooldown" if lifecycle.scaler.scales_to_zero else "HPA scale-down window"
        timeline.band(f"{hold} {lifecycle.cooldown:g} s (no scale-in)", stop, stop + lifecycle.cooldown)
