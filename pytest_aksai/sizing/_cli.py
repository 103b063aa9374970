"""`python -m pytest_aksai.sizing fit|recommend|check`: the sizing arithmetic for someone planning."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pytest_aksai.sizing import _arith as A
from pytest_aksai.sizing._catalog import (
    Catalog,
    CatalogError,
    GpuSku,
    UnknownEntryError,
    default_catalog,
    load_catalog_file,
)
from pytest_aksai.sizing._fit import FitReport, ServingConfig, SettingError, evaluate, smallest_change
from pytest_aksai.sizing._manifests import ManifestError, analyze_objects, load_manifests
from pytest_aksai.sizing._recommend import (
    BreakEven,
    Choices,
    Deployment,
    Economics,
    Load,
    NothingFits,
    Outcome,
    Recommendation,
    Slo,
    breakeven_sentence,
    economics,
    recommend,
)
from pytest_aksai.sizing._resolve import RefusedInput, model_named, one_sku, skus_named

JSON_SCHEMA_VERSION = 1


class _UsageError(Exception):
    pass


@dataclass(frozen=True)
class _Bound:
    """A numeric knob's valid range, stated the way the refusal paragraph states it."""

    flag: str
    minimum: float
    inclusive: bool
    maximum: float | None
    meaning: str
    example: str

    def refuse(self, value: float) -> RefusedInput | None:
        low_ok = value >= self.minimum if self.inclusive else value > self.minimum
        if low_ok and (self.maximum is None or value <= self.maximum):
            return None
        low = f"{'≥' if self.inclusive else '>'} {self.minimum:g}"
        valid = f"{low} and ≤ {self.maximum:g}" if self.maximum is not None else low
        return RefusedInput(
            self.flag,
            f"{value:g}",
            f"is impossible for {self.meaning}",
            valid,
            f"pass e.g. {self.flag} {self.example}",
        )


_BOUNDS = {
    "runtime_overhead_gib": _Bound(
        "--runtime-overhead-gib",
        0,
        True,
        None,
        "the per-GPU memory vLLM uses besides weights and KV cache",
        "1.0",
    ),
    "max_model_len": _Bound("--max-model-len", 1, True, None, "a context length in tokens", "4096"),
    "max_num_seqs": _Bound("--max-num-seqs", 1, True, None, "the number of sequences one engine runs", "256"),
    "tensor_parallel_size": _Bound("--tensor-parallel-size", 1, True, None, "a number of GPUs", "2"),
    "gpu_memory_utilization": _Bound(
        "--gpu-memory-utilization", 0, False, 1, "the share of GPU memory vLLM may use", "0.9"
    ),
    "p95_prompt": _Bound("--p95-prompt", 1, True, None, "a prompt length in tokens", "500"),
    "p95_completion": _Bound("--p95-completion", 1, True, None, "a completion length in tokens", "300"),
    "peak_concurrency": _Bound("--peak-concurrency", 1, True, None, "a number of concurrent requests", "200"),
    "throughput": _Bound("--throughput", 0, False, None, "tokens per second of one replica", "3000"),
    "gpu_price": _Bound("--gpu-price", 0, False, None, "a VM price in USD per hour", "3.67"),
    "spot_price": _Bound("--spot-price", 0, False, None, "a spot VM price in USD per hour", "1.10"),
    "fixed_daily": _Bound("--fixed-daily", 0, True, None, "a fixed cost in USD per day", "8.88"),
    "ttft_p95_ms": _Bound("--ttft-p95-ms", 0, False, None, "a latency objective in milliseconds", "1000"),
    "itl_p95_ms": _Bound("--itl-p95-ms", 0, False, None, "a latency objective in milliseconds", "100"),
}


