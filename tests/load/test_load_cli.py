"""`python -m pytest_aksai.load run`: exit codes, the JSON object, and one paragraph per bad knob."""

from __future__ import annotations

import functools
import io
import json
import subprocess
import sys
from collections.abc import Callable

import pytest

from pytest_aksai.load import LoadPlan, ValidityLimits, _cli
from pytest_aksai.load._cli import EXIT_BAD_INPUT, EXIT_INVALID_RUN, EXIT_OK, EXIT_SLO_MISSED, main

BASE = ["run", "--url", "http://127.0.0.1:9/v1", "--model", "m", "--duration", "1"]


@pytest.fixture
def shared_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other processes share this machine's cores and one preemption is a loop-lag p99 over 50 samples:
    runs that must be valid relax only the loop-lag limit (the concurrency and CPU checks keep theirs)."""
    monkeypatch.setattr(
        _cli, "LoadPlan", functools.partial(LoadPlan, limits=ValidityLimits(max_loop_lag_p99_ms=50))
    )


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (["--concurrency", "many"], ["concurrency 'many'", "a whole number ≥ 1", "--concurrency 64"]),
        (["--rate", "fast"], ["rate 'fast'", "requests per second > 0", "--rate 20"]),
        (
            ["--concurrency", "2", "--rate", "3"],
            ["--rate: not allowed with argument --concurrency", "--help"],
        ),
        ([], ["one of the arguments --concurrency --rate is required"]),
        (
            ["--rate", "3", "--arrival", "burst"],
            ["arrival 'burst'", "poisson, constant", "--arrival poisson"],
        ),
        (["--concurrency", "2", "--endpoint", "embeddings"], ["endpoint 'embeddings'", "chat, completions"]),
        (
            ["--concurrency", "2", "--prompt-tokens", "0"],
            ["prompt tokens 0", "a whole number ≥ 1", "--prompt-tokens"],
        ),
        (["--concurrency", "2", "--slo", "ttft=5"], ["SLO 'ttft=5'", "ttft_p95_ms", "--slo ttft_p95_ms=500"]),
    ],
)
def test_bad_input_exits_2_with_one_paragraph(extra: list[str], names: list[str]) -> None:
    code, out, err = run_cli(BASE + extra)
    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert err.count("\n") == 1, err
    for name in names:
        assert name in err


def test_an_unreachable_server_exits_2_naming_the_url() -> None:
    code, _, err = run_cli([*BASE, "--concurrency", "1"])
    assert code == EXIT_BAD_INPUT
    assert "http://127.0.0.1:9/v1/chat/completions cannot be reached" in err
    assert "--url" in err


@pytest.mark.usefixtures("shared_machine")
def test_json_run_prints_one_object_and_exits_0(fake_server: Callable[..., str]) -> None:
    url = fake_server(ttft_ms=10, itl_ms=20, tokens=8)
    code, out, _ = run_cli(["run", "--url", url, "--model", "m", "--concurrency", "2", "--duration", "0.5",
                            "--max-tokens", "8", "--json", "--slo", "ttft_p95_ms=10000"])  # fmt: skip
    summary = json.loads(out)
    assert summary["valid"], summary["invalid_reasons"]
    assert code == EXIT_OK
    assert summary["requests"] > 0
    assert summary["ttft_ms"]["p50"] >= 10
    assert summary["slos"] == [{"name": "ttft_p95_ms", "measured": summary["ttft_ms"]["p95"], "limit": 10000.0,
                                "met": True}]  # fmt: skip


@pytest.mark.usefixtures("shared_machine")
def test_a_missed_slo_exits_1_and_the_table_says_which(fake_server: Callable[..., str]) -> None:
    url = fake_server(ttft_ms=10, itl_ms=20, tokens=8)
    code, out, _ = run_cli(["run", "--url", url, "--model", "m", "--concurrency", "2", "--duration", "0.5",
                            "--max-tokens", "8", "--slo", "ttft_p95_ms=1", "e2e_p99_ms=100000"])  # fmt: skip
    assert "run valid" in out, out
    assert code == EXIT_SLO_MISSED
    assert "SLO ttft_p95_ms:" in out
    assert "against 1: MISSED" in out
    assert "against 100000: met" in out
    assert "TTFT" in out


def test_an_invalid_run_exits_3_naming_the_saturated_resource(fake_server: Callable[..., str]) -> None:
    url = fake_server(tokens=64)
    code, out, err = run_cli(["run", "--url", url, "--model", "m", "--concurrency", "512", "--duration", "1",
                              "--max-tokens", "64", "--json"])  # fmt: skip
    assert code == EXIT_INVALID_RUN
    assert json.loads(out)["valid"] is False
    assert "The load run is invalid: the client saturated its" in err


def test_the_module_runs_as_a_command() -> None:
    done = subprocess.run([sys.executable, "-m", "pytest_aksai.load", "run", "--help"], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0
    for knob in ("--url", "--model", "--concurrency", "--rate", "--arrival", "--duration", "--requests",
                 "--prompt-tokens", "--max-tokens", "--endpoint", "--json", "--slo"):  # fmt: skip
        assert knob in done.stdout
