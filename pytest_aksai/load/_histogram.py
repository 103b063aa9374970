"""Latency histograms that merge exactly across runs and workers (HdrHistogram, 3 significant digits)."""

from __future__ import annotations

from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

_LOWEST_US = 1
_HIGHEST_US = 3_600_000_000  # one hour
_SIGNIFICANT_DIGITS = 3
PERCENTILES = (50.0, 90.0, 95.0, 99.0)


class LatencyHistogram:
    """Durations recorded in microseconds, read back in milliseconds; `merge` is exact at the resolution."""

    def __init__(self, histogram: HdrHistogram | None = None) -> None:
        self._hdr = histogram or HdrHistogram(_LOWEST_US, _HIGHEST_US, _SIGNIFICANT_DIGITS)

    def record_seconds(self, seconds: Iterable[float]) -> None:
        record = self._hdr.record_value
        for value in seconds:
            record(min(max(round(value * 1e6), _LOWEST_US), _HIGHEST_US))

    @property
    def count(self) -> int:
        return int(self._hdr.get_total_count())

    def percentile_ms(self, percentile: float) -> float | None:
        if self.count == 0:
            return None
        return float(self._hdr.get_value_at_percentile(percentile)) / 1000

    def max_ms(self) -> float | None:
        return float(self._hdr.get_max_value()) / 1000 if self.count else None

    def mean_ms(self) -> float | None:
        return float(self._hdr.get_mean_value()) / 1000 if self.count else None

    def summary_ms(self) -> dict[str, float | None]:
        """p50/p90/p95/p99/max/mean in milliseconds (None when nothing was recorded)."""
        summary = {f"p{p:g}": self.percentile_ms(p) for p in PERCENTILES}
        summary["max"] = self.max_ms()
        summary["mean"] = self.mean_ms()
        return summary

    def bins_ms(self, bins: int = 40) -> list[tuple[float, float, int]]:
        """(low, high, count) in ms: `bins` equally wide bins between the smallest and largest value."""
        if self.count == 0:
            return []
        low, high = self._hdr.get_min_value() / 1000, self._hdr.get_max_value() / 1000
        width = (high - low) / bins if high > low else 1.0
        counts = [0] * bins
        for item in self._hdr.get_recorded_iterator():
            index = int((item.value_iterated_to / 1000 - low) / width)
            counts[min(bins - 1, max(0, index))] += item.count_at_value_iterated_to
        return [(round(low + i * width, 3), round(low + (i + 1) * width, 3), counts[i]) for i in range(bins)]

    def merge(self, other: LatencyHistogram) -> None:
        self._hdr.add(other._hdr)

    def encode(self) -> str:
        """The compressed HdrHistogram wire form (base64 text), readable by any HdrHistogram library."""
        return str(self._hdr.encode().decode("ascii"))

    @classmethod
    def decode(cls, text: str) -> LatencyHistogram:
        return cls(HdrHistogram.decode(text.encode("ascii")))