def _check_bounds(a: argparse.Namespace) -> None:
    for dest, bound in _BOUNDS.items():
        value = getattr(a, dest, None)
        if value is not None and (refusal := bound.refuse(value)) is not None:
            raise refusal


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pytest_aksai.sizing",
        description="Does a model fit a GPU, what to deploy, and do manifests agree.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--json", action="store_true", help="print one JSON object (see docs/explanation/sizing.md)"
        )
        sp.add_argument("--models-file", type=Path, help="extra catalog entries (YAML or TOML)")
        sp.add_argument(
            "--runtime-overhead-gib",
            type=float,
            default=A.DEFAULT_RUNTIME_OVERHEAD_GIB,
            help="per-GPU memory besides weights and KV cache (default %(default)s)",
        )

    fit = sub.add_parser("fit", help="memory figures and invariants for one model on one GPU SKU")
    fit.add_argument("--model", required=True, help="served name, KAITO preset or HF id")
    fit.add_argument(
        "--gpu", required=True, help="Azure VM size (Standard_NC24ads_A100_v4) or a GPU carried by one size"
    )
    fit.add_argument("--dtype", default="auto")
    fit.add_argument("--max-model-len", type=int)
    fit.add_argument("--max-num-seqs", type=int)
    fit.add_argument("--gpu-memory-utilization", type=float)
    fit.add_argument(
        "--tensor-parallel-size", type=int, help="default: the SKU's GPU count, as KAITO sets it"
    )
    fit.add_argument("--quantization")
    fit.add_argument("--kv-cache-dtype", default="auto")
    common(fit)

    rec = sub.add_parser(
        "recommend", help="cheapest deployment that holds the load: SKU, settings, replicas, cost, break-even"
    )
    rec.add_argument("--model", required=True)
    rec.add_argument("--p95-prompt", type=int, required=True, help="p95 prompt tokens per request")
    rec.add_argument("--p95-completion", type=int, required=True, help="p95 completion tokens")
    rec.add_argument("--peak-concurrency", type=int, required=True, help="concurrent requests at peak")
    rec.add_argument("--ttft-p95-ms", type=float, help="time-to-first-token objective at p95")
    rec.add_argument("--itl-p95-ms", type=float, help="inter-token latency objective at p95")
    rec.add_argument(
        "--throughput",
        type=float,
        help="measured tokens/s (prompt + completion) of one replica; default: the roofline prediction",
    )
    rec.add_argument(
        "--gpu", action="append", help="consider only these SKUs (a VM size or a GPU model; repeatable)"
    )
    rec.add_argument("--gpu-price", type=float, help="$/hour of the one SKU given with --gpu")
    rec.add_argument("--spot", action="store_true", help="allow spot VMs where a spot price is known")
    rec.add_argument("--spot-price", type=float, help="spot $/hour of the one SKU given with --gpu")
    rec.add_argument(
        "--fixed-daily",
        type=float,
        default=A.DEFAULT_FIXED_DAILY_USD,
        help="fixed $/day of a scale-to-zero deployment, i.e. the system pool (default %(default)s)",
    )
    rec.add_argument("--api", default="gpt-4o-mini", help="API to break even against (default %(default)s)")
    rec.add_argument("--dtype", default="auto")
    rec.add_argument(
        "--quantization",
        help="quantizations allowed, comma-separated, `none` = the published weights (default none)",
    )
    rec.add_argument("--kv-cache-dtype", default="auto")
    rec.add_argument("--gpu-memory-utilization", type=float)
    rec.add_argument(
        "--max-model-len", type=int, help="default: 2 × p95(prompt + completion), a power of two"
    )
    rec.add_argument(
        "--max-num-seqs",
        type=int,
        default=A.DEFAULT_MAX_NUM_SEQS,
        help="the most sequences one engine may run (default vLLM's %(default)s)",
    )
    common(rec)

    chk = sub.add_parser("check", help="the static sizing invariants over manifests")
    chk.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="YAML files or folders")
    chk.add_argument(
        "--strict", action="store_true", help="warnings and unknown models/SKUs count as failures"
    )
    common(chk)
    return p


def _catalog(models_file: Path | None) -> Catalog:
    cat = default_catalog()
    if models_file is not None:
        skus, models, apis = load_catalog_file(models_file)
        cat = cat.extended(skus=skus, models=models, apis=apis)
    return cat


def _inputs(a: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(a).items() if k not in ("command", "json", "models_file")}


def _cmd_fit(a: argparse.Namespace, out: TextIO) -> int:
    cat = _catalog(a.models_file)
    model, sku = model_named(cat, a.model), one_sku(cat, a.gpu)
    if sku.gpu_count < 1:
        raise RefusedInput(
            "--gpu",
            sku.name,
            "has no GPU, so no model can be served on it with vLLM's GPU backend",
            "a VM size with GPUs, e.g. Standard_NC24ads_A100_v4, or a GPU model such as A100 or T4",
            "pass a GPU VM size",
        )
    cfg = ServingConfig(
        dtype=a.dtype,
        max_model_len=a.max_model_len,
        max_num_seqs=a.max_num_seqs,
        gpu_memory_utilization=a.gpu_memory_utilization,
        tensor_parallel_size=a.tensor_parallel_size,
        quantization=a.quantization,
        kv_cache_dtype=a.kv_cache_dtype,
    )
    r = evaluate(
        model, sku, cfg, runtime_overhead_gib=a.runtime_overhead_gib, default_tensor_parallel=sku.gpu_count
    )
    tp_source = "given" if a.tensor_parallel_size else "default: the SKU's GPU count, as KAITO sets it"
    change = smallest_change(model, sku, cfg, r, cat.skus, runtime_overhead_gib=a.runtime_overhead_gib)
    if a.json:
        doc = {
            "schema": JSON_SCHEMA_VERSION,
            "command": "fit",
            "inputs": _inputs(a),
            **r.as_json(),
            "tensor_parallel_source": tp_source,
            "smallest_change": change,
        }
        json.dump(doc, out, indent=2)
        out.write("\n")
    else:
        _print_fit(r, tp_source, out)
        if change:
            out.write(f"  smallest change that fits: {change}\n")
    return 0 if r.fits else 1


