"""pytest-aksai's pytest face: options, profiles, markers, safety gates, report header and fixtures."""

from __future__ import annotations

import pytest

from pytest_aksai import _settings
from pytest_aksai._fixtures import _cluster, _kaito, _report
from pytest_aksai._fixtures._cluster import (
    aksai_cluster,
    aksai_labels,
    aksai_module_namespace,
    aksai_namespace,
    aksai_settings,
)
from pytest_aksai._fixtures._kaito import (
    aksai_endpoint,
    aksai_metrics,
    aksai_ready_workspace,
    aksai_workspace,
)

MARKERS: dict[str, str] = {
    "api": "vLLM OpenAI-compatible API surface: health, models, completions, chat, streaming, errors, metrics",
    "kaito": "KAITO workspaces: conditions, StatefulSet, Service, inference config, GPU node, cold start",
    "keda": "KEDA autoscaling: scale to zero and back, HTTP add-on, Service Bus trigger",
    "nap": "Node Auto-Provisioning (Karpenter): GPU node provision and deprovision",
    "identity": "Azure Workload Identity chain: token request, AAD exchange, Key Vault",
    "sizing": "sizing invariants: model fits GPU, KV cache, replicas, NodePool limits, cost",
    "load": "load and latency SLOs: TTFT, inter-token latency, end-to-end latency, throughput",
    "disruptive": "changes shared cluster state (scales, deletes, applies); refused on live clusters unless allowed",
    "costly": "provisions GPU capacity; refused on live clusters unless allowed",
}
SAFETY_MARKERS = ("disruptive", "costly")


def pytest_addoption(parser: pytest.Parser) -> None:
    _settings.add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    settings = _settings.configure(config)
    if settings.strict:
        config.addinivalue_line("filterwarnings", "error::pytest_aksai._warnings.AksaiWarning")
    _cluster.install_runtime(config)
    if settings.report is not None:
        config.pluginmanager.register(_report.ReportCollector(config, settings), "aksai-report")
    from pytest_aksai._fixtures import _sizing

    if not config.pluginmanager.is_registered(_sizing):
        config.pluginmanager.register(_sizing, "aksai-sizing")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    _kaito.generate_workspace_params(metafunc)


def pytest_report_header(config: pytest.Config) -> str:
    return _settings.header_line(_settings.settings_of(config))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    settings = _settings.settings_of(config)
    if settings.is_sim:
        return
    for item in items:
        for safety_class in SAFETY_MARKERS:
            if item.get_closest_marker(safety_class) and not settings.allows(safety_class):
                item.add_marker(pytest.mark.skip(reason=_refusal(settings, safety_class)))
                break


def _refusal(settings: _settings.Settings, safety_class: str) -> str:
    what = "changes shared cluster state" if safety_class == "disruptive" else "provisions GPU capacity"
    source = settings.profiles.source or "aksai.toml"
    table = f"{settings.profiles.table_prefix}.{settings.cluster}"
    return (
        f"{safety_class} check refused on cluster {settings.cluster!r}: it {what}. Allow it with "
        f'allow = ["{safety_class}"] in [{table}] of {source}, or --aksai-allow {safety_class}'
    )


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    _cluster.close_runtime(session.config)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _cluster.summary_lines(terminalreporter.config):
        terminalreporter.write_line(line)
    collector = terminalreporter.config.pluginmanager.get_plugin("aksai-report")
    if isinstance(collector, _report.ReportCollector):
        for path in collector.write():
            terminalreporter.write_line(f"aksai: report written to {path}")


def pytest_unconfigure(config: pytest.Config) -> None:
    _cluster.close_runtime(config)


__all__ = [
    "aksai_cluster",
    "aksai_endpoint",
    "aksai_labels",
    "aksai_metrics",
    "aksai_module_namespace",
    "aksai_namespace",
    "aksai_ready_workspace",
    "aksai_settings",
    "aksai_workspace",
]
