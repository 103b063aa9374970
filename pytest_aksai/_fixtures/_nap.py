"""The `nap` area's fixtures: the NodePools under test, the objects they are judged with, and a GPU probe.

Checks that need a NodePool are parametrized over the NodePools under test (the profile's `nodepools`, else
every NodePool found; in static mode, every NodePool in the YAML). The GPU probe runs once per run: a pod
asking for one GPU (`fixtures/nap/gpu-probe.yaml`) in the run's namespace, followed until its node has come
and gone; its cleanup deletes the probe and, should the node it caused outlive it, that node's NodeClaim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import pytest
import yaml

from pytest_aksai._data import fixture_path
from pytest_aksai._fixtures._cluster import cluster_during_collection, defer_exit
from pytest_aksai._fixtures._findings import once_per_run
from pytest_aksai._settings import settings_of

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pytest_aksai.kube import Cluster, NodePool, ProbeRun

REF_ARGNAME = "aksai_nodepool_ref"
NODEPOOL_FIXTURES = frozenset({"aksai_nodepool"})
PROBE_MANIFEST = "nap/gpu-probe.yaml"
NOMINATE_BUDGET_S = 180.0
"""Karpenter batches pending pods for at most 10 s and reports every scheduling failure at once; a probe with
neither a NodeClaim nor a reason after 3 minutes means NAP is not acting on it."""
LAUNCH_BUDGET_S = 330.0
"""Karpenter's launch timeout (5 min) plus a poll."""


@dataclass(frozen=True)
class NoNodePoolFound:
    where: str


def _static_objects(config: pytest.Config) -> list[dict[str, Any]]:
    from pytest_aksai.sizing import load_manifests

    settings = settings_of(config)
    assert settings.manifests is not None
    return [
        dict(obj, **{"metadata": obj.get("metadata") or {}})
        for _, obj in load_manifests([settings.manifests])
    ]


def _nodepool_params(config: pytest.Config) -> list[Any]:
    settings = settings_of(config)
    if settings.is_absent("nap"):
        return [
            pytest.param(None, id="absent", marks=pytest.mark.skip(reason=settings.absence_reason("nap")))
        ]
    if settings.manifests is not None:
        names = [
            str((o.get("metadata") or {}).get("name"))
            for o in _static_objects(config)
            if o.get("kind") == "NodePool" and str(o.get("apiVersion", "")).startswith("karpenter.sh/")
        ]
        wanted = list(settings.profile.nodepools) or names
        if not names:
            return [
                pytest.param(NoNodePoolFound(f"the YAML under {settings.manifests}"), id="no-nodepool-found")
            ]
        return [pytest.param(name, id=name) for name in wanted]
    if settings.profile.nodepools:
        return [pytest.param(name, id=name) for name in settings.profile.nodepools]
    if config.getoption("collectonly"):
        return [pytest.param("<discovered at run time>", id="discovered-at-run-time")]
    cluster = cluster_during_collection(config)
    if cluster is None:
        return [pytest.param(None, id="not-connected")]
    missing = cluster.missing_api_reason("karpenter.sh", "v1")
    if missing:
        return [pytest.param(None, id="no-karpenter", marks=pytest.mark.skip(reason=missing))]
    from pytest_aksai.kube import ConnectError, nodepools

    try:
        found = sorted(p.name for p in nodepools(cluster))
    except ConnectError as exc:
        defer_exit(config, exc)
        return [pytest.param(None, id="not-listed")]
    if not found:
        return [pytest.param(NoNodePoolFound(f"cluster {cluster.profile!r}"), id="no-nodepool-found")]
    return [pytest.param(name, id=name) for name in found]


_PARAMS = pytest.StashKey[list[Any]]()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if NODEPOOL_FIXTURES.isdisjoint(metafunc.fixturenames):
        return
    params = metafunc.config.stash.get(_PARAMS, None)
    if params is None:
        params = metafunc.config.stash[_PARAMS] = _nodepool_params(metafunc.config)
    metafunc.parametrize(REF_ARGNAME, params, scope="module")


@pytest.fixture(scope="session")
def aksai_nap_objects(pytestconfig: pytest.Config) -> list[dict[str, Any]]:
    """The objects NodePools are judged with: NodePools, AKSNodeClasses, GPU workloads, Services and
    ScaledObjects, from the YAML in static mode or from the cluster."""
    if settings_of(pytestconfig).manifests is not None:
        return _static_objects(pytestconfig)
    from pytest_aksai._fixtures._cluster import runtime_of
    from pytest_aksai.kube import nap_objects

    return nap_objects(runtime_of(pytestconfig).cluster())


