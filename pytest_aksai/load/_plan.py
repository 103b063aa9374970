"""What a load run does (`LoadPlan`), the limits that make it valid, and the SLOs it is judged by."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pytest_aksai._errors import AksaiError

Endpoint = Literal["chat", "completions"]
Arrival = Literal["poisson", "constant"]


class LoadInputError(AksaiError):
    """A load plan or SLO that cannot run: names the knob, the bad value, the valid values and the fix."""

    __module__ = "pytest_aksai.load"


def bad_input(knob: str, value: object, valid: str, fix: str) -> LoadInputError:
    return LoadInputError(
        f"The load {knob} {value!r} is not valid", expected=f"{knob}: {valid}", observed=repr(value), fix=fix
    )


@dataclass(frozen=True)
class Slos:
    """Latency and throughput objectives; None means not judged."""

    ttft_p95_ms: float | None = None
    itl_p95_ms: float | None = None
    e2e_p99_ms: float | None = None
    error_rate_max: float | None = None
    min_output_tokens_per_s: float | None = None
    attainment_min: float | None = None

    @classmethod
    def parse(cls, items: list[str]) -> Slos:
        """`name=value` items, as given to `--slo`."""
        names = [f.name for f in dataclasses.fields(cls)]
        values: dict[str, float] = {}
        for item in items:
            name, sep, text = item.partition("=")
            if not sep or name not in names:
                raise bad_input("SLO", item, f"of the form NAME=NUMBER with NAME one of {', '.join(names)}",
                                "Write e.g. --slo ttft_p95_ms=500 itl_p95_ms=50.")  # fmt: skip
            try:
                number = float(text)
            except ValueError:
                number = -1.0
            if not number >= 0:
                raise bad_input(f"SLO {name}", text, "a number ≥ 0", f"Write e.g. --slo {name}=500.")
            values[name] = number
        return cls(**values)

    def given(self) -> dict[str, float]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class ValidityLimits:
    """When the client's own numbers cannot be trusted (the run is invalid, not passed or failed)."""

    min_concurrency_fraction: float = 0.95
    max_schedule_lag_p99_ms: float = 5.0
    max_loop_lag_p99_ms: float = 5.0
    max_client_cpu_fraction: float = 0.8
    """Client CPU time over wall time, in cores: above it the event loop is the bottleneck."""
    max_start_late_s: float = 1.0
    """Workers only: how long after the shared start a worker may begin measuring."""


@dataclass(frozen=True)
class LoadPlan:
    """One load run: closed loop (`concurrency` streams) or open loop (`rate` arrivals/s), bounded by both
    `duration_s` and `requests`, after `warmup_requests` that are not measured."""

    url: str
    """The OpenAI base URL, e.g. http://127.0.0.1:8000/v1."""
    model: str
    concurrency: int | None = None
    rate: float | None = None
    arrival: Arrival = "poisson"
    duration_s: float = 30.0
    requests: int | None = None
    prompt_tokens: int = 256
    max_tokens: int = 128
    endpoint: Endpoint = "chat"
    stream: bool = True
    warmup_requests: int | None = None
    """None: one per stream (closed loop) or 8 (open loop), enough to open the connections."""
    seed: int = 0
    request_timeout_s: float = 600.0
    slos: Slos = field(default_factory=Slos)
    limits: ValidityLimits = field(default_factory=ValidityLimits)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad_input(
                "URL", self.url, "an http(s) OpenAI base URL", "Give e.g. --url http://127.0.0.1:8000/v1."
            )
        if not self.model:
            raise bad_input(
                "model", self.model, "the served model name", "Give --model as listed by GET /v1/models."
            )
        if (self.concurrency is None) == (self.rate is None):
            raise bad_input("load shape", {"concurrency": self.concurrency, "rate": self.rate},
                            "exactly one of concurrency (closed loop) or rate (open loop)",
                            "Give either --concurrency N or --rate R, not both and not neither.")  # fmt: skip
        if self.concurrency is not None and not self.concurrency >= 1:
            raise bad_input(
                "concurrency", self.concurrency, "a whole number ≥ 1", "Give e.g. --concurrency 64."
            )
        if self.rate is not None and not self.rate > 0:
            raise bad_input("rate", self.rate, "a number of requests per second > 0", "Give e.g. --rate 20.")
        if self.arrival not in get_args(Arrival):
            raise bad_input(
                "arrival", self.arrival, "one of poisson, constant", "Give --arrival poisson or constant."
            )
        if self.endpoint not in get_args(Endpoint):
            raise bad_input("endpoint", self.endpoint, "one of chat, completions",
                            "Give --endpoint chat (/v1/chat/completions) or completions (/v1/completions).")  # fmt: skip
        if not self.duration_s > 0:
            raise bad_input(
                "duration", self.duration_s, "a number of seconds > 0", "Give e.g. --duration 30."
            )
        for knob, value in (("requests", self.requests), ("warmup requests", self.warmup_requests)):
            if value is not None and value < (1 if knob == "requests" else 0):
                raise bad_input(knob, value, "a whole number ≥ 1" if knob == "requests" else "a whole number ≥ 0",
                                f"Give e.g. --{knob.replace(' ', '-')} 1000 or leave it out.")  # fmt: skip
        if not self.prompt_tokens >= 1:
            raise bad_input(
                "prompt tokens", self.prompt_tokens, "a whole number ≥ 1", "Give e.g. --prompt-tokens 256."
            )
        if not self.max_tokens >= 1:
            raise bad_input(
                "max tokens", self.max_tokens, "a whole number ≥ 1", "Give e.g. --max-tokens 128."
            )

    @property
    def closed_loop(self) -> bool:
        return self.concurrency is not None

    @property
    def warmup(self) -> int:
        if self.warmup_requests is not None:
            return self.warmup_requests
        return self.concurrency if self.concurrency is not None else 8

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadPlan:
        values = dict(data)
        values["slos"] = Slos(**values.get("slos", {}))
        values["limits"] = ValidityLimits(**values.get("limits", {}))
        return cls(**values)
