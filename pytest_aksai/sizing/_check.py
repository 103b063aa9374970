"""What one sizing check item checks: a finding of the analysis, or why there is nothing to check."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_aksai._public import public
from pytest_aksai.sizing._manifests import Finding as SizingFinding


@public
@dataclass(frozen=True)
class SizingCheck:
    """One (object, invariant) of the sizing analysis, as the sizing suite's test items receive it.

    Exactly one of `finding` (the invariant's outcome), `skip_reason` (nothing to check here, on purpose) and
    `problem` (the input could not be analysed, or nothing was found to check: the check fails) is set.
    """

    __module__ = "pytest_aksai"

    id: str
    finding: SizingFinding | None = None
    skip_reason: str | None = None
    problem: str | None = None
