"""Sizing conformance: does each model fit its GPU, do KV cache, replicas and NodePool limits agree?

Static mode: `pytest --aksai-manifests deploy/ -m sizing` runs one test per (object, invariant) found in the
YAML, with ids `<file>::<Kind>/<name>::<invariant>`. A failed invariant fails with its numbers and the fix;
a warning passes with an AksaiSizingWarning (fails under --aksai-strict); an unknown model or SKU skips
(fails under --aksai-strict). Without --aksai-manifests the cluster's own objects are analysed.
"""

from __future__ import annotations

import warnings

import pytest

from pytest_aksai import AksaiSizingWarning, Settings, SizingCheck

pytestmark = pytest.mark.sizing


def test_sizing_invariant(aksai_sizing_check: SizingCheck, aksai_settings: Settings) -> None:
    check, strict = aksai_sizing_check, aksai_settings.strict
    if check.problem is not None:
        pytest.fail(check.problem, pytrace=False)
    finding = check.finding
    if finding is None:
        pytest.skip(check.skip_reason or "nothing to check")
    where = f"{finding.kind}/{finding.name} in {finding.source}"
    if finding.status == "fail":
        pytest.fail(f"{finding.invariant} ({where}): {finding.message}", pytrace=False)
    if finding.status == "warn":
        if strict:
            pytest.fail(
                f"{finding.invariant} (warning, failed under --aksai-strict): {finding.message}",
                pytrace=False,
            )
        warnings.warn(AksaiSizingWarning(f"{finding.test_id}: {finding.message}"), stacklevel=1)
    if finding.status == "unknown":
        message = f"{finding.invariant} not checked: {finding.message}"
        if strict:
            pytest.fail(f"{message} (failed under --aksai-strict)", pytrace=False)
        pytest.skip(message)
