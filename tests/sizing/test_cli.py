"""The sizing CLI: `python -m pytest_aksai.sizing fit|recommend|check`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_aksai.sizing._cli import main

UPSTREAM = Path(__file__).resolve().parents[2] / ".." / "shared" / "upstream" / "aks-ai-lab-manifests"
GIB = 1024**3


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main(list(argv), out, err)
    return rc, out.getvalue(), err.getvalue()


def run_json(*argv: str) -> tuple[int, dict[str, Any]]:
    rc, out, err = run(*argv, "--json")
    assert err == ""
    return rc, json.loads(out)


def test_fit_json_has_the_documented_fields() -> None:
    rc, doc = run_json(
        "fit",
        "--model",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--gpu",
        "Standard_NC24ads_A100_v4",
        "--max-model-len",
        "8192",
        "--max-num-seqs",
        "32",
    )
    assert rc == 0
    assert doc["command"] == "fit"
    assert doc["inputs"]["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert doc["weights_gib"] == pytest.approx(8_030_261_248 * 2 / GIB)
    assert doc["vram_gib"] == 80
    assert doc["kv_bytes_per_token"] == 131072
    assert doc["kv_budget_gib"] == pytest.approx((80 * GIB * 0.9 - 8_030_261_248 * 2 - GIB) / GIB)
    assert doc["max_concurrent_seqs"] == 56  # (72 − 14.96 − 1) GiB / 128 KiB per token / 8192
    assert doc["fits"] is True
    assert doc["violations"] == []


def test_fit_reports_violations_and_exits_1() -> None:
    rc, doc = run_json(
        "fit", "--model", "mistral-7b-instruct", "--gpu", "standard_nc16as_t4_v3", "--dtype", "bfloat16"
    )
    assert rc == 1
    assert doc["fits"] is False
    names = {v["invariant"] for v in doc["violations"]}
    assert {"weights-fit", "kv-one-sequence", "dtype-supported"} <= names
    assert all(v["message"] for v in doc["violations"])


def test_fit_tensor_parallel_shards_a_70b_model() -> None:
    rc, doc = run_json(
        "fit",
        "--model",
        "llama-3.3-70b-instruct",
        "--gpu",
        "Standard_NC96ads_A100_v4",
        "--tensor-parallel-size",
        "4",
        "--max-model-len",
        "16384",
    )
    assert rc == 0
    assert doc["kv_bytes_per_token"] == 327_680
    assert doc["kv_bytes_per_token_per_gpu"] == 327_680 // 4
    assert doc["vram_gib"] == 320


def test_fit_text_output() -> None:
    rc, out, _ = run(
        "fit",
        "--model",
        "phi-4-mini-instruct",
        "--gpu",
        "Standard_NC4as_T4_v3",
        "--max-model-len",
        "4096",
        "--max-num-seqs",
        "64",
    )
    assert rc == 0
    assert "phi-4-mini-instruct on Standard_NC4as_T4_v3: fits" in out
    assert "WARN    kv-concurrency: max-num-seqs 64 > 12 sequences" in out


def test_recommend_reproduces_the_worked_example() -> None:
    rc, doc = run_json(
        "recommend",
        "--model",
        "mistral-7b-instruct",
        "--p95-prompt",
        "500",
        "--p95-completion",
        "300",
        "--peak-concurrency",
        "32",
        "--throughput",
        "3000",
        "--gpu",
        "Standard_NC16as_T4_v3",
        "--quantization",
        "awq",
        "--gpu-price",
        "1.20",
    )
    assert rc == 0
    assert doc["api"] == "gpt-4o-mini"
    assert doc["api_cost_per_request"] == pytest.approx(0.000255)
    assert doc["selfhost_cost_per_request"] == pytest.approx(800 * 1.20 / (3000 * 3600))
    be = doc["breakeven_requests_per_day"]
    assert round(be["standalone"], -2) == 53_500
    assert round(be["kaito"], -3) == 227_000
    assert doc["fixed_daily"] == {"standalone": 8.88, "kaito": pytest.approx(37.68)}
    assert doc["against"]["gpt-4o"]["api_cost_per_request"] == pytest.approx(500 * 2.5e-6 + 300 * 10e-6)
    assert doc["max_model_len"] == 2048
    assert doc["replicas"] == -(-32 // doc["max_num_seqs"])
    assert doc["cost_per_hour_peak"] == pytest.approx(doc["replicas"] * 1.20)


def test_recommend_headline_question_is_one_a100() -> None:
    """Mistral 7B / 500 + 300 / 200 users: one A100 80GB holds 229 sequences of 2048 tokens (test_recommend
    has the arithmetic); eight A10s ($25.60/hour) lose on cost at peak."""
    rc, doc = run_json(
        "recommend",
        "--model",
        "mistral-7b-instruct",
        "--p95-prompt",
        "500",
        "--p95-completion",
        "300",
        "--peak-concurrency",
        "200",
    )
    assert rc == 0
    assert (doc["gpu"], doc["replicas"], doc["max_num_seqs"]) == ("Standard_NC24ads_A100_v4", 1, 229)
    assert doc["cost_per_hour_peak"] == pytest.approx(3.673)
    assert doc["throughput_source"] == "roofline-estimate"
    assert doc["prediction"]["basis"].startswith("roofline estimate")
    assert doc["idle_cost_per_day"] == {"standalone": 8.88, "kaito": pytest.approx(8.88 + 24 * 3.673)}
    assert doc["breakeven"].startswith("Against gpt-4o-mini ($0.000255/request)")
    alternatives = {a["gpu"]: a for a in doc["alternatives"]}
    assert alternatives["Standard_NV36ads_A10_v5"]["reason"].startswith("more replicas: 8 replica(s)")
    assert {"Standard_NC4as_T4_v3", "Standard_NC6s_v3"} <= {r["gpu"] for r in doc["rejected"]}
    assert doc["fit"]["fits"] is True


def test_recommend_text_says_the_prediction_is_an_estimate() -> None:
    rc, out, _ = run(
        "recommend",
        "--model",
        "mistral-7b",
        "--p95-prompt",
        "500",
        "--p95-completion",
        "300",
        "--peak-concurrency",
        "200",
    )
    assert rc == 0
    assert "recommended: 1 × Standard_NC24ads_A100_v4" in out
    assert "an estimate from the roofline the simulated model server uses, not a measurement" in out
    assert "--max-model-len 2048 --max-num-seqs 229 --tensor-parallel-size 1" in out
    assert "idle cost per day: $8.88 with vLLM scaled to zero" in out
    assert "Standard_NV36ads_A10_v5: more replicas: 8 replica(s) × $3.200/hour = $25.60/hour" in out


def test_recommend_with_gpu_names_and_slo() -> None:
    rc, doc = run_json(
        "recommend",
        "--model",
        "microsoft/Phi-4-mini-instruct",
        "--p95-prompt",
        "500",
        "--p95-completion",
        "300",
        "--peak-concurrency",
        "64",
        "--gpu",
        "Standard_NC4as_T4_v3",
        "--gpu",
        "Standard_NV36ads_A10_v5",
        "--itl-p95-ms",
        "25",
    )
    assert rc == 0
    assert (doc["gpu"], doc["max_num_seqs"], doc["replicas"]) == ("Standard_NV36ads_A10_v5", 15, 5)
    assert doc["prediction"]["itl_p95_ms"] <= 25
    assert doc["alternatives"][0]["verdict"] == "over-slo"


def test_recommend_without_a_fitting_sku_explains() -> None:
    rc, out, err = run(
        "recommend",
        "--model",
        "llama-3.3-70b-instruct",
        "--p95-prompt",
        "500",
        "--p95-completion",
        "300",
        "--peak-concurrency",
        "1",
        "--gpu",
        "Standard_NC4as_T4_v3",
    )
    assert rc == 2
    assert out == ""
    assert "no SKU holds llama-3.3-70b-instruct at max-model-len 2048" in err


def test_fit_defaults_tensor_parallel_to_the_gpu_count() -> None:
    rc, out, _ = run("fit", "--model", "llama-3.3-70b-instruct", "--gpu", "Standard_ND96asr_v4")
    assert rc == 0
    assert "llama-3.3-70b-instruct on Standard_ND96asr_v4: fits" in out
    assert "tensor-parallel-size 8 (default: the SKU's GPU count, as KAITO sets it)" in out
    assert "per GPU: weights 16.43 GiB" in out
    assert "whole model over 8 GPU(s): weights 131.42 GiB" in out
    rc, doc = run_json(
        "fit", "--model", "llama-3.3-70b", "--gpu", "Standard_NC48ads_A100_v4", "--max-model-len", "2048"
    )
    assert rc == 1  # 65.71 GiB per GPU × 1.3 > 72 GiB usable
    assert doc["tensor_parallel_size"] == 2
    rc, doc = run_json(
        "fit",
        "--model",
        "llama-3.3-70b",
        "--gpu",
        "Standard_NC48ads_A100_v4",
        "--max-model-len",
        "2048",
        "--quantization",
        "awq",
    )
    assert rc == 0
    assert doc["max_concurrent_seqs"] == 174


def refusal(*argv: str) -> str:
    rc, out, err = run(*argv)
    assert (rc, out) == (2, "")
    assert err.count("\n") == 1, "one paragraph"
    return err


REC = (
    "recommend",
    "--model",
    "mistral-7b-instruct",
    "--p95-prompt",
    "500",
    "--p95-completion",
    "300",
    "--peak-concurrency",
    "200",
)


def test_gpu_price_needs_exactly_one_gpu() -> None:
    err = refusal(*REC, "--gpu-price", "1.20")
    assert err.startswith("error: --gpu-price 1.2: is the price of one VM size, but no --gpu was given")
    assert "Valid values: a positive USD/hour together with exactly one --gpu VM size." in err
    assert "Fix: add --gpu with one VM size" in err
    err = refusal(*REC, "--gpu", "A100", "--gpu-price", "1.20")
    assert "but --gpu A100 (5 VM sizes) was given" in err


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            ("--runtime-overhead-gib", "-1"),
            "--runtime-overhead-gib -1: is impossible for the per-GPU memory vLLM uses besides weights and KV "
            "cache. Valid values: ≥ 0. Fix: pass e.g. --runtime-overhead-gib 1.0.",
        ),
        (
            ("--gpu-memory-utilization", "1.5"),
            "--gpu-memory-utilization 1.5: is impossible for the share of GPU memory vLLM may use. Valid values: "
            "> 0 and ≤ 1. Fix: pass e.g. --gpu-memory-utilization 0.9.",
        ),
        (("--itl-p95-ms", "0"), "--itl-p95-ms 0: is impossible for a latency objective in milliseconds."),
        (("--fixed-daily", "-5"), "--fixed-daily -5: is impossible for a fixed cost in USD per day."),
        (("--quantization", "int3"), "--quantization 'int3': is not known to the sizing model"),
        (("--max-model-len", "512"), "--max-model-len 512: must hold one p95 request (800 tokens)"),
    ],
)
def test_impossible_values_are_refused_with_one_paragraph(extra: tuple[str, ...], expected: str) -> None:
    assert expected in refusal(*REC, *extra)


def test_fit_refuses_impossible_values_too() -> None:
    err = refusal(
        "fit", "--model", "phi-4", "--gpu", "Standard_NC4as_T4_v3", "--gpu-memory-utilization", "1.5"
    )
    assert "--gpu-memory-utilization 1.5: is impossible" in err
    err = refusal("fit", "--model", "phi-4", "--gpu", "T4")
    assert "--gpu 'T4': is carried by 4 VM sizes: Standard_NC4as_T4_v3 (1 × T4, $0.526/hour)" in err


def test_unknown_names_are_usage_errors() -> None:
    err = refusal("fit", "--model", "nope", "--gpu", "Standard_NC4as_T4_v3")
    assert "--model 'nope': is not in the sizing catalog" in err


def test_check_json_and_exit_code(tmp_path: Path) -> None:
    good = tmp_path / "ok.yaml"
    workspace = (
        "apiVersion: kaito.sh/v1beta1\nkind: Workspace\nmetadata: {name: p, namespace: ml}\n"
        "resource: {instanceType: Standard_NC4as_T4_v3}\ninference: {preset: {name: phi-4-mini-instruct}}\n"
    )
    good.write_text(
        workspace.replace("phi-4-mini-instruct}}", "phi-4-mini-instruct}, config: long}")
        + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: long, namespace: ml}\ndata:\n"
        "  inference_config.yaml: |\n    vllm: {max-model-len: 131072}\n"
    )
    rc, doc = run_json("check", str(good))
    # an explicit max-model-len of the model's 131072 tokens does not fit a T4's KV budget
    assert rc == 1
    kv = next(f for f in doc["findings"] if f["invariant"] == "kv-one-sequence")
    assert kv == {
        "file": "ok.yaml",
        "kind": "Workspace",
        "name": "p",
        "namespace": "ml",
        "invariant": "kv-one-sequence",
        "status": "fail",
        "ok": False,
        "message": kv["message"],
        "model": "phi-4-mini-instruct",
        "gpu": "Standard_NC4as_T4_v3",
        "numbers": kv["numbers"],
    }
    # the figures the verdict was judged on: a 131072-token sequence needs more KV cache than the budget holds
    assert kv["numbers"]["max_model_len"] == 131072
    assert 0 < kv["numbers"]["kv_token_capacity"] < 131072
    assert kv["numbers"]["kv_budget_gib"] > 0 and kv["numbers"]["vram_gib"] == 16
    good.write_text(
        workspace.replace(
            "inference: {preset: {name: phi-4-mini-instruct}}",
            "inference: {preset: {name: phi-4-mini-instruct}, config: c}",
        )
        + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: ml}\ndata:\n"
        "  inference_config.yaml: |\n    vllm: {max-model-len: 4096, max-num-seqs: 64}\n"
    )
    rc, doc = run_json("check", str(good))
    assert rc == 0
    assert doc["summary"] == {"pass": 5, "fail": 0, "warn": 1, "unknown": 0}
    rc, doc = run_json("check", str(good), "--strict")
    assert rc == 1
    assert doc["ok"] is False


def test_check_missing_path() -> None:
    rc, _, err = run("check", "/nonexistent/deploy")
    assert rc == 2
    assert "does not exist" in err


@pytest.mark.skipif(not UPSTREAM.is_dir(), reason=f"the real lab's manifests are not at {UPSTREAM}")
def test_module_entry_point_on_the_real_lab() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_aksai.sizing", "check", str(UPSTREAM), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["summary"] == {"pass": 17, "fail": 10, "warn": 4, "unknown": 0}


@pytest.mark.parametrize(
    ("argv", "change"),
    [
        # Phi-4 mini fp16 on a T4 at its 131,072-token default: the KV cache (14.4 − 7.15 − 1 GiB) holds
        # 51,239 tokens, so a shorter max-model-len is the smallest change.
        (
            ("--model", "phi-4-mini-instruct", "--gpu", "Standard_NC4as_T4_v3"),
            "--max-model-len 51239 (the KV cache holds 51239 tokens)",
        ),
        # Llama 3.3 70B on 2 × A100 80GB: bf16 65.71 GiB per GPU × 1.3 > 72; AWQ: 16.43 GiB per GPU fits.
        (
            ("--model", "llama-3.3-70b", "--gpu", "Standard_NC48ads_A100_v4"),
            "--quantization awq (int4 AWQ weights: 16.43 GiB per GPU) on Standard_NC48ads_A100_v4",
        ),
        # On 1 × A100 80GB even AWQ's KV (72 − 32.85 − 1 GiB = 124,996 tokens) is short of 131,072; the
        # cheapest larger SKU that fits at TP = its GPU count is NC96ads (4 × 80 GB at $14.692).
        (
            ("--model", "llama-3.3-70b", "--gpu", "Standard_NC24ads_A100_v4"),
            "a larger SKU: Standard_NC96ads_A100_v4 (4 × A100-80GB-PCIe, $14.692/hour)",
        ),
    ],
)
def test_fit_names_the_smallest_change_that_fits(argv: tuple[str, ...], change: str) -> None:
    rc, doc = run_json("fit", *argv)
    assert rc == 1
    assert doc["smallest_change"] == change
