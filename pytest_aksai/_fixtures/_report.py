"""Measurements (`aksai_measure`) and the run report (`--aksai-report DIR`) fed from pytest's test reports."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_aksai._areas import area_of
from pytest_aksai._fixtures._cluster import report_data
from pytest_aksai._redact import redact
from pytest_aksai._settings import Settings, settings_of
from pytest_aksai.report import CheckRecord, RunReport


class ReportCollector:
    """Registered as a plugin when `--aksai-report` is given."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self._config = config
        self._folder = settings.report
        self.report = RunReport(
            run_id=settings.run_id,
            cluster=settings.cluster,
            provider=settings.provider,
            settings=dict(settings.sources),
        )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" and report.passed:
            return
        outcome: str = report.outcome
        if report.when != "call" and report.failed:
            outcome = "error"
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        message = ""
        crash = getattr(report.longrepr, "reprcrash", None)
        if report.failed and crash is not None:
            message = str(crash.message)[:4000]
        elif report.failed:
            message = report.longreprtext.strip()[-4000:]
        elif report.skipped and isinstance(report.longrepr, tuple):
            message = str(report.longrepr[2])
        self.report.record(
            CheckRecord(
                nodeid=report.nodeid,
                outcome=outcome,
                duration_s=report.duration,
                message=redact(message),
                areas=area_of(set(report.keywords)),
                measurements={str(k): v for k, v in report.user_properties},
            )
        )

    def pytest_warning_recorded(
        self,
        warning_message: warnings.WarningMessage,
        when: str,
        nodeid: str,
        location: tuple[str, int, str] | None,
    ) -> None:
        # pytest reports an item's warnings after its test reports, so the check is already recorded.
        check = self.report.checks.get(nodeid)
        if check is not None:
            check.warnings.append(f"{warning_message.category.__name__}: {warning_message.message}")

    def write(self) -> list[Path]:
        if self._folder is None:
            return []
        self.report.cleanup = report_data(self._config)
        return self.report.write(self._folder)


def pytest_configure(config: pytest.Config) -> None:
    settings = settings_of(config)
    if settings.report is not None:
        config.pluginmanager.register(ReportCollector(config, settings), "aksai-report")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    collector = terminalreporter.config.pluginmanager.get_plugin("aksai-report")
    if isinstance(collector, ReportCollector):
        for path in collector.write():
            terminalreporter.write_line(f"aksai: report written to {path}")


@pytest.fixture
def aksai_measure(request: pytest.FixtureRequest) -> Callable[[str, float], None]:
    """Record a measurement of this check: `aksai_measure("cold_start_model_load_s", 226.0)`.

    Measurements appear in the run report and as JUnit `<property>` elements of the test case (with any
    junit_family, without the warning `record_property` gives under xunit2).
    """

    def measure(name: str, value: float) -> None:
        request.node.user_properties.append((name, value))

    return measure
