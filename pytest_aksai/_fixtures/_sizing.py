"""Pytest glue for the sizing suite: one test item per (object, invariant) finding."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_aksai._fixtures._cluster import runtime_of
from pytest_aksai._settings import settings_of
from pytest_aksai.kube import ConnectError, _rest
from pytest_aksai.sizing import (
    AksaiSizingWarning,
    CatalogError,
    Finding,
    ManifestError,
    analyze_objects,
    load_manifests,
)

ARGNAME = "aksai_sizing_check"
_KEY = pytest.StashKey[list["SizingCheck"]]()


@dataclass(frozen=True)
class SizingCheck:
    """What one sizing test item checks. `verify()` passes, fails, warns or skips accordingly."""

    id: str
    finding: Finding | None = None
    skip_reason: str | None = None
    error: str | None = None
    strict: bool = False

    def verify(self) -> None:
        if self.error is not None:
            pytest.fail(self.error, pytrace=False)
        f = self.finding
        if f is None:
            pytest.skip(self.skip_reason or "nothing to check")
        if f.status == "fail":
            pytest.fail(f"{f.invariant} ({f.kind}/{f.name} in {f.source}): {f.message}", pytrace=False)
        if f.status == "warn":
            if self.strict:
                pytest.fail(
                    f"{f.invariant} (warning, failed under --aksai-strict): {f.message}", pytrace=False
                )
            warnings.warn(AksaiSizingWarning(f"{f.test_id}: {f.message}"), stacklevel=2)
        if f.status == "unknown":
            if self.strict:
                pytest.fail(
                    f"{f.invariant} could not be checked (failed under --aksai-strict): {f.message}",
                    pytrace=False,
                )
            pytest.skip(f"{f.invariant} not checked: {f.message}")


def _build(config: pytest.Config) -> list[SizingCheck]:
    settings = settings_of(config)
    strict = settings.strict
    try:
        profile = settings.profile.sizing
        catalog = profile.catalog(config.rootpath)
        if settings.manifests is not None:
            objs = load_manifests([settings.manifests])
            where = str(settings.manifests)
        elif config.getoption("collectonly"):
            return [
                SizingCheck(
                    "cluster-objects",
                    skip_reason="collected only: the cluster's objects are read at run time",
                )
            ]
        else:
            objs = _cluster_objects(config)
            where = f"cluster {settings.cluster!r}"
    except (CatalogError, ManifestError) as exc:
        return [SizingCheck("bad-input", error=str(exc))]
    findings = analyze_objects(objs, catalog, runtime_overhead_gib=profile.runtime_overhead_gib)
    if not findings:
        return [
            SizingCheck(
                "nothing-found",
                skip_reason=f"no KAITO Workspace, vLLM Deployment/StatefulSet, KEDA scaler or GPU NodePool in "
                f"{where}",
            )
        ]
    return [SizingCheck(f.test_id, finding=f, strict=strict) for f in findings]


def _cluster_objects(config: pytest.Config) -> list[tuple[str, dict[str, Any]]]:
    """The sizing-relevant objects of the cluster under test, as `(source, object)` pairs."""
    settings = settings_of(config)
    try:
        cluster = runtime_of(config).cluster()
    except ConnectError as exc:
        code = pytest.ExitCode.USAGE_ERROR if exc.configuration_problem else pytest.ExitCode.TESTS_FAILED
        pytest.exit(str(exc), returncode=code)
    source = f"cluster:{settings.cluster}"
    found: list[dict[str, Any]] = []
    for kind in (
        _rest.WORKSPACES,
        _rest.DEPLOYMENTS,
        _rest.STATEFULSETS,
        _rest.SCALEDOBJECTS,
        _rest.HTTPSCALEDOBJECTS,
        _rest.NODEPOOLS,
    ):
        if cluster.serves(kind.group, kind.version):
            found.extend(_rest.typed_items(cluster.api_client, kind, settings.namespace))
    wanted = {
        (o["metadata"].get("namespace"), o["inference"]["config"])
        for o in found
        if o["kind"] == "Workspace" and (o.get("inference") or {}).get("config")
    }
    for namespace, name in sorted(wanted):
        configmap = _rest.get(cluster.api_client, _rest.CONFIGMAPS, name, namespace)
        if configmap is not None:
            configmap.setdefault("kind", "ConfigMap")
            configmap.setdefault("apiVersion", "v1")
            found.append(configmap)
    return [(source, obj) for obj in found]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if ARGNAME not in metafunc.fixturenames:
        return
    checks = metafunc.config.stash.get(_KEY, None)
    if checks is None:
        checks = _build(metafunc.config)
        metafunc.config.stash[_KEY] = checks
    metafunc.parametrize(ARGNAME, checks, ids=[c.id for c in checks])


@pytest.fixture
def aksai_sizing_check(request: pytest.FixtureRequest) -> Any:
    """One sizing finding (a `SizingCheck`); tests requesting it are parametrized over every finding."""
    return getattr(request, "param", None) or pytest.fail(
        "aksai_sizing_check is provided by parametrization; is the pytest_aksai plugin active?", pytrace=False
    )
