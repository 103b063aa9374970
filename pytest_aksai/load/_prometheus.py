"""Prometheus text exposition parsed with the official `prometheus_client` parser."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from pytest_aksai._public import public


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@public
@dataclass
class MetricsSnapshot:
    """One scrape: metric families by name (as exposed, e.g. `vllm:num_requests_running`)."""

    families: dict[str, Metric] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        """True when `name` is exposed: a family (gauge, histogram) or a sample series (`..._total`)."""
        return name in self.families or any(
            sample.name == name for family in self.families.values() for sample in family.samples
        )

    def family_of(self, name: str) -> str | None:
        """The family a series name belongs to (`vllm:prompt_tokens_total` → `vllm:prompt_tokens`)."""
        if name in self.families:
            return name
        return next((f.name for f in self.families.values() if any(s.name == name for s in f.samples)), None)

    def label_values(self, family: str, label: str) -> set[str]:
        found = self.families.get(family)
        return {s.labels[label] for s in found.samples if label in s.labels} if found else set()

    def samples(self, family: str, suffix: str = "") -> Iterable[Sample]:
        """Samples of a family; `suffix` picks `_total`, `_count`, `_sum` or `_bucket` series."""
        found = self.families.get(family)
        if found is None:
            return []
        wanted = family + suffix
        return [
            Sample(s.name, dict(s.labels), float(s.value))
            for s in found.samples
            if not suffix or s.name == wanted
        ]

    def total(self, family: str, suffix: str = "", **labels: str) -> float:
        """Sum of the samples whose labels include `labels`."""
        return sum(
            s.value
            for s in self.samples(family, suffix)
            if all(s.labels.get(k) == v for k, v in labels.items())
        )


def parse_metrics(text: str) -> MetricsSnapshot:
    """Parse Prometheus text format; raises ValueError on malformed exposition."""
    return MetricsSnapshot({family.name: family for family in text_string_to_metric_families(text)})
