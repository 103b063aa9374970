"""pytest-aksai's pytest face: hooks only. Areas come from the table in `_areas.py`, each with its fixture module."""

from __future__ import annotations

import pytest

from pytest_aksai import _knobs
from pytest_aksai._areas import AREAS, CORE_FIXTURES, PLUGIN_MARKERS, SAFETY_MARKERS


def pytest_addoption(parser: pytest.Parser) -> None:
    _knobs.add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for area in AREAS:
        config.addinivalue_line("markers", f"{area.name}: {area.description} ({area.docs})")
    for name, description in {**SAFETY_MARKERS, **PLUGIN_MARKERS}.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    from pytest_aksai import _settings

    settings = _settings.configure(config)
    if settings.strict:
        config.addinivalue_line("filterwarnings", "error::pytest_aksai.AksaiWarning")
    for module in (*CORE_FIXTURES, *(area.fixtures for area in AREAS if area.fixtures)):
        if not config.pluginmanager.has_plugin(module):
            config.pluginmanager.import_plugin(module)


def pytest_report_header(config: pytest.Config) -> list[str]:
    from pytest_aksai import _settings

    return _settings.header_lines(_settings.settings_of(config))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from pytest_aksai import _settings

    settings = _settings.settings_of(config)
    if settings.is_sim:
        return
    for item in items:
        for safety_class in SAFETY_MARKERS:
            if item.get_closest_marker(safety_class) and not settings.allows(safety_class):
                item.add_marker(pytest.mark.skip(reason=settings.refusal(safety_class)))
                break
