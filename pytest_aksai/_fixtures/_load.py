"""The `load` area's fixtures: one measured load run per endpoint under test, judged by several checks.

Parametrized over the Workspaces under test by the `kaito` area (through `aksai_endpoint`). The run happens
once per run and Workspace (`once_per_run`), in a child process of its own (the client wants a core and an
event loop to itself, apart from pytest and the simulated cluster), or with `[load] workers` > 1 as an
Indexed Job in the cluster. A run the client could not drive faithfully is an error naming the saturated
resource, raised by `aksai_load` to every check.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import pytest

from pytest_aksai._fixtures._findings import once_per_run
from pytest_aksai._settings import Settings, settings_of

if TYPE_CHECKING:
    from pytest_aksai.kube import Cluster, Endpoint, ReplicaRecording, WaitResult, Workspace
    from pytest_aksai.load import LoadPlan, LoadRun, MergedRun


def _plan(settings: Settings, url: str, model: str) -> LoadPlan:
    from pytest_aksai.load import LoadPlan, Slos, ValidityLimits

    load, slos = settings.profile.load, settings.profile.slos
    return LoadPlan(
        url=url,
        model=model,
        concurrency=load.closed_loop_concurrency,
        rate=load.rate,
        arrival=load.arrival,
        duration_s=load.duration_s,
        requests=load.requests,
        prompt_tokens=load.prompt_tokens,
        max_tokens=load.max_tokens,
        endpoint=load.endpoint,
        slos=Slos(
            ttft_p95_ms=slos.ttft_p95_ms,
            itl_p95_ms=slos.itl_p95_ms,
            e2e_p99_ms=slos.e2e_p99_ms,
            error_rate_max=slos.error_rate_max,
            min_output_tokens_per_s=slos.min_output_tokens_per_s,
            attainment_min=slos.attainment_min,
        ),
        limits=ValidityLimits(**load.validity.model_dump()),
    )


def _served_model(endpoint: Endpoint) -> str:
    from pytest_aksai._errors import Finding

    status, text = endpoint.fetch("v1/models")
    try:
        models = json.loads(text).get("data") or [] if status == 200 else []
    except ValueError:
        models = []
    if not models:
        raise Finding(
            f"GET {endpoint.url('v1/models')} answered {status} with no model: there is nothing to load",
            expected="the served model in data[]",
            observed=text[:300] or endpoint.trouble() or "no answer",
            where="the model pod's log and events (kubectl describe pod)",
        )
    return str(models[0]["id"])


def _measure(
    request: pytest.FixtureRequest, cluster: Cluster, endpoint: Endpoint, settings: Settings
) -> MergedRun:
    from pytest_aksai._errors import AksaiError, Finding
    from pytest_aksai.load import WorkerSpec, run_in_child

    if endpoint.headers():
        raise AksaiError(
            f"The load client cannot reach {endpoint.workspace} through the API server's service proxy",
            expected="a direct URL or a port-forward: through the service proxy every request and streamed chunk "
            "crosses the kube-apiserver (authenticated, counted by API Priority and Fairness, relayed), so the "
            "client would time the API server, and load the shared control plane",
            observed=f"route {endpoint.via}",
            fix="Give the Workspace a direct URL in the profile's [endpoints], or set endpoint_route = "
            '"port-forward"',
        )
    load = settings.profile.load
    budget = load.duration_s * 3 + 180
    if load.workers > 1:
        _worker_image(settings)  # a configuration problem: an error, not a finding about the cluster
    try:
        if load.workers > 1:
            return _in_cluster(request, cluster, endpoint, settings, budget)
        plan = _plan(settings, endpoint.url("v1"), _served_model(endpoint))
        return run_in_child(WorkerSpec(plan, metrics_url=endpoint.url("metrics")), timeout_s=budget)
    except AksaiError as exc:
        raise Finding(
            f"The load run against {endpoint.workspace} did not complete: {exc.headline()}",
            observed=str(exc),
            where="the model pod's log and events (kubectl describe pod)",
            fix="The server must take the load shape of the profile's [load] table",
        ) from None


SIM_WORKER_IMAGE = "pytest-aksai-load:sim"
"""On the simulated cluster any image runs the `aksai-load` command as the real client process."""
START_DELAY_S = {True: 25.0, False: 90.0}
"""Seconds from creating the Job to the shared start: pods must be scheduled, pulled and warmed up by then."""


def _worker_image(settings: Settings) -> str:
    from pytest_aksai._errors import AksaiError

    load = settings.profile.load
    image = load.image or (SIM_WORKER_IMAGE if settings.is_sim else None)
    if image is None:
        raise AksaiError(
            f"[load] workers = {load.workers} runs the load client in the cluster, but [load] image is not set",
            expected="an image with pytest-aksai installed (its `aksai-load` command)",
            fix='Build one (FROM python:3.12-slim, pip install pytest-aksai) and set [load] image = "…", or set '
            "workers = 1",
        )
    return image


def _in_cluster(
    request: pytest.FixtureRequest, cluster: Cluster, endpoint: Endpoint, settings: Settings, budget: float
) -> MergedRun:
    """The plan's shares as an Indexed Job of `[load] workers` pods in a namespace of the run's own."""
    from pytest_aksai.kube import IndexedJob, delete_indexed_job, run_indexed_job, service_url
    from pytest_aksai.load import WorkerSpec, merge_outputs, parse_outputs

    load = settings.profile.load
    image = _worker_image(settings)
    namespace, name = endpoint.workspace.split("/", 1)
    base = service_url(cluster, namespace, name)
    plan = _plan(settings, base + "/v1", _served_model(endpoint))
    spec = WorkerSpec(plan, workers=load.workers, start_at=time.time() + START_DELAY_S[settings.is_sim],
                      metrics_url=base + "/metrics")  # fmt: skip
    labels: dict[str, str] = request.getfixturevalue("aksai_labels")
    job = IndexedJob(
        name=f"aksai-load-{name}"[:52].rstrip("-"),
        namespace=request.getfixturevalue("aksai_module_namespace"),
        image=image,
        command=["aksai-load", "worker", "--spec", "{file}"],
        file_name="spec.json",
        file_text=json.dumps(spec.to_json()),
        completions=load.workers,
        labels={**labels, "app.kubernetes.io/name": "aksai-load"},
    )
    from pytest_aksai._fixtures._cluster import record_of

    record = record_of(request.config)
    entries = [record.record(kind, job.name, job.namespace) for kind in ("ConfigMap", "Job")]
    try:
        logs = run_indexed_job(cluster, job, timeout=budget * cluster.time_scale)
    finally:
        if not settings.keep:
            delete_indexed_job(cluster, job)
            for entry in entries:
                record.release(entry)
    outputs = {}
    for text in logs.values():
        outputs.update(parse_outputs(text))
    return merge_outputs(outputs, plan, load.workers)


def _record_replicas(
    config: pytest.Config, ref: str, recording: ReplicaRecording, time_scale: float
) -> str | None:
    """The scaler's replicas during the load run, as the report draws them next to the latency histograms
    (in wall seconds, the load client's clock); the timeline's key, None when no scaler serves the endpoint."""
    from pytest_aksai._fixtures._report import run_artifacts

    if recording.scaler is None:
        return None
    key = f"load:{ref}:replicas"
    timeline = run_artifacts(config).timeline(
        key, f"{recording.scaler}: replicas of {recording.target} during the load run", clock="wall"
    )
    previous: dict[str, float] = {}
    for sample in recording.samples:
        values = {
            "replicas": sample.replicas,
            "ready replicas": sample.ready_replicas,
            "HPA desired": sample.hpa_desired,
        }
        for series, value in values.items():
            if value is not None and previous.get(series) != value:
                timeline.sample(series, sample.t / time_scale, float(value))
                previous[series] = float(value)
    timeline.mark(0.0, "load run starts")
    if recording.ended_at is not None:
        timeline.mark(recording.ended_at / time_scale, "load run ends")
    return key


def _mean_ready(recording: ReplicaRecording) -> int | None:
    """The ready replicas the load met, averaged over the run's time (a step function), at least 1."""
    samples, end = recording.samples, recording.ended_at
    if not samples or end is None or end <= samples[0].t:
        return None
    weighted = sum(
        s.ready_replicas * ((samples[i + 1].t if i + 1 < len(samples) else end) - s.t)
        for i, s in enumerate(samples)
    )
    return max(1, round(weighted / (end - samples[0].t)))


@pytest.fixture(scope="module")
def aksai_load_run(
    request: pytest.FixtureRequest,
    aksai_cluster: Cluster,
    aksai_ready_workspace: tuple[Workspace, WaitResult],
    aksai_endpoint: Endpoint,
) -> LoadRun:
    """The measured load run of this endpoint (once per run), valid or not; see `aksai_load`."""
    from pytest_aksai.kube import inference_config, recording_replicas
    from pytest_aksai.load import LoadRun

    workspace, _ = aksai_ready_workspace
    settings = settings_of(request.config)
    if settings.is_absent("load"):
        pytest.skip(settings.absence_reason("load"))

    def run() -> LoadRun:
        namespace, name = workspace.ref.split("/", 1)
        with recording_replicas(aksai_cluster, namespace, name) as replicas:
            merged = _measure(request, aksai_cluster, aksai_endpoint, settings)
        timeline = _record_replicas(request.config, workspace.ref, replicas, aksai_cluster.time_scale)
        _, vllm, _ = inference_config(aksai_cluster, workspace)
        return LoadRun(
            workspace=workspace.ref,
            merged=merged,
            route=aksai_endpoint.via,
            model_ref=workspace.preset,
            sku_name=workspace.resource.instance_type,
            vllm=vllm or {},
            catalog=settings.profile.sizing.catalog(request.config.rootpath),
            runtime_overhead_gib=settings.profile.sizing.runtime_overhead_gib,
            fixed_daily_usd=settings.profile.sizing.fixed_daily_usd,
            api_model=settings.profile.load.api_model,
            breakeven_max=settings.profile.slos.breakeven_requests_per_day_max,
            replicas=_mean_ready(replicas) or aksai_endpoint.ready_replicas or 1,
            scaler=replicas.scaler,
            ready_replicas_seen=replicas.ready_range(),
            replicas_timeline=timeline,
        )

    return once_per_run(request, f"load:{workspace.ref}", run, params={"aksai_workspace_ref": workspace.ref})


@pytest.fixture(scope="module")
def aksai_load(aksai_load_run: LoadRun) -> LoadRun:
    """The endpoint's load run once it is valid: a run the client saturated itself in is an error
    (`InvalidRunError`, naming the saturated resource), never a pass or a latency failure."""
    __tracebackhide__ = True
    aksai_load_run.raise_if_invalid()
    return aksai_load_run
