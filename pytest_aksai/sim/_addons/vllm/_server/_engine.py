"""The simulated vLLM engine: continuous batching over a paged KV cache, paced by a GPU roofline model.

One engine step runs every scheduled sequence once: a newly admitted sequence is prefilled (its whole
prompt) and gets its first token; every other running sequence decodes one token. The step lasts

    overhead + max(FLOPs / effective FLOP/s, bytes / effective HBM bytes/s)

with FLOPs = 2 × parameters × tokens processed in the step, and bytes = the weights (read once per step)
plus the KV cache of every running sequence. So a lone decode step is memory bound (weights / bandwidth:
~30 ms for a 3.8 B fp16 model on a T4), a long prefill is compute bound, and a big batch shares each
step: every running sequence gets one token per step. The step time is `pytest_aksai.sizing.Roofline`'s,
the same model the sizing recommender predicts latency with. Times are real wall-clock seconds divided by
`speedup` (not cluster time: a client measures TTFT/ITL with its own wall clock, and the sizing model's
milliseconds are what a user compares against).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pytest_aksai.sizing import Roofline

from ._config import GIB, EngineConfig, EngineConfigError, GpuPerf, ServedModel
from ._metrics import VllmMetrics

NON_KV_OVERHEAD_BYTES_PER_GPU = 1 * GIB
"""Activations, CUDA graphs and the CUDA context: what vLLM's memory profiling leaves outside the KV cache."""


class EngineDeadError(RuntimeError):
    MESSAGE = "EngineCore encountered an issue. See stack trace (above) for the root cause."

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)


class EngineOverloadedError(RuntimeError):
    pass


@dataclass(frozen=True)
class Output:
    """What one engine step produced for one sequence."""

    delta: str
    finish_reason: str | None = None
    stop_reason: str | None = None


@dataclass(eq=False)
class EngineRequest:
    prompt_tokens: int
    max_tokens: int
    planned: Sequence[str]
    """Text tokens the model writes before its end-of-sequence token (which it then emits, as vLLM does)."""
    stop: tuple[str, ...]
    arrival: float
    outputs: asyncio.Queue[Output | EngineDeadError] = field(default_factory=asyncio.Queue)
    generated: int = 0
    text: str = ""
    sent: int = 0
    blocks: int = 0
    scheduled_at: float | None = None
    last_token_at: float | None = None
    finish_reason: str | None = None
    stop_reason: str | None = None
    prefilled: bool = False

    @property
    def context(self) -> int:
        return self.prompt_tokens + self.generated


