"""Sizing conformance: does each model fit its GPU, do KV cache, replicas and NodePool limits agree?

Static mode: `pytest --aksai-manifests deploy/ -m sizing` runs one test per (object, invariant) found in the
YAML, with ids `<file>::<Kind>/<name>::<invariant>`. A failed invariant fails with its numbers and the fix;
a warning passes with an AksaiSizingWarning (fails under --aksai-strict); an unknown model or SKU skips
(fails under --aksai-strict).
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.sizing


def test_sizing_invariant(aksai_sizing_check: Any) -> None:
    aksai_sizing_check.verify()
