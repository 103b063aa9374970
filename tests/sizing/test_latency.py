"""The roofline shared with the simulated model server, and what it predicts."""

from __future__ import annotations

import pytest

from pytest_aksai.sizing import gpu_sku, model_spec
from pytest_aksai.sizing._latency import Roofline, poisson_quantile, predict

MISTRAL_WEIGHTS = 7_248_023_552 * 2
KV = 131_072


def a100_mistral() -> Roofline:
    sku = gpu_sku("Standard_NC24ads_A100_v4")
    return Roofline.of(
        parameters=7_248_023_552,
        weights_bytes=MISTRAL_WEIGHTS,
        kv_bytes_per_token=KV,
        dense_fp16_tflops=sku.dense_fp16_tflops,
        bandwidth_gbs=sku.bandwidth_gbs,
        tensor_parallel_size=1,
    )


def test_rates_scale_with_tensor_parallelism() -> None:
    """A100 80GB PCIe: 312 TFLOP/s × 0.5 = 156 TFLOP/s, 1,935 GB/s × 0.75 = 1,451 GB/s; TP 4 scales by 4 × 0.85."""
    one = a100_mistral()
    assert one.flops_per_s == pytest.approx(156e12)
    assert one.bytes_per_s == pytest.approx(1451.25e9)
    four = Roofline.of(
        parameters=1,
        weights_bytes=1,
        kv_bytes_per_token=1,
        dense_fp16_tflops=312,
        bandwidth_gbs=1935,
        tensor_parallel_size=4,
    )
    assert four.bytes_per_s == pytest.approx(1451.25e9 * 3.4)


def test_one_sequence_is_memory_bound() -> None:
    """Mistral 7B on one A100, one sequence of 500 + 300 tokens: 300 steps per request, so 1/300 prompts per
    step and the p95 step prefills none: ITL = 2 ms + (14,496,047,104 + 800 × 131,072) B ÷ 1,451.25e9 B/s
    = 12.06 ms. TTFT = waiting out that step + the step that prefills 500 tokens: 2 ms + 2 × 7.248e9 × 500
    FLOPs ÷ 156e12 = 48.5 ms (compute bound) → 60.5 ms."""
    p = predict(a100_mistral(), batch=1, prompt_tokens=500, completion_tokens=300)
    itl = 0.002 + (MISTRAL_WEIGHTS + 800 * KV) / 1451.25e9
    assert p.itl_p95_s == pytest.approx(itl)
    assert p.ttft_p95_s == pytest.approx(itl + 0.002 + 2 * 7_248_023_552 * 500 / 156e12)
    # The mean step prefills 1/300 of a prompt and reads the KV at the mean context 500 + 150.
    mean = 0.002 + max(
        2 * 7_248_023_552 * (500 / 300 + 1 - 1 / 300) / 156e12, (MISTRAL_WEIGHTS + 650 * KV) / 1451.25e9
    )
    assert p.mean_step_s == pytest.approx(mean)
    assert p.tokens_per_s == pytest.approx(1 / mean * 800 / 300)


@pytest.mark.parametrize(
    ("mean", "k"), [(1 / 300, 0), (15 / 300, 0), (16 / 300, 1), (200 / 300, 2), (3.0, 6)]
)
def test_poisson_quantile(mean: float, k: int) -> None:
    """P(0) = e^−mean: 0.9512 at 0.05 (≥ 0.95), 0.9481 at 0.0533; at 2/3: P(≤1) = 0.856, P(≤2) = 0.970;
    at 3: P(≤5) = 0.916, P(≤6) = 0.966."""
    assert poisson_quantile(mean, 0.95) == k


def test_latency_grows_with_the_batch() -> None:
    roofline = a100_mistral()
    itls = [
        predict(roofline, batch=b, prompt_tokens=500, completion_tokens=300).itl_p95_s for b in range(1, 257)
    ]
    assert itls == sorted(itls)


def test_the_simulated_engine_paces_itself_with_the_same_step_time() -> None:
    """The sim's model server paces its steps with the recommender's roofline (one latency model)."""
    from pytest_aksai.sim._addons.kaito._presets import gpu_perf, preset, served_model
    from pytest_aksai.sim._addons.vllm._server._config import EngineConfig
    from pytest_aksai.sim._addons.vllm._server._engine import SimEngine
    from pytest_aksai.sim._addons.vllm._server._metrics import VllmMetrics

    sku = gpu_sku("Standard_NC48ads_A100_v4")
    entry = preset("mistral-7b-instruct")
    engine = SimEngine(
        served_model(entry),
        EngineConfig(max_model_len=2048, tensor_parallel_size=2),
        gpu_perf(sku),
        VllmMetrics(lambda: "m", 2048, legacy=False),
    )
    m = model_spec("mistral-7b-instruct")
    shared = Roofline.of(
        parameters=m.parameters,
        weights_bytes=m.weights_bytes,
        kv_bytes_per_token=m.kv_bytes_per_token,
        dense_fp16_tflops=sku.dense_fp16_tflops,
        bandwidth_gbs=sku.bandwidth_gbs,
        tensor_parallel_size=2,
    )
    for prefill, decode, kv in [(0, 1, 800), (500, 40, 40 * 800), (2000, 199, 200 * 650)]:
        assert engine.step_seconds(prefill_tokens=prefill, decode_seqs=decode, kv_tokens=kv) == pytest.approx(
            shared.step_seconds(prefill_tokens=prefill, decode_seqs=decode, kv_tokens=kv)
        )
