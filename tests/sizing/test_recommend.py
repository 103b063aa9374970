"""The recommender against hand-computed cases (each docstring shows the arithmetic)."""

from __future__ import annotations

import pytest

from pytest_aksai.sizing import ServingConfig, default_catalog, evaluate, gpu_sku, model_spec
from pytest_aksai.sizing._recommend import Choices, Load, NothingFits, Slo, economics, recommend

GIB = 1024**3
KV_PER_TOKEN_8_KV_HEADS = 2 * 32 * 8 * 128 * 2  # Mistral 7B and Phi-4 mini: 131,072 B


def test_mistral_7b_for_200_users_is_one_a100_not_eight_a10() -> None:
    """Mistral 7B, 500 + 300 tokens at p95, 200 concurrent users, every SKU of the catalog.

    max-model-len = 2 × (500 + 300) = 1600 → 2048. Weights bf16 = 7,248,023,552 × 2 B = 13.50 GiB.
    - T4 / V100 (16 GiB): 13.50 × 1.3 = 17.55 GiB > 14.40 usable → does not fit.
    - A10 (24 GiB): KV = 21.6 GiB − 13.50 − 1 = 7,623,034,470 B ÷ 131,072 = 58,159 tokens ÷ 2048 = 28
      sequences → ⌈200 ÷ 28⌉ = 8 replicas × $3.20 = $25.60/hour.
    - A100 80GB (Standard_NC24ads_A100_v4): KV = 72 GiB − 13.50 − 1 = 61,739,622,400 B ÷ 131,072 =
      471,035 tokens ÷ 2048 = 229 sequences ≥ 200 → 1 replica × $3.673 = $3.67/hour.
    """
    cat = default_catalog()
    rec = recommend(model_spec("mistral-7b-instruct"), cat.skus, Load(500, 300, 200))
    best = rec.best
    assert (best.sku.name, best.replicas, best.max_num_seqs, best.tensor_parallel_size) == (
        "Standard_NC24ads_A100_v4",
        1,
        229,
        1,
    )
    assert best.max_model_len == 2048
    assert best.cost_per_hour_peak == pytest.approx(3.673)
    assert best.batch_at_peak == 200
    a10 = next(o for o in rec.outcomes if o.sku.name == "Standard_NV36ads_A10_v5")
    assert a10.deployment is not None
    assert (a10.deployment.replicas, a10.deployment.max_num_seqs) == (8, 28)
    assert a10.deployment.cost_per_hour_peak == pytest.approx(25.60)
    t4 = next(o for o in rec.outcomes if o.sku.name == "Standard_NC4as_T4_v3")
    assert t4.verdict == "does-not-fit"
    assert "17.55 GiB do not fit the usable 14.40 GiB" in t4.reason
    # The three alternatives: one per other GPU model, cheapest node first, each saying why it lost.
    assert [(o.sku.name, o.reason.split(":")[0]) for o in rec.alternatives] == [
        ("Standard_NC4as_T4_v3", "does not fit"),
        ("Standard_NC6s_v3", "does not fit"),
        ("Standard_NV36ads_A10_v5", "more replicas"),
    ]
    # Unpriced SKUs are kept, said to be unpriced, never ranked.
    h100 = next(o for o in rec.outcomes if o.sku.name == "Standard_NC40ads_H100_v5")
    assert h100.verdict == "no-price"
    assert "--gpu-price" in h100.reason


