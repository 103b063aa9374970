"""Feeds the run report (`--aksai-report DIR`) from pytest's test reports."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from pytest_aksai._fixtures._cluster import report_data
from pytest_aksai._settings import Settings
from pytest_aksai.report._run import AREAS, CheckRecord, RunReport


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
                message=message,
                areas=[area for area in AREAS if area in report.keywords],
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
