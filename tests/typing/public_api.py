"""Type-checked, never run: the public API keeps the types it promises (mypy --strict checks this file).

As stamina keeps its typing tests: a change that loosens a public signature to `Any` or breaks it fails CI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, assert_type

import openai

import pytest_aksai
from pytest_aksai import (
    AksaiError,
    Cluster,
    Endpoint,
    Finding,
    MetricsSnapshot,
    Settings,
    SizingCheck,
    SizingFinding,
    WaitResult,
    Workspace,
    kinds,
    wait_for,
)


def endpoint_gives_the_sdk_client(endpoint: Endpoint) -> None:
    assert_type(endpoint.openai(), openai.OpenAI)
    assert_type(endpoint.fetch("health"), tuple[int, str])


def settings_give_budgets(settings: Settings) -> None:
    assert_type(settings.timeout("workspace_ready"), float)
    assert_type(settings.strict, bool)
    assert_type(settings.is_absent("keda"), bool)


def cluster_reads_objects(cluster: Cluster) -> None:
    assert_type(cluster.get(kinds.WORKSPACES, "ws", "inference"), dict[str, Any] | None)
    found = cluster.get(kinds.WORKSPACES, "ws", "inference")
    if found is not None:
        assert_type(Workspace.model_validate(found), Workspace)


def waits_return_results(cluster: Cluster) -> None:
    result = wait_for(
        cluster, kinds.PODS, "p", "default", until=lambda obj: obj is not None, expected="exists", timeout=10
    )
    assert_type(result, WaitResult)
    assert_type(result.elapsed, float)


def findings_are_errors_with_paragraphs(finding: Finding) -> None:
    error: AksaiError = finding
    assert_type(error.paragraph(), str)
    assert_type(finding.headline(), str)


def sizing_checks_carry_findings(check: SizingCheck) -> None:
    assert_type(check.finding, SizingFinding | None)
    assert_type(check.problem, str | None)


def metrics_fixture(scrape: Callable[[], MetricsSnapshot]) -> None:
    assert_type(scrape().total("vllm:generation_tokens", "_total"), float)


assert_type(pytest_aksai.__version__, str)
