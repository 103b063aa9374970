"""The simulated cluster's virtual clock: cluster time runs `time_scale` times faster than wall time."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from pytest_aksai.sim.contract import DEFAULT_TIME_SCALE

__all__ = ["DEFAULT_TIME_SCALE", "VirtualClock"]


BEHIND_WALL_FOR = timedelta(hours=12)
"""How long (wall time) the cluster clock stays behind the wall clock after it starts."""


class VirtualClock:
    """Cluster time advances `time_scale` times faster than wall time. It starts far enough in the past that
    it stays behind the wall clock for `BEHIND_WALL_FOR`: clients that compare cluster timestamps with their
    own clock (`kubectl describe`'s event ages) then see old things, never ones from the future
    (`<invalid>`)."""

    def __init__(self, time_scale: float = DEFAULT_TIME_SCALE, *, epoch: datetime | None = None) -> None:
        if not time_scale > 0:
            raise ValueError(f"time scale must be > 0, got {time_scale!r}")
        self.time_scale = float(time_scale)
        lead = BEHIND_WALL_FOR * max(self.time_scale - 1.0, 0.0)
        self._epoch = epoch or (datetime.now(UTC) - lead).replace(microsecond=0)
        self._wall_start = time.monotonic()

    def elapsed(self) -> float:
        """Cluster seconds since the clock started."""
        return (time.monotonic() - self._wall_start) * self.time_scale

    def now(self) -> datetime:
        return self._epoch + timedelta(seconds=self.elapsed())

    def timestamp(self) -> str:
        """RFC 3339 with second precision and a `Z`, as the API server writes `creationTimestamp`."""
        return self.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    def micro_timestamp(self) -> str:
        """RFC 3339 with microseconds, as used by `MicroTime` fields (Lease renewTime, Event eventTime)."""
        return self.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def epoch_seconds(self) -> int:
        """Cluster time as Unix seconds (for token `iat`/`exp`)."""
        return int(self.now().timestamp())

    def wall_seconds(self, cluster_seconds: float) -> float:
        return cluster_seconds / self.time_scale

    async def sleep(self, cluster_seconds: float) -> None:
        await asyncio.sleep(max(0.0, cluster_seconds) / self.time_scale)
