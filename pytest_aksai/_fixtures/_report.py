"""Measurements and artifacts (`aksai_measure`, `aksai_report`) and the run report (`--aksai-report DIR`),
fed from pytest's test reports."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Generator, Mapping
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
    from pytest_aksai.kube import GpuNodeLedger, GpuNodeUse, Subject

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

    def sizing(self, row: Mapping[str, Any]) -> None:
        """A row of the run's sizing table (column → value; see docs/reference/report.md), keyed by its
        workload and basis: model, GPU, VRAM and KV budget, KV capacity, predicted and observed concurrency."""
        from pytest_aksai.report import SIZING_COLUMNS, SIZING_TABLE, SIZING_TITLE, sizing_cells

        self.table(SIZING_TABLE, SIZING_TITLE, list(SIZING_COLUMNS)).put(sizing_cells(row), key_columns=2)

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
        if report.failed or (self._all_evidence and report.when == "call"):
            report.aksai_objects = self._read_objects(item, report)  # type: ignore[attr-defined]
        return report

    def _read_objects(self, item: pytest.Item, report: pytest.TestReport) -> list[str]:
        """The objects the check is about, each read once per run (when the first check about it is reported)
        for its evidence file: never connecting on its own, never failing the check."""
        runtime = runtime_of(self._config)
        if self._folder is None or not runtime.started:
            return []
        from pytest_aksai.kube import subject_evidence

        try:
            cluster = runtime.cluster()
        except Exception:  # an unreachable cluster was reported by the checks themselves
            return []
        names = []
        for subject in check_subjects(item):
            name = str(subject)
            names.append(name)
            if name not in self.report.object_evidence:
                why = f"when {item.nodeid} {report.when} {report.outcome}"
                text = redact(subject_evidence(cluster, subject, why))
                self.report.object_evidence[name] = (subject.stem, text)
        return names

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
                objects=list(getattr(report, "aksai_objects", [])),
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


AREA_PARAMS = (
    "aksai_workspace_ref",
    "aksai_scaler_ref",
    "aksai_nodepool_ref",
    "aksai_identity_ref",
    "aksai_sizing_check",
)
"""The parameters that name what a check is about (the kaito, api and load checks are per Workspace)."""


def check_subjects(item: pytest.Item) -> list[Subject]:
    """The cluster objects a check is about, from the parameters its area parametrizes it with: a Workspace
    (and its Service), a scaler (its ScaledObject, HPA and target), a NodePool (and its NodeClaims), a
    workload-identity ServiceAccount (and its pods), a sizing finding's object. Area checks with no such
    parameter (NAP's lifecycle) are about the area's objects: every NodePool."""
    from pytest_aksai.kube import Scaler, Subject
    from pytest_aksai.sizing import SizingCheck

    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec is not None else {}
    found: list[Subject] = []
    workspace = params.get("aksai_workspace_ref")
    if isinstance(workspace, str) and workspace.count("/") == 1:
        namespace, name = workspace.split("/")
        found += [Subject("Workspace", name, namespace), Subject("Service", name, namespace)]
    scaler = params.get("aksai_scaler_ref")
    if isinstance(scaler, Scaler):
        found.append(Subject(scaler.source_kind, scaler.name, scaler.namespace))
        if scaler.is_http:
            found.append(Subject("ScaledObject", scaler.name, scaler.namespace))
        found.append(Subject("HorizontalPodAutoscaler", f"keda-hpa-{scaler.name}", scaler.namespace))
        found.append(Subject(scaler.target_kind, scaler.target_name, scaler.namespace))
    pool = params.get("aksai_nodepool_ref")
    if isinstance(pool, str) and pool:
        found.append(Subject("NodePool", pool))
    identity = params.get("aksai_identity_ref")
    if isinstance(identity, str) and identity.count("/") == 1 and not identity.startswith("!"):
        namespace, name = identity.split("/")
        found.append(Subject("ServiceAccount", name, namespace))
    check = params.get("aksai_sizing_check")
    if isinstance(check, SizingCheck) and check.finding is not None:
        f = check.finding
        if f.source.startswith("cluster"):
            found.append(Subject(f.kind, f.name, f.namespace))
    if not found and "nap" in area_of(set(item.keywords)):
        found += [Subject("NodePool", name) for name in _nodepool_names(item.config)]
    return found


def _nodepool_names(config: pytest.Config) -> list[str]:
    from pytest_aksai.kube import nodepools

    try:
        return sorted(p.name for p in nodepools(runtime_of(config).cluster()))[:4]
    except Exception:  # evidence never fails a check
        return []


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