def _print_fit(r: FitReport, tp_source: str, out: TextIO) -> None:
    tp = r.tensor_parallel_size
    out.write(f"{r.model} on {r.gpu}: {'fits' if r.fits else 'DOES NOT FIT'}\n")
    out.write(
        f"  dtype {r.dtype}, tensor-parallel-size {tp} ({tp_source}), max-model-len {r.max_model_len}, "
        f"max-num-seqs {r.max_num_seqs}, gpu-memory-utilization {r.gpu_memory_utilization:g}\n"
    )
    out.write(
        f"  per GPU: weights {r.weights_per_gpu_gib:.2f} GiB, usable VRAM {r.usable_vram_gib / tp:.2f} of "
        f"{r.vram_gib / tp:g} GiB, KV budget {r.kv_budget_gib / tp:.2f} GiB, KV {r.kv_bytes_per_token_per_gpu} "
        f"B/token\n"
    )
    out.write(
        f"  whole model over {tp} GPU(s): weights {r.weights_gib:.2f} GiB, usable VRAM {r.usable_vram_gib:.2f} of "
        f"{r.vram_gib:g} GiB, KV budget {r.kv_budget_gib:.2f} GiB, KV {r.kv_bytes_per_token} B/token\n"
    )
    out.write(
        f"  the KV cache holds {r.kv_token_capacity} tokens = {r.max_concurrent_seqs} sequences of "
        f"{r.max_model_len} tokens\n"
    )
    for c in r.checks:
        out.write(f"  {c.status.upper():7} {c.invariant}: {c.message}\n")


def _quantizations(text: str | None) -> tuple[str | None, ...]:
    if text is None:
        return (None,)
    out: list[str | None] = []
    for q in (part.strip().lower() for part in text.split(",")):
        if q in ("", "none"):
            out.append(None)
        elif q in A.WEIGHT_BYTES_PER_PARAM:
            out.append(q)
        else:
            raise RefusedInput(
                "--quantization",
                repr(q),
                "is not known to the sizing model, so the weights' size cannot be computed",
                f"none, {', '.join(sorted(A.WEIGHT_BYTES_PER_PARAM))} (comma-separated to allow several)",
                "pass e.g. --quantization none,awq",
            )
    return tuple(dict.fromkeys(out))


def _candidate_skus(cat: Catalog, a: argparse.Namespace) -> list[GpuSku]:
    if not a.gpu:
        skus = [s for s in cat.skus if s.gpu_count > 0]  # the catalog may hold CPU-only sizes too
    else:
        skus = list(dict.fromkeys(s for typed in a.gpu for s in skus_named(cat, typed)))
    for flag, value in (("--gpu-price", a.gpu_price), ("--spot-price", a.spot_price)):
        if value is not None and len(skus) != 1:
            given = "no --gpu" if not a.gpu else f"--gpu {' --gpu '.join(a.gpu)} ({len(skus)} VM sizes)"
            raise RefusedInput(
                flag,
                f"{value:g}",
                f"is the price of one VM size, but {given} was given, so it would replace the price of every "
                "SKU and the ranking would mean nothing",
                "a positive USD/hour together with exactly one --gpu VM size",
                f"add --gpu with one VM size (e.g. --gpu Standard_NC24ads_A100_v4 {flag} {value:g}), or drop "
                f"{flag} and change prices in the catalog with --models-file",
            )
    return skus


