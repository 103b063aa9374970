"""Measurements and artifacts (`aksai_measure`, `aksai_report`) and the run report (`--aksai-report DIR`),
fed from pytest's test reports."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_aksai._areas import area_of
from pytest_aksai._fixtures._cluster import report_data, runtime_of
from pytest_aksai._fixtures._findings import EVIDENCE_SECTION
from pytest_aksai._knobs import KNOBS
from pytest_aksai._public import public
from pytest_aksai._redact import redact
from pytest_aksai._settings import Settings, settings_of
from pytest_aksai.report import (
    HTML_NAME,
    Artifacts,
    CheckRecord,
    Clock,
    Cost,
    Distribution,
    Measurement,
    RunReport,
    Table,
    Timeline,
    anchor_of,
    measurements_of,
    unit_of,
)

if TYPE_CHECKING:
    from pytest_aksai.kube import GpuNodeLedger, GpuNodeUse

_ARTIFACTS = pytest.StashKey[Artifacts]()
_LINKS = pytest.StashKey["_Links"]()
REPORT_SECTION_PROPERTY = "aksai_report_section"


@dataclass
class _Links:
    """What a check recorded besides its user properties: measurement units and the artifacts it judged."""

    measurements: dict[str, Measurement] = field(default_factory=dict)
    timelines: list[str] = field(default_factory=list)
    distributions: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _Links:
        measurements = {k: Measurement(**v) for k, v in (data.get("measurements") or {}).items()}
        return cls(
            measurements, *(list(data.get(key) or []) for key in ("timelines", "distributions", "tables"))
        )


def run_artifacts(config: pytest.Config) -> Artifacts:
    """The run's artifacts, for area fixtures that record a lifecycle once for several checks."""
    found = config.stash.get(_ARTIFACTS, None)
    if found is None:
        found = config.stash[_ARTIFACTS] = Artifacts()
    return found


def _links(item: pytest.Item) -> _Links:
    found = item.stash.get(_LINKS, None)
    if found is None:
        found = item.stash[_LINKS] = _Links()
    return found


@public
class CheckReport:
    """What a check adds to the run report (the `aksai_report` fixture): measurements with units,
    and the timelines, distributions and tables it judged — shown in its section of report.html."""

    def __init__(self, item: pytest.Item) -> None:
        self._item = item
        self._artifacts = run_artifacts(item.config)

    def measure(
        self, name: str, value: float, *, unit: str | None = None, clock: Clock | None = None
    ) -> None:
        """A measurement, also a JUnit property; the unit follows from the name's suffix unless given."""
        self._item.user_properties.append((name, value))
        _links(self._item).measurements[name] = Measurement(
            value, unit_of(name) if unit is None else unit, clock
        )

    def timeline(self, key: str, title: str = "", clock: Clock = "cluster") -> Timeline:
        """The run's timeline of that key (created if new), linked to this check."""
        _append_new(_links(self._item).timelines, key)
        return self._artifacts.timeline(key, title, clock)

    def distribution(self, key: str, title: str = "", unit: str = "ms") -> Distribution:
        _append_new(_links(self._item).distributions, key)
        return self._artifacts.distribution(key, title, unit)

    def table(self, key: str, title: str, columns: list[str]) -> Table:
        _append_new(_links(self._item).tables, key)
        return self._artifacts.table(key, title, columns)

    @property
    def cost(self) -> Cost:
        return self._artifacts.cost


def _append_new(keys: list[str], key: str) -> None:
    if key not in keys:
        keys.append(key)


