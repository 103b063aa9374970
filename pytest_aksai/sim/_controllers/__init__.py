"""Controllers of the simulated cluster (being built).

The runtime calls `start(ctx)` once the API server's store is bootstrapped; it applies the scenario and
returns the controllers' long-lived tasks, which the runtime cancels at shutdown.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def start(ctx: Any) -> list[asyncio.Task[None]]:
    return []