@pytest.fixture(scope="module")
def aksai_nodepool(
    request: pytest.FixtureRequest,
    aksai_nodepool_ref: str | NoNodePoolFound,
    aksai_nap_objects: list[dict[str, Any]],
) -> NodePool:
    """The Karpenter NodePool under test (one per NodePool in the profile's `nodepools`, or per one found)."""
    from pytest_aksai._errors import Finding
    from pytest_aksai.kube import NodePool

    if isinstance(aksai_nodepool_ref, NoNodePoolFound):
        where = aksai_nodepool_ref.where

        def nothing() -> NoReturn:
            raise Finding(
                f"Found no Karpenter NodePool to check in {where}: a run that checks nothing is not a pass",
                expected="at least one NodePool (kubectl get nodepools.karpenter.sh)",
                observed="no NodePool",
                fix="Create the NAP NodePools (or point --aksai-manifests at them), or, if this cluster has no "
                'node auto-provisioning on purpose, add "nap" to the profile\'s absent list',
            )

        once_per_run(request, "nodepool-search", nothing, params={REF_ARGNAME: aksai_nodepool_ref})
    found = next(
        (
            o
            for o in aksai_nap_objects
            if o.get("kind") == "NodePool" and (o.get("metadata") or {}).get("name") == aksai_nodepool_ref
        ),
        None,
    )
    if found is None:
        raise Finding(
            f"NodePool {aksai_nodepool_ref} does not exist",
            expected="the NodePool the profile's nodepools key names",
            where="kubectl get nodepools.karpenter.sh",
            fix="Fix the profile's nodepools key, or create the NodePool",
        )
    return NodePool.model_validate(found)


def probe_template() -> dict[str, Any]:
    """The packaged probe manifest (in a clone: the top-level fixtures/ folder)."""
    text = fixture_path(PROBE_MANIFEST).read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def _probe(request: pytest.FixtureRequest, cluster: Cluster, namespace: str) -> ProbeRun:
    from pytest_aksai._fixtures._cluster import record_of
    from pytest_aksai.kube import deprovision_after_probe, probe_manifest, read_nodepool, run_gpu_probe

    settings = settings_of(request.config)
    template = probe_template()
    record = record_of(request.config)  # the probe, and (labelled once nominated) the NodeClaim it causes
    name = f"aksai-gpu-probe-{settings.run_id}"
    record.record("Pod", name, namespace)
    # With NodePools named in the profile, the probe runs on the first GPU one of them (tolerating its taints).
    pinned = next(
        (
            pool
            for pool in (read_nodepool(cluster, n) for n in settings.profile.nodepools)
            if pool is not None and pool.is_gpu
        ),
        None,
    )
    manifest = probe_manifest(
        template,
        name,
        record.labels,
        settings.profile.probe_sku,
        pinned.name if pinned else None,
        pinned.taints if pinned else (),
    )
    budgets = {
        "nominate": NOMINATE_BUDGET_S,
        "launch": LAUNCH_BUDGET_S,
        "register": settings.timeout("node_provision"),
        "initialize": settings.timeout("gpu_advertise"),
        "run": settings.timeout("pod_ready"),
    }
    run = run_gpu_probe(cluster, namespace, manifest, budgets)
    deprovision_after_probe(cluster, run, settings.timeout("node_deprovision"))
    return run


@pytest.fixture(scope="module")
def aksai_gpu_probe(
    request: pytest.FixtureRequest, aksai_cluster: Cluster, aksai_module_namespace: str
) -> Iterator[ProbeRun]:
    """A GPU probe's lifecycle, run once per run: NodeClaim created → Launched → Registered → Initialized →
    probe Succeeded → probe deleted → Consolidatable → node gone, each phase in cluster seconds.

    When the probe never gets its GPU node, the check marked `explains("aksai_gpu_probe")` fails with
    Karpenter's reason and the fix; the others that need the probe fail with one line. Cleanup deletes the
    probe and waits for its NodeClaim to go (deleting it when consolidation did not), also on failure.
    """
    from pytest_aksai.kube import cleanup_probe, probe_evidence

    settings = settings_of(request.config)
    if settings.manifests is not None:
        pytest.skip("static mode (--aksai-manifests) reads files; the GPU probe needs a cluster")
    name = f"aksai-gpu-probe-{settings.run_id}"

    try:
        yield once_per_run(
            request,
            "gpu-probe",
            lambda: _probe(request, aksai_cluster, aksai_module_namespace),
            evidence=lambda: probe_evidence(aksai_cluster, name, aksai_module_namespace),
        )
    finally:  # also when the probe failed or the run was interrupted: a leaked GPU node costs money
        if not settings.keep:
            cleanup_probe(aksai_cluster, name, aksai_module_namespace, 60.0)
