"""Load generation, latency statistics, SLO evaluation and Prometheus scrapes (no pytest imports)."""

from pytest_aksai.load._prometheus import MetricsSnapshot, parse_metrics

__all__ = ["MetricsSnapshot", "parse_metrics"]