def test_llama_70b_on_one_two_and_eight_a100s() -> None:
    """Llama 3.3 70B: 70,553,706,496 parameters; bf16 weights 131.42 GiB; KV 2 × 80 × 8 × 128 × 2 = 327,680 B.

    - 1 × A100 80GB: 131.42 × 1.3 > 72 usable → does not fit.
    - 2 × A100 80GB (NC48ads, TP 2): 65.71 GiB per GPU × 1.3 = 85.42 > 72 → does not fit in bf16;
      AWQ (0.5 B/param): 16.43 GiB per GPU; KV per GPU = 72 − 16.43 − 1 = 54.57 GiB; per-GPU KV per token
      = 327,680 ÷ 2 = 163,840 B → 357,629 tokens ÷ 2048 = 174 sequences.
    - 8 × A100 40GB (ND96asr, TP 8): 16.43 GiB per GPU × 1.3 = 21.36 < 36 → fits; KV per GPU
      = 36 − 16.43 − 1 = 18.57 GiB ÷ 40,960 B = 486,878 tokens.
    """
    llama = model_spec("llama-3.3-70b-instruct")
    weights = 70_553_706_496 * 2
    one = evaluate(llama, gpu_sku("Standard_NC24ads_A100_v4"), ServingConfig(max_model_len=2048))
    assert not one.fits
    two = evaluate(
        llama,
        gpu_sku("Standard_NC48ads_A100_v4"),
        ServingConfig(max_model_len=2048),
        default_tensor_parallel=2,
    )
    assert two.weights_per_gpu_gib == pytest.approx(weights / 2 / GIB)
    assert not two.fits
    two_awq = evaluate(
        llama,
        gpu_sku("Standard_NC48ads_A100_v4"),
        ServingConfig(max_model_len=2048, quantization="awq", tensor_parallel_size=2),
    )
    per_gpu_budget = 72 * GIB - weights / 4 / 2 - GIB
    assert two_awq.kv_token_capacity == int(per_gpu_budget // 163_840)
    assert two_awq.max_concurrent_seqs == 174
    eight = evaluate(llama, gpu_sku("Standard_ND96asr_v4"), ServingConfig(), default_tensor_parallel=8)
    assert eight.tensor_parallel_size == 8
    assert eight.kv_token_capacity == int((36 * GIB - weights / 8 - GIB) // 40_960) == 486_878
    assert eight.fits
    # recommend over all A100 sizes, AWQ allowed: one NC48ads (2 GPUs) holds 174 ≥ 100 sequences at $7.346,
    # cheaper than an 8-GPU node; bf16 fits only the 8-GPU nodes.
    rec = recommend(
        llama,
        [s for s in default_catalog().skus if "A100" in s.gpu_model],
        Load(500, 300, 100),
        choices=Choices(quantizations=(None, "awq")),
    )
    assert (rec.best.sku.name, rec.best.quantization, rec.best.replicas) == (
        "Standard_NC48ads_A100_v4",
        "awq",
        1,
    )
    assert rec.best.cost_per_hour_peak == pytest.approx(7.346)


def test_phi_4_mini_t4_beats_a10_by_cost_at_peak() -> None:
    """Phi-4 mini: 3,836,021,760 parameters → fp16 7,672,043,520 B (T4 has no bf16); KV 131,072 B/token.
    500 + 300 tokens → max-model-len 2048; 64 users.

    - T4 (NC4as, $0.526): 14.4 GiB − 7,672,043,520 − 1 GiB = 6,716,096,921 B ÷ 131,072 = 51,239 tokens
      → 25 sequences → ⌈64 ÷ 25⌉ = 3 replicas = $1.578/hour.
    - A10 (NV36ads, $3.20): 21.6 GiB − … = 14,447,038,054 B → 110,222 tokens → 53 sequences → 2 replicas
      = $6.40/hour.
    """
    skus = [gpu_sku("Standard_NC4as_T4_v3"), gpu_sku("Standard_NV36ads_A10_v5")]
    rec = recommend(model_spec("phi-4-mini-instruct"), skus, Load(500, 300, 64))
    assert (rec.best.sku.name, rec.best.replicas, rec.best.max_num_seqs) == ("Standard_NC4as_T4_v3", 3, 25)
    assert rec.best.fit.dtype == "float16"
    assert rec.best.cost_per_hour_peak == pytest.approx(3 * 0.526)
    a10 = rec.outcomes[1].deployment
    assert a10 is not None
    assert (a10.replicas, a10.max_num_seqs, a10.cost_per_hour_peak) == (2, 53, pytest.approx(6.40))


def test_an_itl_slo_excludes_the_cheapest_sku() -> None:
    """The same Phi-4 mini load with ITL p95 ≤ 25 ms.

    T4: a decode step reads the 7.672 GB of weights at 320 GB/s × 0.75 = 32.0 ms (+ 2 ms overhead, + the
    800-token KV of one sequence) = 34 ms even at one sequence → over the SLO.
    A10: 600 GB/s × 0.75 = 450 GB/s. With b sequences, b ÷ 300 prompts arrive per step; up to b = 15 the
    p95 step has none (P(0) = e^(−15/300) = 0.951 ≥ 0.95), at b = 16 it prefills one 500-token prompt
    (2 × 3.836e9 × 500 FLOPs ÷ 62.5 TFLOP/s = 61 ms). At b = 15: 2 ms + (7.672e9 + 15 × 800 × 131,072) B
    ÷ 450e9 B/s = 22.1 ms ≤ 25 → max-num-seqs 15, ⌈64 ÷ 15⌉ = 5 replicas × $3.20 = $16.00/hour; at the
    peak each replica runs ⌈64 ÷ 5⌉ = 13 sequences, predicted ITL 2 ms + (7.672e9 + 13 × 800 × 131,072) ÷ 450e9.
    """
    skus = [gpu_sku("Standard_NC4as_T4_v3"), gpu_sku("Standard_NV36ads_A10_v5")]
    rec = recommend(model_spec("phi-4-mini-instruct"), skus, Load(500, 300, 64), Slo(itl_p95_s=0.025))
    assert (rec.best.sku.name, rec.best.max_num_seqs, rec.best.replicas) == ("Standard_NV36ads_A10_v5", 15, 5)
    assert rec.best.cost_per_hour_peak == pytest.approx(16.00)
    assert rec.best.prediction.itl_p95_s == pytest.approx(
        0.002 + (7_672_043_520 + 13 * 800 * 131_072) / 450e9
    )
    t4 = rec.alternatives[0]
    assert t4.verdict == "over-slo"
    assert "ITL p95 34 ms > 25 ms" in t4.reason


def test_spot_wins_only_when_allowed() -> None:
    """Phi-4 mini, 64 users, T4 on-demand $0.526 vs an A10 with a (hypothetical) $0.50/hour spot price.

    On-demand only: 3 × T4 = $1.578/hour (see above). Spot allowed: 2 × A10 spot = $1.00/hour.
    """
    a10 = gpu_sku("Standard_NV36ads_A10_v5").model_copy(update={"spot_price_per_hour": 0.50})
    skus = [gpu_sku("Standard_NC4as_T4_v3"), a10]
    phi, load = model_spec("phi-4-mini-instruct"), Load(500, 300, 64)
    assert recommend(phi, skus, load).best.sku.name == "Standard_NC4as_T4_v3"
    best = recommend(phi, skus, load, choices=Choices(allow_spot=True)).best
    assert (best.sku.name, best.capacity_type, best.replicas) == ("Standard_NV36ads_A10_v5", "spot", 2)
    assert best.cost_per_hour_peak == pytest.approx(1.00)


def test_breakeven_from_the_predicted_throughput_and_the_worked_example() -> None:
    """Break-even = fixed per day ÷ (API − self-hosted cost per request); KAITO's fixed cost adds 24 h of the node.

    With the seed's 3,000 tok/s on a $1.20/hour GPU (worked example): self-hosted $0.0000889 per 800-token
    request, GPT-4o mini $0.000255 → 8.88 ÷ 0.000166 ≈ 53,500/day; KAITO (8.88 + 28.80) ÷ 0.000166 ≈ 227,000.
    """
    skus = [gpu_sku("Standard_NC16as_T4_v3")]
    load = Load(500, 300, 32)
    rec = recommend(
        model_spec("mistral-7b-instruct"),
        skus,
        load,
        choices=Choices(quantizations=("awq",), price_per_hour=1.20),
    )
    money = economics(rec.best, load, default_catalog().apis, tokens_per_s=3000)
    mini = money.against[0]
    assert mini.api.name == "gpt-4o-mini"
    assert mini.standalone_requests_per_day is not None and mini.kaito_requests_per_day is not None
    assert round(mini.standalone_requests_per_day, -2) == 53_500
    assert round(mini.kaito_requests_per_day, -3) == 227_000
    assert money.idle_cost_per_day_kaito == pytest.approx(37.68)
    predicted = economics(rec.best, load, default_catalog().apis)
    assert predicted.throughput_source == "roofline-estimate"
    assert predicted.tokens_per_s == pytest.approx(rec.best.predicted_tokens_per_s)


def test_nothing_fits_names_the_reasons() -> None:
    with pytest.raises(
        NothingFits, match=r"no SKU holds llama-3.3-70b-instruct .*Standard_NC4as_T4_v3: does not fit"
    ):
        recommend(model_spec("llama-3.3-70b-instruct"), [gpu_sku("Standard_NC4as_T4_v3")], Load(500, 300, 1))


def test_a_new_sku_family_from_the_catalog_is_ranked_and_unpriced_ones_are_not() -> None:
    """A user-added L4 size (24 GiB like the A10, so 53 Phi-4 mini sequences of 2048 tokens; see above) at
    $0.70/hour: ⌈64 ÷ 53⌉ = 2 × $0.70 = $1.40 < 3 × T4 $0.526 = $1.578. The same size without a price is
    listed as unpriced and the T4 wins."""
    from pytest_aksai.sizing import GpuSku

    l4 = GpuSku(
        name="Standard_Custom_L4",
        series="custom",
        gpu_model="L4",
        gpu_count=1,
        vram_gib=24,
        compute_capability=8.9,
        bf16=True,
        bandwidth_gbs=300,
        dense_fp16_tflops=121,
        vcpu=8,
        ram_gib=32,
        price_per_hour=0.70,
    )
    phi, load = model_spec("phi-4-mini-instruct"), Load(500, 300, 64)
    best = recommend(phi, [gpu_sku("Standard_NC4as_T4_v3"), l4], load).best
    assert (best.sku.name, best.replicas, best.max_num_seqs) == ("Standard_Custom_L4", 2, 53)
    unpriced = l4.model_copy(update={"price_per_hour": None})
    rec = recommend(phi, [gpu_sku("Standard_NC4as_T4_v3"), unpriced], load)
    assert rec.best.sku.name == "Standard_NC4as_T4_v3"
    assert rec.outcomes[1].verdict == "no-price"