def _cmd_recommend(a: argparse.Namespace, out: TextIO) -> int:
    cat = _catalog(a.models_file)
    model = model_named(cat, a.model)
    api = cat.api_price(a.api)
    load = Load(a.p95_prompt, a.p95_completion, a.peak_concurrency)
    slo = Slo(
        ttft_p95_s=None if a.ttft_p95_ms is None else a.ttft_p95_ms / 1e3,
        itl_p95_s=None if a.itl_p95_ms is None else a.itl_p95_ms / 1e3,
    )
    choices = Choices(
        quantizations=_quantizations(a.quantization),
        allow_spot=a.spot or a.spot_price is not None,
        dtype=a.dtype,
        kv_cache_dtype=a.kv_cache_dtype,
        gpu_memory_utilization=a.gpu_memory_utilization,
        max_model_len=a.max_model_len,
        max_num_seqs_limit=a.max_num_seqs,
        runtime_overhead_gib=a.runtime_overhead_gib,
        price_per_hour=a.gpu_price,
        spot_price_per_hour=a.spot_price,
    )
    rec = recommend(model, _candidate_skus(cat, a), load, slo, choices)
    money = economics(rec.best, load, cat.apis, fixed_daily=a.fixed_daily, tokens_per_s=a.throughput)
    chosen = next(b for b in money.against if b.api.name == api.name)
    doc = _recommendation_json(a, rec, money, chosen)
    if a.json:
        json.dump(doc, out, indent=2)
        out.write("\n")
    else:
        _print_recommendation(rec, money, out)
    return 0


def _outcome_json(o: Outcome) -> dict[str, Any]:
    d = o.deployment
    return {
        "gpu": o.sku.name,
        "verdict": o.verdict,
        "reason": o.reason,
        "replicas": None if d is None else d.replicas,
        "cost_per_hour_peak": None if d is None else d.cost_per_hour_peak,
    }


def _recommendation_json(
    a: argparse.Namespace, rec: Recommendation, money: Economics, chosen: BreakEven
) -> dict[str, Any]:
    best = rec.best
    p = best.prediction
    return {
        "schema": JSON_SCHEMA_VERSION,
        "command": "recommend",
        "inputs": _inputs(a),
        "model": rec.model.name,
        "gpu": best.sku.name,
        "gpu_price_per_hour": best.price_per_hour,
        "capacity_type": best.capacity_type,
        "quantization": best.quantization,
        "tensor_parallel_size": best.tensor_parallel_size,
        "data_parallel_size": best.data_parallel_size,
        "max_model_len": best.max_model_len,
        "max_num_seqs": best.max_num_seqs,
        "kv_sequences": best.kv_sequences,
        "gpu_memory_utilization": best.fit.gpu_memory_utilization,
        "replicas": best.replicas,
        "sequences_per_replica": best.sequences_per_replica,
        "batch_at_peak": best.batch_at_peak,
        "cost_per_hour_peak": best.cost_per_hour_peak,
        "prediction": {
            "basis": "roofline estimate (the simulated model server's latency model), not a measurement",
            "batch": p.batch,
            "ttft_p95_ms": p.ttft_p95_s * 1e3,
            "itl_p95_ms": p.itl_p95_s * 1e3,
            "tokens_per_s_per_replica": best.predicted_tokens_per_s,
            "output_tokens_per_s_per_replica": best.data_parallel_size * p.output_tokens_per_s,
        },
        "slo": {"ttft_p95_ms": a.ttft_p95_ms, "itl_p95_ms": a.itl_p95_ms},
        "throughput_tokens_per_s": money.tokens_per_s,
        "throughput_source": money.throughput_source,
        "selfhost_cost_per_request": chosen.selfhost_cost_per_request,
        "api": chosen.api.name,
        "api_cost_per_request": chosen.api_cost_per_request,
        "breakeven_requests_per_day": {
            "standalone": chosen.standalone_requests_per_day,
            "kaito": chosen.kaito_requests_per_day,
        },
        "breakeven": breakeven_sentence(chosen, best.sku.name),
        "fixed_daily": {
            "standalone": money.idle_cost_per_day_standalone,
            "kaito": money.idle_cost_per_day_kaito,
        },
        "idle_cost_per_day": {
            "standalone": money.idle_cost_per_day_standalone,
            "kaito": money.idle_cost_per_day_kaito,
        },
        "against": {
            b.api.name: {
                "api_cost_per_request": b.api_cost_per_request,
                "breakeven_requests_per_day": {
                    "standalone": b.standalone_requests_per_day,
                    "kaito": b.kaito_requests_per_day,
                },
                "breakeven": breakeven_sentence(b, best.sku.name),
            }
            for b in money.against
        },
        "alternatives": [_outcome_json(o) for o in rec.alternatives],
        "options": [_outcome_json(o) for o in rec.outcomes],
        "rejected": [{"gpu": o.sku.name, "reason": o.reason} for o in rec.outcomes if o.deployment is None],
        "fit": best.fit.as_json(),
    }


