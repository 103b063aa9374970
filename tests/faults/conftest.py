"""The session's fault × check matrix: every case the selected tests need, started at once (see `_matrix`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType

import pytest

from tests.faults._matrix import CONCURRENT_RUNS, Case, Matrix, Verdicts, run_suites


def _cases_of(item: pytest.Item) -> list[str]:
    module: ModuleType = item.module  # type: ignore[attr-defined]
    cases: dict[str, Case] = getattr(module, "CASES", {})
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec is not None else {}
    named = [str(params[key]) for key in ("case", "fault") if key in params and str(params[key]) in cases]
    case_tests: dict[str, str] = getattr(module, "CASE_TESTS", {})
    return named or [name for name in cases if item.name.startswith(case_tests.get(name, "-"))]


@pytest.fixture(scope="session")
def _matrix_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Matrix]:
    wanted: dict[tuple[str, str], Case] = {}
    for item in request.session.items:
        module = getattr(item, "module", None)
        if module is None or not hasattr(module, "CASES"):
            continue
        for name in _cases_of(item):
            wanted[(module.__name__, name)] = module.CASES[name]
    with ThreadPoolExecutor(CONCURRENT_RUNS) as pool:
        yield {
            key: pool.submit(run_suites, tmp_path_factory.mktemp(key[1]), case)
            for key, case in wanted.items()
        }


@pytest.fixture
def matrix(request: pytest.FixtureRequest, _matrix_runs: Matrix) -> Callable[[str], Verdicts]:
    """`matrix(case)` → the verdicts of this module's case (waits for its run)."""
    module_name = request.module.__name__

    def verdicts(case: str) -> Verdicts:
        return _matrix_runs[(module_name, case)].result(timeout=900)

    return verdicts


MATRIX_TEST_TIMEOUT_S = 900
"""A matrix test may wait for its case behind others in the pool: longer than the project's 300 s default."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "matrix" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(MATRIX_TEST_TIMEOUT_S))
