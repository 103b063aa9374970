"""Plans refuse bad knobs in one paragraph; the self-checks name the saturated resource."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_aksai.load import InvalidRunError, LoadInputError, LoadPlan, Slos, ValidityLimits
from pytest_aksai.load._validity import SelfMeasurements, check_validity

URL = "http://127.0.0.1:9/v1"


@pytest.mark.parametrize(
    ("knobs", "names"),
    [
        ({"concurrency": 0}, ["concurrency 0", "a whole number ≥ 1", "--concurrency 64"]),
        ({"rate": -1.0}, ["rate -1.0", "> 0", "--rate 20"]),
        ({"concurrency": 2, "rate": 1.0}, ["exactly one of concurrency", "not both"]),
        ({}, ["exactly one of concurrency", "not neither"]),
        ({"concurrency": 2, "arrival": "burst"}, ["arrival 'burst'", "poisson, constant"]),
        ({"concurrency": 2, "endpoint": "embeddings"}, ["endpoint 'embeddings'", "chat, completions"]),
        ({"concurrency": 2, "duration_s": 0}, ["duration 0", "seconds > 0", "--duration 30"]),
        ({"concurrency": 2, "url": "localhost:8000"}, ["URL 'localhost:8000'", "http(s)", "--url http://"]),
    ],
)
def test_a_bad_knob_is_one_paragraph_naming_knob_value_valid_values_and_fix(knobs: dict[str, Any],
                                                                           names: list[str]) -> None:  # fmt: skip
    with pytest.raises(LoadInputError) as caught:
        LoadPlan(**{"url": URL, "model": "m", **knobs})
    text = str(caught.value)
    assert "\n" not in text
    for name in names:
        assert name in text


def test_slos_parse_from_name_value_items_and_refuse_unknown_names() -> None:
    assert Slos.parse(["ttft_p95_ms=500", "attainment_min=0.99"]) == Slos(
        ttft_p95_ms=500, attainment_min=0.99
    )
    with pytest.raises(LoadInputError, match="ttft_p95_ms, itl_p95_ms, e2e_p99_ms"):
        Slos.parse(["ttft_p99=5"])
    with pytest.raises(LoadInputError, match="a number ≥ 0"):
        Slos.parse(["ttft_p95_ms=fast"])


def test_plan_round_trips_through_json() -> None:
    plan = LoadPlan(url=URL, model="m", rate=3.5, arrival="constant", duration_s=2, slos=Slos(itl_p95_ms=40),
                    limits=ValidityLimits(max_client_cpu_fraction=1.0))  # fmt: skip
    assert LoadPlan.from_json(plan.to_json()) == plan


HEALTHY = SelfMeasurements(configured_concurrency=64, concurrency_littles_law=63.5, concurrency_sampled=63.9,
                           schedule_lag_p99_ms=None, loop_lag_p99_ms=1.2, client_cpu_fraction=0.4,
                           measured_requests=500)  # fmt: skip


@pytest.mark.parametrize(
    ("change", "resource"),
    [
        ({"concurrency_sampled": 50.0}, "in-flight concurrency"),
        ({"concurrency_littles_law": 60.0}, "in-flight concurrency"),
        ({"schedule_lag_p99_ms": 7.0}, "arrival schedule"),
        ({"loop_lag_p99_ms": 12.0}, "event loop"),
        ({"client_cpu_fraction": 0.97}, "client CPU"),
        ({"measured_requests": 0}, "requests"),
    ],
)
def test_each_missed_self_check_names_its_resource(change: dict[str, Any], resource: str) -> None:
    assert check_validity(HEALTHY, ValidityLimits()) == []
    reasons = check_validity(SelfMeasurements(**{**HEALTHY.__dict__, **change}), ValidityLimits())
    assert [r.resource for r in reasons] == [resource]
    assert resource in str(InvalidRunError(reasons))