def _vllm_flags(d: Deployment) -> str:
    flags = [
        f"--max-model-len {d.max_model_len}",
        f"--max-num-seqs {d.max_num_seqs}",
        f"--tensor-parallel-size {d.tensor_parallel_size}",
    ]
    if d.data_parallel_size > 1:
        flags.append(f"--data-parallel-size {d.data_parallel_size}")
    if d.quantization:
        flags.append(f"--quantization {d.quantization}")
    return " ".join(flags)


def _print_recommendation(rec: Recommendation, money: Economics, out: TextIO) -> None:
    d, load, p = rec.best, rec.load, rec.best.prediction
    sku = d.sku
    out.write(
        f"{rec.model.name} for {load.peak_concurrency} concurrent requests of {load.prompt_tokens} + "
        f"{load.completion_tokens} tokens (p95):\n"
    )
    out.write(
        f"  recommended: {d.replicas} × {sku.name} ({sku.gpu_count} × {sku.gpu_model}, {d.capacity_type}) at "
        f"${d.price_per_hour:.3f}/hour = ${d.cost_per_hour_peak:.2f}/hour at peak\n"
    )
    out.write(
        f"  vLLM: {_vllm_flags(d)}; the KV cache of each engine holds {d.kv_sequences} sequences of "
        f"{d.max_model_len} tokens, so one replica takes {d.sequences_per_replica} concurrent requests\n"
    )
    out.write(
        f"  predicted at {p.batch} sequences per engine (an estimate from the roofline the simulated model "
        f"server uses, not a measurement): TTFT p95 {p.ttft_p95_s * 1e3:.0f} ms, ITL p95 "
        f"{p.itl_p95_s * 1e3:.0f} ms, {d.predicted_tokens_per_s:,.0f} tokens/s per replica\n"
    )
    if money.throughput_source == "given":
        out.write(
            f"  cost per request from the given throughput: {money.tokens_per_s:,.0f} tokens/s per replica\n"
        )
    out.write(
        f"  idle cost per day: ${money.idle_cost_per_day_standalone:.2f} with vLLM scaled to zero (system pool "
        f"only), ${money.idle_cost_per_day_kaito:.2f} with KAITO's always-on node\n"
    )
    for b in money.against:
        out.write(f"  {breakeven_sentence(b, sku.name)}\n")
    if rec.alternatives:
        out.write("  next alternatives:\n")
        for o in rec.alternatives:
            out.write(f"    {o.sku.name}: {o.reason}\n")


def _cmd_check(a: argparse.Namespace, out: TextIO) -> int:
    cat = _catalog(a.models_file)
    for p in a.paths:
        if not p.exists():
            raise _UsageError(f"check: PATH {str(p)!r} does not exist; give YAML files or folders of YAML")
    objs = load_manifests(a.paths)
    findings = analyze_objects(objs, cat, runtime_overhead_gib=a.runtime_overhead_gib)
    bad = {"fail", "warn", "unknown"} if a.strict else {"fail"}
    failed = sum(f.status in bad for f in findings)
    if a.json:
        json.dump(
            {
                "schema": JSON_SCHEMA_VERSION,
                "command": "check",
                "inputs": {"paths": [str(p) for p in a.paths], "strict": a.strict},
                "findings": [f.as_json() for f in findings],
                "summary": {
                    s: sum(f.status == s for f in findings) for s in ("pass", "fail", "warn", "unknown")
                },
                "ok": failed == 0,
            },
            out,
            indent=2,
        )
        out.write("\n")
    else:
        for f in findings:
            out.write(f"{f.status.upper():7} {f.test_id}\n        {f.message}\n")
        counts = ", ".join(
            f"{sum(f.status == s for f in findings)} {s}" for s in ("pass", "fail", "warn", "unknown")
        )
        out.write(f"{len(findings)} findings: {counts}\n")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parser().parse_args(argv)
    commands = {"fit": _cmd_fit, "recommend": _cmd_recommend, "check": _cmd_check}
    try:
        _check_bounds(args)
        return commands[args.command](args, out)
    except (
        UnknownEntryError,
        CatalogError,
        ManifestError,
        SettingError,
        RefusedInput,
        NothingFits,
        _UsageError,
    ) as exc:
        err.write(f"error: {exc}\n")
        return 2
