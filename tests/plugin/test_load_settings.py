"""The load area's profile keys and option: one shape, validated limits, workers from the option or the profile."""

from __future__ import annotations

import pytest


def _run(pytester: pytest.Pytester, toml: str, *args: str) -> str:
    pytester.makefile(".toml", aksai=toml)
    pytester.makepyfile(
        "def test_x(aksai_settings):\n"
        "    print('WORKERS', aksai_settings.profile.load.workers, aksai_settings.sources.get('load-workers'))\n"
    )
    result = pytester.runpytest("--aksai-cluster=lab", "-s", *args)
    return result.stdout.str() + result.stderr.str()


def test_concurrency_and_rate_together_are_refused_naming_the_key(pytester: pytest.Pytester) -> None:
    text = _run(
        pytester, '[clusters.lab]\nprovider = "sim"\n[clusters.lab.load]\nconcurrency = 4\nrate = 2.0\n'
    )
    assert "give either concurrency (closed loop) or rate (open loop), not both" in text, text
    assert "Traceback" not in text


def test_workers_come_from_the_option_over_the_profile(pytester: pytest.Pytester) -> None:
    toml = '[clusters.lab]\nprovider = "sim"\n[clusters.lab.load]\nworkers = 2\n'
    assert "WORKERS 2 profile lab" in _run(pytester, toml)
    assert "WORKERS 3 option" in _run(pytester, toml, "--aksai-load-workers", "3")


def test_a_bad_worker_count_is_one_paragraph(pytester: pytest.Pytester) -> None:
    text = _run(pytester, '[clusters.lab]\nprovider = "sim"\n', "--aksai-load-workers", "zero")
    assert (
        "--aksai-load-workers (from option) has the bad value 'zero'; valid values are a whole number ≥ 1"
        in text
    )
    assert "Traceback" not in text
