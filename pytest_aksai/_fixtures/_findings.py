"""Findings read as failures: a fixture that finds the cluster broken fails its checks, it does not error them.

pytest calls any exception raised while setting up a fixture an *error*. Here a fixture such as
`aksai_ready_workspace` is itself a conformance check (is the Workspace Ready?), so a `Finding` it raises is
reported as a *failure* of each check that needed it (JUnit `<failure>`; `<error>` stays for the harness):

- the check marked `@pytest.mark.explains("<fixture>")` for the same parameters fails with the whole
  paragraph, the timeline and the evidence (events, pod-log tails);
- every other check that needed the fixture fails with one line naming the root cause and that check;
- when the explaining check is not selected (`-m api` alone), the first check to meet the finding carries
  the paragraph and the others point to it.

Work behind such fixtures runs once per run (`once_per_run`), however many modules need it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from pytest_aksai._areas import area_of
from pytest_aksai._errors import Finding
from pytest_aksai._redact import redact
from pytest_aksai._settings import ABSENT_ON_PURPOSE

T = TypeVar("T")

EVIDENCE_SECTION = "aksai evidence"


@dataclass
class _Cause:
    finding: Finding
    fixture: str
    params: Mapping[str, object]
    evidence: str = ""
    explained_at: str | None = None
    """Node id of the check that carries the whole paragraph, once one has."""


@dataclass
class _Registry:
    results: dict[str, Any] = field(default_factory=dict)
    causes: dict[int, _Cause] = field(default_factory=dict)
    """id(finding) → its cause; findings are cached, so every check that meets one meets the same object."""


_REGISTRY = pytest.StashKey[_Registry]()


def _registry(config: pytest.Config) -> _Registry:
    return config.stash.setdefault(_REGISTRY, _Registry())


def once_per_run(
    request: pytest.FixtureRequest,
    key: str,
    compute: Callable[[], T],
    *,
    params: Mapping[str, object] | None = None,
    evidence: Callable[[], str] | None = None,
) -> T:
    """`compute()` once per run for `key`; a `Finding` it raises is remembered and raised again each time.

    `params` are the parametrization values that identify the explaining check (for example
    `{"aksai_workspace_ref": "inference/ws"}`); `evidence` gathers events and log tails when it fails.
    """
    __tracebackhide__ = True
    registry = _registry(request.config)
    if key not in registry.results:
        try:
            registry.results[key] = compute()
        except Finding as finding:
            text = ""
            if evidence is not None:
                try:
                    text = evidence()
                except Exception as exc:  # evidence is a courtesy; it must not hide the finding
                    text = f"(evidence could not be gathered: {type(exc).__name__}: {exc})"
            registry.causes[id(finding)] = _Cause(
                finding, request.fixturename or "", dict(params or {}), redact(text)
            )
            registry.results[key] = finding
    result = registry.results[key]
    if isinstance(result, Finding):
        raise result
    return result  # type: ignore[no-any-return]


def _explainer(item: pytest.Item, cause: _Cause) -> pytest.Item | None:
    for candidate in item.session.items:
        marker = candidate.get_closest_marker("explains")
        if marker is None or cause.fixture not in marker.args:
            continue
        callspec = getattr(candidate, "callspec", None)
        values = callspec.params if callspec is not None else {}
        if all(values.get(name) == value for name, value in cause.params.items()):
            return candidate
    return None


def _failure_text(item: pytest.Item, finding: Finding) -> tuple[str, str]:
    """(message, evidence) for this check: the whole paragraph once, one line everywhere else."""
    cause = _registry(item.config).causes.get(id(finding))
    if cause is None:
        return str(finding), ""
    explainer = _explainer(item, cause)
    full = explainer is item if explainer is not None else cause.explained_at in (None, item.nodeid)
    if full:
        cause.explained_at = item.nodeid
        return str(finding), cause.evidence
    where = explainer.nodeid if explainer is not None else cause.explained_at
    return f"root cause: {finding.headline()} (explained by {where})", ""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report: pytest.TestReport = yield
    excinfo = call.excinfo
    if call.when == "setup" and excinfo is not None and isinstance(excinfo.value, Finding):
        message, evidence = _failure_text(item, excinfo.value)
        try:
            pytest.fail(redact(message), pytrace=False)
        except pytest.fail.Exception:
            failed = pytest.ExceptionInfo[BaseException].from_current()
        report.longrepr = item.repr_failure(failed)
        # The setup *is* the check here: report it where pytest reports the failures of checks.
        report.when = "call"
        if evidence:
            report.sections.append((EVIDENCE_SECTION, evidence))
    return report


class NothingChecked:
    """A run whose area checks all skipped checked nothing: for a CI gate that is a failure, not a pass."""

    def __init__(self) -> None:
        self.collected = 0
        self.checked = 0
        self.absent = 0
        self.verdict = ""

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.collected = sum(1 for item in items if area_of(set(item.keywords)))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not area_of(set(report.keywords)):
            return
        if report.failed or (report.when == "call" and report.passed):
            self.checked += 1
        elif report.skipped and ABSENT_ON_PURPOSE in str(report.longrepr):
            self.absent += 1

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        ran = session.config.getoption("collectonly") is False and self.collected > 0
        if ran and self.checked == 0 and self.absent < self.collected and session.exitstatus == 0:
            self.verdict = (
                f"aksai: nothing was checked: all {self.collected} selected conformance checks skipped (their "
                "reasons are listed above), and a run that checks nothing is not a pass. Point the run at what "
                "should be there (--aksai-cluster, --aksai-namespace, --aksai-manifests, -m), or declare the "
                "areas this cluster lacks on purpose in the profile's absent list."
            )
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.verdict:
            terminalreporter.write_line(self.verdict, red=True)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(NothingChecked(), "aksai-nothing-checked")
