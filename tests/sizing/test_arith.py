"""Sizing arithmetic against hand-computed cases and published figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_aksai.sizing import (
    CatalogError,
    ServingConfig,
    UnknownEntryError,
    default_catalog,
    evaluate,
    gpu_sku,
    load_catalog_file,
    model_spec,
)
from pytest_aksai.sizing import _arith as A

GIB = 1024**3


def test_worked_example_breakeven_reproduces_the_guide() -> None:
    # Mistral 7B self-hosted vs GPT-4o-mini: 500 in + 300 out, 3,000 tok/s on a $1.20/hour GPU.
    api = default_catalog().api_price("gpt-4o-mini").cost_per_request(500, 300)
    assert api == pytest.approx(500 * 0.15e-6 + 300 * 0.60e-6)  # $0.000255
    selfhost = A.selfhost_cost_per_token(1.20, 3000) * (500 + 300)
    assert selfhost == pytest.approx(1.20 / 3000 / 3600 * 800)  # $0.0000889
    standalone = A.breakeven_requests_per_day(8.88, api, selfhost)
    assert standalone is not None
    assert round(standalone, -2) == 53_500
    kaito_fixed = A.kaito_fixed_daily(8.88, 1.20)
    assert kaito_fixed == pytest.approx(37.68)
    kaito = A.breakeven_requests_per_day(kaito_fixed, api, selfhost)
    assert kaito is not None
    assert round(kaito, -3) == 227_000


def test_breakeven_is_none_when_selfhosting_costs_more_per_request() -> None:
    assert A.breakeven_requests_per_day(8.88, 1e-5, 2e-5) is None
    assert A.breakeven_requests_per_day(8.88, 2e-5, 2e-5) is None


def test_gpt4o_price_per_request() -> None:
    assert default_catalog().api_price("GPT-4o").cost_per_request(1_000_000, 1_000_000) == pytest.approx(
        12.50
    )


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("llama-3.1-8b-instruct", 2 * 32 * 8 * 128 * 2),  # 131,072 B: GQA with 8 KV heads
        ("llama-3.3-70b-instruct", 2 * 80 * 8 * 128 * 2),  # 327,680 B
        ("phi-3-mini-128k-instruct", 2 * 32 * 32 * 96 * 2),  # 393,216 B: full multi-head attention
        ("qwen2.5-7b-instruct", 2 * 28 * 4 * 128 * 2),  # 57,344 B
        ("gemma-3-27b-instruct", 2 * 62 * 16 * 128 * 2),
    ],
)
def test_kv_bytes_per_token_from_architecture(model: str, expected: int) -> None:
    assert model_spec(model).kv_bytes_per_token == expected


def test_weights_by_dtype() -> None:
    llama = model_spec("meta-llama/Llama-3.1-8B-Instruct")
    assert llama.weights_bytes == 8_030_261_248 * 2
    assert A.weights_bytes(llama.parameters, A.WEIGHT_BYTES_PER_PARAM["awq"]) == 8_030_261_248 * 0.5
    assert A.weights_bytes(llama.parameters, A.WEIGHT_BYTES_PER_PARAM["int8"]) == 8_030_261_248


@pytest.mark.parametrize(("n", "p2"), [(1, 1), (2, 2), (3, 4), (1600, 2048), (2048, 2048), (2049, 4096)])
def test_next_power_of_two(n: int, p2: int) -> None:
    assert A.next_power_of_two(n) == p2


def test_recommended_max_model_len_and_replicas() -> None:
    assert A.recommended_max_model_len(500, 300) == 2048  # 2 × 800 = 1600 → 2048
    assert A.recommended_max_model_len(3000, 1000) == 8192
    assert A.replicas_for(100, 32) == 4
    assert A.replicas_for(64, 32) == 2
    assert A.replicas_for(0, 32) == 1


def test_published_sku_figures() -> None:
    a100 = gpu_sku("standard_nc24ads_a100_v4")
    assert (a100.gpu_count, a100.vram_gib, a100.vcpu, a100.ram_gib) == (1, 80, 24, 220)
    assert (a100.bandwidth_gbs, a100.dense_fp16_tflops, a100.compute_capability) == (1935, 312, 8.0)
    assert a100.bf16
    assert a100.sku_family == "N"
    t4 = gpu_sku("Standard_NC4as_T4_v3")
    assert (t4.vram_gib, t4.bandwidth_gbs, t4.compute_capability, t4.bf16) == (16, 320, 7.5, False)
    assert t4.price_per_hour == 0.526
    h100 = gpu_sku("Standard_ND96isr_H100_v5")
    assert (h100.gpu_count, h100.vram_gib, h100.bandwidth_gbs) == (8, 80, 3350)
    assert gpu_sku("Standard_NC40ads_H100_v5").vram_gib == 94
    assert all(s.source for s in default_catalog().skus)
    assert all(m.source.startswith("https://huggingface.co/") for m in default_catalog().models)


def test_model_lookup_by_served_name_preset_and_hf_id() -> None:
    by_preset = model_spec("PHI-4-MINI-INSTRUCT")
    assert by_preset is model_spec("microsoft/Phi-4-mini-instruct")
    assert by_preset.served_name == "phi-4-mini-instruct"
    assert model_spec("/models/mistralai/Mistral-7B-Instruct-v0.3").name == "mistral-7b-instruct"
    # KAITO serves a model as its HF id's last segment, lowercased (plain vLLM would serve the whole id).
    assert model_spec("Qwen/Qwen2.5-72B-Instruct").served_name == "qwen2.5-72b-instruct"
    assert model_spec("mistral-7b-instruct").served_name == "mistral-7b-instruct-v0.3"


def test_unknown_entries_name_the_catalog() -> None:
    with pytest.raises(UnknownEntryError, match=r"unknown model 'gpt-j'.*mistral-7b-instruct"):
        model_spec("gpt-j")
    with pytest.raises(UnknownEntryError, match=r"unknown gpu 'Standard_D4s_v5'"):
        gpu_sku("Standard_D4s_v5")


def test_catalog_extension_from_toml(tmp_path: Path) -> None:
    f = tmp_path / "extra.toml"
    f.write_text(
        '[[models]]\nname = "tiny"\nhf_id = "acme/tiny"\nparameters = 1000000000\nlayers = 16\n'
        'attention_heads = 16\nkv_heads = 4\nhead_dim = 64\nmax_context = 8192\nsource = "acme"\n'
        '[gpus.L4]\ncompute_capability = "8.9"\nbf16 = true\nbandwidth_gbs = 300\ndense_fp16_tflops = 121\n'
        '[[skus]]\nname = "Standard_Custom_L4"\nseries = "X"\ngpu = "L4"\ngpu_count = 1\nvram_gib = 24\n'
        "vcpu = 8\nram_gib = 32\nprice_per_hour = 0.8\n",
        encoding="utf-8",
    )
    skus, models, apis = load_catalog_file(f)
    cat = default_catalog().extended(skus=skus, models=models, apis=apis)
    assert cat.model_spec("ACME/tiny").kv_bytes_per_token == 2 * 16 * 4 * 64 * 2
    assert cat.gpu_sku("standard_custom_l4").compute_capability == 8.9
    assert cat.gpu_sku("Standard_NC4as_T4_v3").vram_gib == 16


def test_catalog_file_errors_name_the_file_and_key(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("modles: []\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"bad.yaml: unknown keys \['modles'\]"):
        load_catalog_file(f)
    f.write_text(
        "models:\n  - {name: x, hf_id: y, parameters: -1, layers: 1, attention_heads: 1, kv_heads: 1,"
        " head_dim: 1, max_context: 1}\n",
        encoding="utf-8",
    )
    with pytest.raises(CatalogError, match="model entry"):
        load_catalog_file(f)
    with pytest.raises(CatalogError, match="cannot be read"):
        load_catalog_file(tmp_path / "missing.yaml")


def test_fit_mistral_fp16_on_t4_by_hand() -> None:
    r = evaluate(
        model_spec("mistral-7b-instruct"),
        gpu_sku("Standard_NC16as_T4_v3"),
        ServingConfig(dtype="float16", max_model_len=8192, max_num_seqs=64, gpu_memory_utilization=0.92),
    )
    weights = 7_248_023_552 * 2
    assert r.weights_gib == pytest.approx(weights / GIB)
    budget = 16 * GIB * 0.92 - weights - 1 * GIB
    assert r.kv_budget_gib == pytest.approx(budget / GIB)
    assert r.kv_token_capacity == int(budget // 131072)
    assert r.max_concurrent_seqs == 0
    assert not r.fits


def test_fit_llama8b_on_a100_by_hand() -> None:
    r = evaluate(
        model_spec("llama-3.1-8b-instruct"),
        gpu_sku("Standard_NC24ads_A100_v4"),
        ServingConfig(max_model_len=8192, max_num_seqs=32),
    )
    budget = 80 * GIB * 0.9 - 8_030_261_248 * 2 - GIB
    assert r.kv_token_capacity == int(budget // 131072)
    assert r.max_concurrent_seqs == int(budget // 131072) // 8192  # 56 sequences of 8K
    assert r.dtype == "bfloat16"
    assert r.fits


def test_tensor_parallel_divides_weights_and_kv() -> None:
    r = evaluate(
        model_spec("llama-3.3-70b-instruct"),
        gpu_sku("Standard_ND96asr_v4"),
        ServingConfig(max_model_len=8192, tensor_parallel_size=8),
    )
    assert r.weights_per_gpu_gib == pytest.approx(70_553_706_496 * 2 / 8 / GIB)
    assert r.kv_bytes_per_token == 327_680
    assert r.kv_bytes_per_token_per_gpu == 327_680 // 8
    per_gpu_budget = 40 * GIB * 0.9 - 70_553_706_496 * 2 / 8 - GIB
    assert r.kv_budget_gib == pytest.approx(per_gpu_budget * 8 / GIB)
    assert r.fits


def test_kv_heads_replicate_when_fewer_than_ranks() -> None:
    # Qwen2.5-7B has 4 KV heads; at TP 8 each rank still holds one whole KV head.
    q = model_spec("qwen2.5-7b-instruct")
    r = evaluate(q, gpu_sku("Standard_ND96asr_v4"), ServingConfig(tensor_parallel_size=4))
    assert r.kv_bytes_per_token_per_gpu == 2 * 28 * 1 * 128 * 2


def test_sizing_profile_builds_a_catalog(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from pytest_aksai.sizing._profile import SizingProfile

    (tmp_path / "m.yaml").write_text(
        "models:\n  - {name: tiny, hf_id: acme/tiny, parameters: 1000, layers: 1, attention_heads: 1, kv_heads: 1,"
        " head_dim: 8, max_context: 512}\n",
        encoding="utf-8",
    )
    prof = SizingProfile.model_validate(
        {
            "models_file": "m.yaml",
            "gpus": {
                "L4": {
                    "compute_capability": "8.9",
                    "bf16": True,
                    "bandwidth_gbs": 300,
                    "dense_fp16_tflops": 121,
                }
            },
            "skus": [
                {
                    "name": "Standard_X_L4",
                    "series": "X",
                    "gpu": "L4",
                    "gpu_count": 1,
                    "vram_gib": 24,
                    "vcpu": 8,
                    "ram_gib": 32,
                }
            ],
            "runtime_overhead_gib": 0.5,
        }
    )
    cat = prof.catalog(tmp_path)
    assert cat.model_spec("acme/tiny").max_context == 512
    assert cat.gpu_sku("standard_x_l4").bandwidth_gbs == 300
    with pytest.raises(ValidationError, match="modelsfile"):
        SizingProfile.model_validate({"modelsfile": "x"})
    with pytest.raises(ValidationError, match="names gpu 'H200'"):
        SizingProfile.model_validate(
            {
                "skus": [
                    {
                        "name": "S",
                        "series": "X",
                        "gpu": "H200",
                        "gpu_count": 1,
                        "vram_gib": 1,
                        "vcpu": 1,
                        "ram_gib": 1,
                    }
                ]
            }
        )
