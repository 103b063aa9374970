"""The `sizing` area's fixture: one test item per (object, invariant) of the sizing analysis.

Static mode (`--aksai-manifests`) analyses YAML files; otherwise the cluster's own objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_aksai._fixtures._cluster import cluster_during_collection
from pytest_aksai._settings import settings_of

if TYPE_CHECKING:
    from pytest_aksai.sizing import Finding as SizingFinding
    from pytest_aksai.sizing import SizingCheck

ARGNAME = "aksai_sizing_check"
_KEY = pytest.StashKey["list[SizingCheck]"]()


def _build(config: pytest.Config) -> list[SizingCheck]:
    from pytest_aksai.sizing import (
        CatalogError,
        ManifestError,
        SizingCheck,
        analyze_objects,
        load_manifests,
    )

    settings = settings_of(config)
    if settings.is_absent("sizing"):
        return [SizingCheck("absent", skip_reason=settings.absence_reason("sizing"))]
    try:
        profile = settings.profile.sizing
        catalog = profile.catalog(config.rootpath)
        if settings.manifests is not None:
            objs = load_manifests([settings.manifests])
            where = f"the YAML under {settings.manifests}"
        elif config.getoption("collectonly"):
            return [
                SizingCheck(
                    "cluster-objects",
                    skip_reason="collected only: the cluster's objects are read at run time",
                )
            ]
        else:
            cluster_objects = _cluster_objects(config)
            if cluster_objects is None:
                return [SizingCheck("not-connected", skip_reason="the cluster could not be reached")]
            objs = cluster_objects
            where = f"cluster {settings.cluster!r}" + (
                f" (namespace {settings.namespace!r})" if settings.namespace else ""
            )
    except (CatalogError, ManifestError) as exc:
        return [SizingCheck("bad-input", problem=str(exc))]
    findings = analyze_objects(objs, catalog, runtime_overhead_gib=profile.runtime_overhead_gib)
    if not findings:
        return [
            SizingCheck(
                "nothing-found",
                problem=f"Found nothing to size in {where}: no KAITO Workspace, vLLM Deployment/StatefulSet, "
                "KEDA scaler or GPU NodePool. A run that checks nothing is not a pass. Point --aksai-manifests "
                "at the folder with your manifests (or --aksai-namespace at the workloads), or, if this target "
                'has nothing to size on purpose, add "sizing" to the profile\'s absent list.',
            )
        ]
    return [SizingCheck(f.test_id, finding=f) for f in findings]


def _cluster_objects(config: pytest.Config) -> list[tuple[str, dict[str, Any]]] | None:
    """The sizing-relevant objects of the cluster under test, as `(source, object)` pairs."""
    from pytest_aksai.kube import sizing_objects

    settings = settings_of(config)
    cluster = cluster_during_collection(config)
    if cluster is None:
        return None
    source = f"cluster:{settings.cluster}"
    return [(source, obj) for obj in sizing_objects(cluster, settings.namespace)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if ARGNAME not in metafunc.fixturenames:
        return
    if _KEY not in metafunc.config.stash:
        metafunc.config.stash[_KEY] = _build(metafunc.config)
    checks = metafunc.config.stash[_KEY]
    metafunc.parametrize(ARGNAME, checks, ids=[c.id for c in checks], indirect=True)


@pytest.fixture
def aksai_sizing_check(request: pytest.FixtureRequest) -> SizingCheck:
    """One sizing check (a `SizingCheck`); tests requesting it are parametrized over every finding."""
    from pytest_aksai.sizing import SizingCheck

    check = getattr(request, "param", None)
    if not isinstance(check, SizingCheck):
        pytest.fail(
            "aksai_sizing_check is provided by parametrization; is the pytest_aksai plugin active?",
            pytrace=False,
        )
    if check.finding is not None and check.finding.fit is not None:
        _record(request, check.finding)
    return check


NUMBER_UNITS = {"kv_bytes_per_token": "B", "kv_token_capacity": "tokens", "max_model_len": "tokens"}


def _record(request: pytest.FixtureRequest, finding: SizingFinding) -> None:
    """The figures the invariant was judged on, as measurements, and the workload's row of the sizing table."""
    from pytest_aksai._fixtures._report import CheckReport

    report = CheckReport(request.node)
    for name, value in finding.numbers.items():
        report.measure(f"sizing_{name}", value, unit=NUMBER_UNITS.get(name))
    fit = finding.fit
    assert fit is not None
    where = f"{finding.namespace}/{finding.name}" if finding.namespace else finding.name
    report.sizing({
        "workload": f"{finding.kind} {where}",
        "basis": f"sizing at max-model-len {fit.max_model_len:,}",
        "model": fit.model,
        "GPU": fit.gpu,
        "VRAM GiB": fit.vram_gib,
        "KV budget GiB": fit.kv_budget_gib,
        "KV capacity tokens": fit.kv_token_capacity,
        "max-num-seqs": fit.max_num_seqs,
        "predicted concurrency": min(fit.max_num_seqs, fit.max_concurrent_seqs),
    })  # fmt: skip