class ReportCollector:
    """Registered as a plugin when `--aksai-report` is given."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        from pytest_aksai import __version__

        self._config = config
        self._folder = settings.report
        self._all_evidence = settings.report_all
        self.report = RunReport(
            run_id=settings.run_id,
            cluster=settings.cluster,
            provider=settings.provider,
            settings=_settings_table(settings),
            plugin_version=__version__,
            artifacts=run_artifacts(config),
        )
        self._ledger: GpuNodeLedger | None = None
        self._gpu_uses: list[GpuNodeUse] = []

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        item.user_properties.append((REPORT_SECTION_PROPERTY, f"{HTML_NAME}#{anchor_of(item.nodeid)}"))

    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        # The GPU ledger starts once a check has connected to the cluster (never connecting on its own).
        if self._ledger is None and runtime_of(self._config).started:
            from pytest_aksai.kube import GpuNodeLedger

            self._ledger = GpuNodeLedger(runtime_of(self._config).cluster())
            self._ledger.start()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        # Before the run's cleanup closes the cluster (a simulated one stops then).
        if self._ledger is not None:
            self._gpu_uses = self._ledger.stop()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        links = _links(item)
        # A plain dict: xdist sends reports from its workers to the controller, which writes the report.
        report.aksai_links = dataclasses.asdict(links)  # type: ignore[attr-defined]
        return report

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
        links = _Links.from_dict(getattr(report, "aksai_links", None) or {})
        evidence = "\n\n".join(text for title, text in report.sections if title == EVIDENCE_SECTION)
        if report.failed and not evidence:
            evidence = report.longreprtext.strip()[-20000:]
        self.report.record(
            CheckRecord(
                nodeid=report.nodeid,
                outcome=outcome,
                duration_s=report.duration,
                message=redact(message),
                areas=area_of(set(report.keywords)),
                measurements=measurements_of(report.user_properties, links.measurements),
                timelines=list(links.timelines),
                distributions=list(links.distributions),
                tables=list(links.tables),
                evidence=redact(evidence),
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
            check.warnings.append(redact(f"{warning_message.category.__name__}: {warning_message.message}"))

    def write(self) -> list[Path]:
        if self._folder is None:
            return []
        runtime = runtime_of(self._config)
        if runtime.started:
            cluster = runtime.cluster()
            self.report.context = cluster.context
            self.report.server_url = cluster.server_url
            self.report.server_version = cluster.server_version
        if self._ledger is not None:
            self._record_gpu_use(self._ledger, runtime.cluster().time_scale)
        self.report.cleanup = report_data(self._config)
        return self.report.write(self._folder, all_evidence=self._all_evidence)

    def _record_gpu_use(self, ledger: GpuNodeLedger, time_scale: float) -> None:
        from pytest_aksai.sizing import UnknownEntryError, gpu_sku

        for use in self._gpu_uses or ledger.stop():
            minutes = use.cluster_minutes(ledger.end, time_scale)
            try:
                sku = gpu_sku(use.sku)
                hourly = sku.spot_price_per_hour if use.capacity_type == "spot" else sku.price_per_hour
            except UnknownEntryError:
                hourly = None
            what = f"GPU node {use.name} ({use.capacity_type}, {use.gpus} GPU)"
            if hourly is None:
                what += ": no price in the sizing catalog"
            self.report.artifacts.cost.add_gpu_use(use.sku, minutes, minutes / 60 * (hourly or 0.0), what)
        if ledger.error:
            self.report.artifacts.cost.notes.append(f"GPU node time may be incomplete: {ledger.error}")


def _settings_table(settings: Settings) -> dict[str, dict[str, object]]:
    table: dict[str, dict[str, object]] = {}
    for knob in KNOBS:
        attribute = {"sim-fault": "sim_faults"}.get(knob.noun, knob.noun.replace("-", "_"))
        value = getattr(settings, attribute, None)
        if isinstance(value, frozenset | tuple | list):
            value = ",".join(sorted(str(v) for v in value))
        elif value is not None:
            value = str(value)
        table[knob.noun] = {
            "value": redact(value) if isinstance(value, str) else value,
            "source": settings.sources.get(knob.noun, "default"),
        }
    return table


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
def aksai_report(request: pytest.FixtureRequest) -> CheckReport:
    """What this check adds to the run report: `aksai_report.measure(...)`, `aksai_report.timeline(key)`
    (a run-wide timeline linked to this check), `.distribution(key)`, `.table(key, title, columns)`, `.cost`."""
    return CheckReport(request.node)


@pytest.fixture
def aksai_measure(aksai_report: CheckReport) -> Callable[..., None]:
    """Record a measurement of this check: `aksai_measure("cold_start_model_load_s", 226.0)` (optionally
    `unit=` and `clock="cluster"|"wall"`; the unit otherwise follows from the name's suffix).

    Measurements appear in the run report and as JUnit `<property>` elements of the test case (with any
    junit_family, without the warning `record_property` gives under xunit2).
    """
    return aksai_report.measure
