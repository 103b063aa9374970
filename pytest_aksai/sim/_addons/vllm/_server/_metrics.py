"""vLLM's Prometheus metrics (names, help texts, labels and buckets of vllm/v1/metrics/loggers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric

_LABELS = ("model_name", "engine")
_ENGINE = "0"
_FINISH_REASONS = ("stop", "length", "abort")

_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)  # fmt: skip
_ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
                40.0, 80.0)  # fmt: skip
_REQUEST_LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
                            120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)  # fmt: skip


def build_1_2_5_buckets(max_value: int) -> list[float]:
    """1, 2, 5, 10, 20, 50, … up to `max_value` (vLLM's token-count buckets)."""
    buckets: list[float] = []
    exponent = 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > max_value:
                return buckets
            buckets.append(value)
        exponent += 1


class VllmMetrics:
    """One registry per server. Samples carry the name the server currently serves under."""

    def __init__(self, served_name: Callable[[], str], max_model_len: int, *, legacy: bool) -> None:
        self._served_name = served_name
        self._labelled: set[str] = set()
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.running = Gauge("vllm:num_requests_running", "Number of requests in model execution batches.",
                             _LABELS, registry=reg)  # fmt: skip
        self.waiting = Gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
                             _LABELS, registry=reg)  # fmt: skip
        if legacy:
            self.kv_usage = Gauge("vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage.",
                                  _LABELS, registry=reg)  # fmt: skip
        else:
            self.kv_usage = Gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
                                  _LABELS, registry=reg)  # fmt: skip
        self.preemptions = Counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.",
                                   _LABELS, registry=reg)  # fmt: skip
        self.prompt_tokens = Counter("vllm:prompt_tokens", "Number of prefill tokens processed.",
                                     _LABELS, registry=reg)  # fmt: skip
        self.generation_tokens = Counter("vllm:generation_tokens", "Number of generation tokens processed.",
                                         _LABELS, registry=reg)  # fmt: skip
        self.request_success = Counter("vllm:request_success", "Count of successfully processed requests.",
                                       (*_LABELS, "finished_reason"), registry=reg)  # fmt: skip
        token_buckets = build_1_2_5_buckets(max_model_len)
        self.request_prompt_tokens = Histogram("vllm:request_prompt_tokens", "Number of prefill tokens processed.",
                                               _LABELS, registry=reg, buckets=token_buckets)  # fmt: skip
        self.request_generation_tokens = Histogram(
            "vllm:request_generation_tokens", "Number of generation tokens processed.",
            _LABELS, registry=reg, buckets=token_buckets)  # fmt: skip
        self.ttft = Histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
                              _LABELS, registry=reg, buckets=_TTFT_BUCKETS)  # fmt: skip
        self.itl = Histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
                             _LABELS, registry=reg, buckets=_ITL_BUCKETS)  # fmt: skip
        self.e2e = Histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
                             _LABELS, registry=reg, buckets=_REQUEST_LATENCY_BUCKETS)  # fmt: skip
        self.queue_time = Histogram(
            "vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.",
            _LABELS, registry=reg, buckets=_REQUEST_LATENCY_BUCKETS)  # fmt: skip
        self.set_scheduler_state(running=0, waiting=0, kv_usage=0.0)

    def _labels(self) -> tuple[str, str]:
        name = self._served_name()
        if name not in self._labelled:
            # The served name changed (a fault toggled): the old gauges go away as on a restarted server.
            for old in self._labelled:
                for gauge in (self.running, self.waiting, self.kv_usage):
                    gauge.remove(old, _ENGINE)
            self._labelled = {name}
            # Like vLLM, every series exists (at 0) from the start, not only after its first event.
            for metric in (self.running, self.waiting, self.kv_usage, self.preemptions, self.prompt_tokens,
                           self.generation_tokens, self.request_prompt_tokens, self.request_generation_tokens,
                           self.ttft, self.itl, self.e2e, self.queue_time):  # fmt: skip
                metric.labels(name, _ENGINE)
            for reason in _FINISH_REASONS:
                self.request_success.labels(name, _ENGINE, reason)
        return name, _ENGINE

    def set_scheduler_state(self, *, running: int, waiting: int, kv_usage: float) -> None:
        labels = self._labels()
        self.running.labels(*labels).set(running)
        self.waiting.labels(*labels).set(waiting)
        self.kv_usage.labels(*labels).set(kv_usage)

    def record_step(self, *, prompt_tokens: int, generation_tokens: int, preemptions: int) -> None:
        labels = self._labels()
        if prompt_tokens:
            self.prompt_tokens.labels(*labels).inc(prompt_tokens)
        if generation_tokens:
            self.generation_tokens.labels(*labels).inc(generation_tokens)
        if preemptions:
            self.preemptions.labels(*labels).inc(preemptions)

    def record_first_token(self, ttft: float) -> None:
        self.ttft.labels(*self._labels()).observe(ttft)

    def record_inter_token(self, gap: float) -> None:
        self.itl.labels(*self._labels()).observe(gap)

    def record_finished(self, *, finish_reason: str, prompt_tokens: int, generation_tokens: int,
                        e2e: float, queue_time: float | None) -> None:  # fmt: skip
        labels = self._labels()
        self.request_success.labels(*labels, finish_reason).inc()
        if finish_reason == "abort":
            return
        self.request_prompt_tokens.labels(*labels).observe(prompt_tokens)
        self.request_generation_tokens.labels(*labels).observe(generation_tokens)
        self.e2e.labels(*labels).observe(e2e)
        if queue_time is not None:
            self.queue_time.labels(*labels).observe(queue_time)

    def exposition(self) -> bytes:
        self._labels()
        return generate_latest(_WithoutCreated(self.registry))


class _WithoutCreated:
    """vLLM turns off the `_created` series (prometheus_client.disable_created_metrics); that switch is
    process-wide, so the simulation drops them from its own exposition instead."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            family.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield family
