"""vLLM model serving: plays the vLLM OpenAI server of every model pod (latency from the sizing model)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_aksai.sim._addons._spec import AddonSpec
from pytest_aksai.sim.contract import Fault

if TYPE_CHECKING:
    from pytest_aksai.sim._core._framework import Controller


def _controllers() -> Sequence[type[Controller]]:
    from pytest_aksai.sim._addons.vllm._controller import ModelServingController

    return (ModelServingController,)


ADDON = AddonSpec(
    name="vllm",
    description="a vLLM-compatible OpenAI server per ready model pod",
    package=__name__,
    controllers=_controllers,
    faults=(
        Fault.VLLM_NO_METRICS,
        Fault.VLLM_BUFFERED_STREAM,
        Fault.VLLM_WRONG_SERVED_NAME,
        Fault.VLLM_BROKEN_CHAT_TEMPLATE,
        Fault.VLLM_LEGACY_METRICS,
        # The model server is what runs out of memory while loading; the name keeps the area that sees it.
        Fault.KAITO_INFERENCE_OOM,
        Fault.VLLM_SLOW_TTFT,
        Fault.VLLM_ERRORS_UNDER_LOAD,
        Fault.VLLM_KV_SMALLER_THAN_CONFIGURED,
        # --- kaito/api depth (issue 18) ---
        Fault.VLLM_ENGINE_DIES,
    ),
)
