"""Pytest glue for the sizing suite: one test item per (object, invariant) finding."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from pytest_aksai._settings import settings_of
from pytest_aksai.sizing import (
    AksaiSizingWarning,
    CatalogError,
    Finding,
    ManifestError,
    analyze_objects,
    load_manifests,
)
from pytest_aksai.sizing._profile import SizingProfile

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
                pytest.fail(f"{f.invariant} (warning, failed under --aksai-strict): {f.message}", pytrace=False)
            warnings.warn(AksaiSizingWarning(f"{f.test_id}: {f.message}"), stacklevel=2)
        if f.status == "unknown":
            if self.strict:
                pytest.fail(f"{f.invariant} could not be checked (failed under --aksai-strict): {f.message}",
                            pytrace=False)
            pytest.skip(f"{f.invariant} not checked: {f.message}")


def _build(config: pytest.Config) -> list[SizingCheck]:
    settings = settings_of(config)
    strict = settings.strict
    if settings.manifests is None:
        return [SizingCheck(
            "no-manifests",
            skip_reason="static sizing checks need --aksai-manifests PATH (a YAML file or a folder searched "
                        "recursively); sizing of live-cluster objects is not wired into this suite yet",
        )]
    try:
        profile = SizingProfile.model_validate(settings.profile.sizing)
        catalog = profile.catalog(config.rootpath)
        objs = load_manifests([settings.manifests])
    except ValidationError as exc:
        return [SizingCheck("bad-sizing-profile", error=f"the profile's [sizing] table is invalid: {exc}")]
    except (CatalogError, ManifestError) as exc:
        return [SizingCheck("bad-input", error=str(exc))]
    findings = analyze_objects(objs, catalog, runtime_overhead_gib=profile.runtime_overhead_gib)
    if not findings:
        return [SizingCheck(
            "nothing-found",
            skip_reason=f"no KAITO Workspace, vLLM Deployment/StatefulSet, KEDA scaler or GPU NodePool in "
                        f"{settings.manifests}",
        )]
    return [SizingCheck(f.test_id, finding=f, strict=strict) for f in findings]


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