class SimEngine:
    def __init__(
        self,
        model: ServedModel,
        engine: EngineConfig,
        gpu: GpuPerf,
        metrics: VllmMetrics,
        *,
        speedup: float = 1.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not speedup > 0:
            raise ValueError(f"speedup must be > 0, got {speedup!r}")
        self.model = model
        self.config = engine
        self.gpu = gpu
        self.metrics = metrics
        self.speedup = speedup
        self._clock = clock or time.monotonic
        self.total_blocks = kv_cache_blocks(model, engine, gpu)
        self.free_blocks = self.total_blocks
        self.waiting: deque[EngineRequest] = deque()
        self.running: list[EngineRequest] = []
        self.dead = False
        self.steps = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._roofline = Roofline.of(
            parameters=model.parameter_count(),
            weights_bytes=model.weights_bytes,
            kv_bytes_per_token=model.kv_bytes_per_token,
            dense_fp16_tflops=gpu.fp16_tflops,
            bandwidth_gbs=gpu.memory_bandwidth_gbps,
            tensor_parallel_size=engine.tensor_parallel_size,
        )

    # --- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sim-vllm-engine")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def mark_dead(self) -> None:
        """The engine core died: every request in flight fails, /health answers 503 from now on."""
        self.dead = True
        for seq in [*self.running, *self.waiting]:
            seq.outputs.put_nowait(EngineDeadError())
        self.running.clear()
        self.waiting.clear()
        self.free_blocks = self.total_blocks
        self._publish_state()

    # --- requests --------------------------------------------------------------------------------------
    def now(self) -> float:
        """The engine's clock (the time base of arrivals and its TTFT histogram)."""
        return self._clock()

    def in_engine(self) -> int:
        """Requests the engine holds: running and waiting."""
        return len(self.running) + len(self.waiting)

    def shrink_kv_cache(self, blocks: int) -> None:
        """Hold only `blocks` KV blocks (the vllm-kv-smaller-than-configured fault); call before serving."""
        self.total_blocks = self.free_blocks = min(self.total_blocks, blocks)
        self._publish_state()

    def submit(
        self,
        *,
        prompt_tokens: int,
        max_tokens: int,
        planned: Sequence[str],
        stop: Sequence[str],
        arrival: float | None = None,
    ) -> EngineRequest:
        if self.dead:
            raise EngineDeadError()
        free_slots = max(0, self.config.max_num_seqs - len(self.running))
        if len(self.waiting) - free_slots >= self.config.max_num_seqs:
            raise EngineOverloadedError(
                f"the server is overloaded: {len(self.waiting)} requests are waiting and max-num-seqs is "
                f"{self.config.max_num_seqs}; retry later"
            )
        arrived = self._clock() if arrival is None else arrival
        seq = EngineRequest(prompt_tokens, max_tokens, planned, tuple(s for s in stop if s), arrived)
        self.waiting.append(seq)
        self._publish_state()
        self._wake.set()
        return seq

    def abort(self, seq: EngineRequest) -> None:
        """The client went away: free the sequence's slot and blocks (vLLM's abort on disconnect)."""
        if seq.finish_reason is not None:
            return
        if seq in self.waiting:
            self.waiting.remove(seq)
        elif seq in self.running:
            self.running.remove(seq)
            self.free_blocks += seq.blocks
            seq.blocks = 0
        else:
            return
        seq.finish_reason = "abort"
        self._record_finished(seq, self._clock())
        self._publish_state()

    # --- timing model ----------------------------------------------------------------------------------
    def step_seconds(self, *, prefill_tokens: int, decode_seqs: int, kv_tokens: int) -> float:
        seconds = self._roofline.step_seconds(
            prefill_tokens=prefill_tokens, decode_seqs=decode_seqs, kv_tokens=kv_tokens
        )
        return seconds / self.speedup

    # --- the loop --------------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            if not self.running and not self.waiting:
                self._wake.clear()
                await self._wake.wait()
                continue
            started = self._clock()
            preempted = self._reserve_decode_blocks()
            admitted = self._admit(started)
            if not self.running:
                # Nothing fits (a prompt larger than the whole KV cache cannot be; see submit's caller).
                self._wake.clear()
                await self._wake.wait()
                continue
            prefill_tokens = sum(seq.context for seq in admitted)
            decoding = [seq for seq in self.running if seq not in admitted]
            kv_tokens = sum(seq.context for seq in self.running)
            duration = self.step_seconds(
                prefill_tokens=prefill_tokens, decode_seqs=len(decoding), kv_tokens=kv_tokens
            )
            self._publish_state()
            await asyncio.sleep(max(0.0, started + duration - self._clock()))
            self._finish_step(admitted, preempted)

    def _blocks_for(self, tokens: int) -> int:
        return math.ceil(tokens / self.config.block_size)

    def _reserve_decode_blocks(self) -> int:
        """Give each running sequence room for the token it writes next; when full, preempt the newest
        (vLLM's recompute preemption: it goes back to the head of the queue and is prefilled again)."""
        preempted = 0
        i = 0
        while i < len(self.running):
            seq = self.running[i]
            need = self._blocks_for(seq.context + 1) - seq.blocks
            while need > self.free_blocks:
                victim = self.running.pop()
                self.free_blocks += victim.blocks
                victim.blocks = 0
                victim.prefilled = False
                self.waiting.appendleft(victim)
                preempted += 1
                if victim is seq:
                    break
            else:
                self.free_blocks -= need
                seq.blocks += need
                i += 1
        return preempted

    def _admit(self, now: float) -> list[EngineRequest]:
        admitted: list[EngineRequest] = []
        while self.waiting and len(self.running) < self.config.max_num_seqs:
            seq = self.waiting[0]
            need = self._blocks_for(seq.context + 1)
            if need > self.free_blocks:
                break
            self.waiting.popleft()
            self.free_blocks -= need
            seq.blocks = need
            if seq.scheduled_at is None:
                seq.scheduled_at = now
            self.running.append(seq)
            admitted.append(seq)
        return admitted

    def _finish_step(self, admitted: list[EngineRequest], preempted: int) -> None:
        now = self._clock()
        self.steps += 1
        new_prompt_tokens = 0
        for seq in admitted:
            if not seq.prefilled and seq.generated == 0:
                new_prompt_tokens += seq.prompt_tokens
            seq.prefilled = True
        batch = list(self.running)
        for seq in batch:
            self._advance(seq, now)
            if seq.finish_reason is not None:
                self.running.remove(seq)
                self.free_blocks += seq.blocks
                seq.blocks = 0
                self._record_finished(seq, now)
        self.metrics.record_step(
            prompt_tokens=new_prompt_tokens,
            generation_tokens=len(batch),
            preemptions=preempted,
        )
        self._publish_state()

    def _advance(self, seq: EngineRequest, now: float) -> None:
        if seq.last_token_at is None:
            self.metrics.record_first_token(now - seq.arrival)
        else:
            self.metrics.record_inter_token(now - seq.last_token_at)
        seq.last_token_at = now
        index = seq.generated
        seq.generated += 1
        if index < len(seq.planned):
            seq.text += seq.planned[index]
            for stop in seq.stop:
                at = seq.text.find(stop, max(0, len(seq.text) - len(seq.planned[index]) - len(stop)))
                if at >= 0:
                    seq.text = seq.text[:at]
                    seq.finish_reason, seq.stop_reason = "stop", stop
                    break
        else:
            seq.finish_reason = "stop"  # the end-of-sequence token: counted, not shown
        if seq.finish_reason is None and seq.generated >= seq.max_tokens:
            seq.finish_reason = "length"
        if seq.finish_reason is None and seq.stop:
            # Hold back what could still turn out to be the start of a stop string, as vLLM does.
            visible = len(seq.text) - (max(len(s) for s in seq.stop) - 1)
        else:
            visible = len(seq.text)
        delta = seq.text[seq.sent : max(seq.sent, visible)]
        seq.sent += len(delta)
        seq.outputs.put_nowait(Output(delta, seq.finish_reason, seq.stop_reason))

    def _record_finished(self, seq: EngineRequest, now: float) -> None:
        queue_time = None if seq.scheduled_at is None else seq.scheduled_at - seq.arrival
        self.metrics.record_finished(
            finish_reason=seq.finish_reason or "abort",
            prompt_tokens=seq.prompt_tokens,
            generation_tokens=seq.generated,
            e2e=now - seq.arrival,
            queue_time=queue_time,
        )

    def _publish_state(self) -> None:
        used = self.total_blocks - self.free_blocks
        self.metrics.set_scheduler_state(
            running=len(self.running),
            waiting=len(self.waiting),
            kv_usage=used / self.total_blocks if self.total_blocks else 0.0,
        )


def kv_cache_blocks(model: ServedModel, engine: EngineConfig, gpu: GpuPerf) -> int:
    """KV blocks vLLM would allocate: VRAM × gpu-memory-utilization − weights − non-KV overhead.

    Raises EngineConfigError with vLLM's own start-up messages when the engine could not start.
    """
    tp = engine.tensor_parallel_size
    if tp > gpu.count:
        raise EngineConfigError(
            f"vllm engine argument tensor-parallel-size: {tp} is larger than the {gpu.count} GPU(s) of the "
            f"node ({gpu.name}); set it to at most {gpu.count} or pick a larger instanceType."
        )
    if engine.max_model_len > model.max_model_len:
        raise EngineConfigError(
            f"User-specified max_model_len ({engine.max_model_len}) is greater than the derived max_model_len "
            f"(max_position_embeddings={model.max_model_len} or model_max_length=None in model's config.json). "
            f"Set max-model-len to at most {model.max_model_len} in the `vllm:` map of the inference ConfigMap."
        )
    budget = gpu.memory_gib_per_gpu * GIB * tp * engine.gpu_memory_utilization
    kv_bytes = budget - model.weights_bytes - NON_KV_OVERHEAD_BYTES_PER_GPU * tp
    block_bytes = engine.block_size * model.kv_bytes_per_token
    blocks = int(kv_bytes // block_bytes) if kv_bytes > 0 else 0
    if blocks <= 0:
        raise EngineConfigError(
            "No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when "
            f"initializing the engine. ({model.hf_id}: {model.weights_bytes / GIB:.1f} GiB of weights on "
            f"{tp} × {gpu.name} with {gpu.memory_gib_per_gpu:g} GiB each at gpu-memory-utilization "
            f"{engine.gpu_memory_utilization:g}.)"
        )
    if blocks * engine.block_size < engine.max_model_len:
        raise EngineConfigError(
            f"The model's max seq len ({engine.max_model_len}) is larger than the maximum number of tokens "
            f"that can be stored in KV cache ({blocks * engine.block_size}). Try increasing "
            "`gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine."
        )
    return blocks
