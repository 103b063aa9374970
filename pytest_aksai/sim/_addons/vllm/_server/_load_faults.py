"""The load area's faults in the model server: a slow path before the scheduler, and 500s under load."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from pytest_aksai.sim._faults import ActiveFaults
from pytest_aksai.sim.contract import Fault

from ._engine import SimEngine

DEFAULT_SLOW_TTFT_MS = 3000.0
DEFAULT_ERRORS_UNDER_LOAD = (4, 20.0)


def _number(text: str, default: float) -> float:
    try:
        value = float(text)
    except ValueError:
        return default
    return value if value >= 0 else default


@dataclass
class LoadFaults:
    faults: ActiveFaults
    served: int = 0
    """Requests admitted while the errors-under-load threshold was reached (every 100/PERCENT-th fails)."""

    async def before_scheduling(self) -> None:
        """vllm-slow-ttft: the request waits here, after its arrival time was taken, before the scheduler."""
        if self.faults.is_active(Fault.VLLM_SLOW_TTFT):
            text = self.faults.parameter(Fault.VLLM_SLOW_TTFT, str(DEFAULT_SLOW_TTFT_MS))
            await asyncio.sleep(_number(text, DEFAULT_SLOW_TTFT_MS) / 1000)

    def fails_under_load(self, engine: SimEngine) -> bool:
        """vllm-errors-under-load: True when this request is one of the share that answers 500."""
        if not self.faults.is_active(Fault.VLLM_ERRORS_UNDER_LOAD):
            return False
        threshold, percent = DEFAULT_ERRORS_UNDER_LOAD
        text = self.faults.parameter(Fault.VLLM_ERRORS_UNDER_LOAD, "")
        if text:
            first, _, second = text.partition(":")
            threshold = int(_number(first, threshold))
            percent = _number(second, percent) if second else percent
        if engine.in_engine() < threshold or percent <= 0:
            return False
        self.served += 1
        # Deterministic: exactly one request in every 100/PERCENT fails once the threshold is reached.
        return self.served % max(1, round(100 / min(percent, 100))) == 0


def apply_kv_fault(faults: ActiveFaults, engine: SimEngine) -> None:
    """vllm-kv-smaller-than-configured: the cache holds one max-model-len sequence (the least vLLM starts with)."""
    if faults.is_active(Fault.VLLM_KV_SMALLER_THAN_CONFIGURED):
        engine.shrink_kv_cache(math.ceil(engine.config.max_model_len / engine.config.block_size))
