"""`python -m pytest_aksai.sizing fit|recommend|check`: the sizing arithmetic for someone planning."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from pytest_aksai.sizing import _arith as A
from pytest_aksai.sizing._catalog import (
    Catalog,
    CatalogError,
    UnknownEntryError,
    default_catalog,
    load_catalog_file,
)
from pytest_aksai.sizing._fit import FitReport, ServingConfig, SettingError, evaluate, roofline_tokens_per_s
from pytest_aksai.sizing._manifests import ManifestError, analyze_objects, load_manifests

JSON_SCHEMA_VERSION = 1


class _UsageError(Exception):
    pass


def _positive_int(s: str) -> int:
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {s}")
    return v


def _fraction(s: str) -> float:
    v = float(s)
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {s}")
    return v


def _positive_float(s: str) -> float:
    v = float(s)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {s}")
    return v


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pytest_aksai.sizing",
        description="Does a model fit a GPU, what to deploy, and do manifests agree.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--json", action="store_true", help="print one JSON object (see docs/sizing.md)")
        sp.add_argument("--models-file", type=Path, help="extra catalog entries (YAML or TOML)")
        sp.add_argument(
            "--runtime-overhead-gib",
            type=float,
            default=A.DEFAULT_RUNTIME_OVERHEAD_GIB,
            help="per-GPU memory besides weights and KV cache (default %(default)s)",
        )

    fit = sub.add_parser("fit", help="memory figures and invariants for one model on one GPU SKU")
    fit.add_argument("--model", required=True, help="served name, KAITO preset or HF id")
    fit.add_argument("--gpu", required=True, help="Azure VM size, e.g. Standard_NC24ads_A100_v4")
    fit.add_argument("--dtype", default="auto")
    fit.add_argument("--max-model-len", type=_positive_int)
    fit.add_argument("--max-num-seqs", type=_positive_int)
    fit.add_argument("--gpu-memory-utilization", type=_fraction)
    fit.add_argument("--tensor-parallel-size", type=_positive_int)
    fit.add_argument("--quantization")
    fit.add_argument("--kv-cache-dtype", default="auto")
    common(fit)

    rec = sub.add_parser("recommend", help="cheapest SKU that fits, settings, replicas, cost and break-even")
    rec.add_argument("--model", required=True)
    rec.add_argument("--p95-prompt", type=_positive_int, required=True, help="p95 prompt tokens per request")
    rec.add_argument("--p95-completion", type=_positive_int, required=True, help="p95 completion tokens")
    rec.add_argument(
        "--peak-concurrency", type=_positive_int, required=True, help="concurrent requests at peak"
    )
    rec.add_argument(
        "--throughput",
        type=_positive_float,
        help="measured tokens/s (prompt + completion) of one replica; default: a roofline estimate",
    )
    rec.add_argument("--gpu", help="consider only this SKU")
    rec.add_argument("--gpu-price", type=_positive_float, help="override the SKU's $/hour")
    rec.add_argument(
        "--fixed-daily",
        type=float,
        default=A.DEFAULT_FIXED_DAILY_USD,
        help="fixed $/day of a scale-to-zero deployment, i.e. the system pool (default %(default)s)",
    )
    rec.add_argument("--api", default="gpt-4o-mini", help="API to break even against (default %(default)s)")
    rec.add_argument("--dtype", default="auto")
    rec.add_argument("--quantization")
    rec.add_argument("--kv-cache-dtype", default="auto")
    rec.add_argument("--gpu-memory-utilization", type=_fraction)
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


def _cmd_fit(a: argparse.Namespace, out: TextIO) -> int:
    cat = _catalog(a.models_file)
    model, sku = cat.model_spec(a.model), cat.gpu_sku(a.gpu)
    cfg = ServingConfig(
        dtype=a.dtype,
        max_model_len=a.max_model_len,
        max_num_seqs=a.max_num_seqs,
        gpu_memory_utilization=a.gpu_memory_utilization,
        tensor_parallel_size=a.tensor_parallel_size,
        quantization=a.quantization,
        kv_cache_dtype=a.kv_cache_dtype,
    )
    r = evaluate(model, sku, cfg, runtime_overhead_gib=a.runtime_overhead_gib)
    if a.json:
        doc = {
            "schema": JSON_SCHEMA_VERSION,
            "command": "fit",
            "inputs": {
                k: getattr(a, k)
                for k in (
                    "model",
                    "gpu",
                    "dtype",
                    "max_model_len",
                    "max_num_seqs",
                    "gpu_memory_utilization",
                    "tensor_parallel_size",
                    "quantization",
                    "kv_cache_dtype",
                    "runtime_overhead_gib",
                )
            },
            **r.as_json(),
        }
        json.dump(doc, out, indent=2)
        out.write("\n")
    else:
        _print_fit(r, out)
    return 0 if r.fits else 1


def _print_fit(r: FitReport, out: TextIO) -> None:
    out.write(f"{r.model} on {r.gpu}: {'fits' if r.fits else 'DOES NOT FIT'}\n")
    out.write(
        f"  dtype {r.dtype}, tensor-parallel-size {r.tensor_parallel_size}, max-model-len {r.max_model_len}, "
        f"max-num-seqs {r.max_num_seqs}, gpu-memory-utilization {r.gpu_memory_utilization:g}\n"
    )
    out.write(
        f"  weights {r.weights_gib:.2f} GiB ({r.weights_per_gpu_gib:.2f} GiB per GPU); usable VRAM "
        f"{r.usable_vram_gib:.2f} of {r.vram_gib:g} GiB\n"
    )
    out.write(
        f"  KV {r.kv_bytes_per_token} B/token; KV budget {r.kv_budget_gib:.2f} GiB = {r.kv_token_capacity} "
        f"tokens per GPU; {r.max_concurrent_seqs} sequences of {r.max_model_len} tokens\n"
    )
    for c in r.checks:
        out.write(f"  {c.status.upper():7} {c.invariant}: {c.message}\n")


def _cmd_recommend(a: argparse.Namespace, out: TextIO) -> int:
    cat = _catalog(a.models_file)
    model = cat.model_spec(a.model)
    api = cat.api_price(a.api)
    skus = [cat.gpu_sku(a.gpu)] if a.gpu else [s for s in cat.skus if s.price_per_hour is not None]
    price_of = {s.name: (a.gpu_price if a.gpu_price is not None else s.price_per_hour) for s in skus}
    skus.sort(key=lambda s: (price_of[s.name] is None, price_of[s.name] or 0.0, s.name))
    mml = min(A.recommended_max_model_len(a.p95_prompt, a.p95_completion), model.max_context)
    rejected: list[dict[str, Any]] = []
    for sku in skus:
        price = price_of[sku.name]
        tp = next(
            n
            for n in range(sku.gpu_count, 0, -1)
            if sku.gpu_count % n == 0 and model.attention_heads % n == 0
        )
        probe = evaluate(
            model,
            sku,
            ServingConfig(
                dtype=a.dtype,
                max_model_len=mml,
                max_num_seqs=1,
                gpu_memory_utilization=a.gpu_memory_utilization,
                tensor_parallel_size=tp,
                quantization=a.quantization,
                kv_cache_dtype=a.kv_cache_dtype,
            ),
            runtime_overhead_gib=a.runtime_overhead_gib,
        )
        if not probe.fits or probe.max_concurrent_seqs < 1:
            rejected.append(
                {"gpu": sku.name, "reason": "; ".join(c.message for c in probe.checks if c.status == "fail")}
            )
            continue
        if price is None:
            raise _UsageError(
                f"{sku.name} fits {model.name} but has no price in the catalog; pass --gpu-price"
            )
        seqs = min(A.DEFAULT_MAX_NUM_SEQS, probe.max_concurrent_seqs)
        report = evaluate(
            model,
            sku,
            ServingConfig(
                dtype=a.dtype,
                max_model_len=mml,
                max_num_seqs=seqs,
                gpu_memory_utilization=a.gpu_memory_utilization,
                tensor_parallel_size=tp,
                quantization=a.quantization,
                kv_cache_dtype=a.kv_cache_dtype,
            ),
            runtime_overhead_gib=a.runtime_overhead_gib,
        )
        return _emit_recommendation(
            a,
            out,
            cat,
            model.name,
            sku.name,
            price,
            report,
            roofline_tokens_per_s(report, model, sku, a.p95_prompt, a.p95_completion),
            api.name,
            rejected,
        )
    raise _UsageError(
        f"no SKU in the catalog fits {model.name} at max-model-len {mml}: "
        + "; ".join(f"{r['gpu']}: {r['reason']}" for r in rejected[:3])
        + ("…" if len(rejected) > 3 else "")
        + ". Try --quantization awq or a multi-GPU SKU."
    )


def _emit_recommendation(
    a: argparse.Namespace,
    out: TextIO,
    cat: Catalog,
    model: str,
    gpu: str,
    price: float,
    report: FitReport,
    estimate: float,
    api_name: str,
    rejected: list[dict[str, Any]],
) -> int:
    throughput = a.throughput if a.throughput is not None else estimate
    tokens = a.p95_prompt + a.p95_completion
    replicas = A.replicas_for(a.peak_concurrency, report.max_num_seqs)
    selfhost = A.selfhost_cost_per_token(price, throughput) * tokens
    kaito_fixed = A.kaito_fixed_daily(a.fixed_daily, price)
    against: dict[str, dict[str, Any]] = {}
    for p in cat.apis:
        cost = p.cost_per_request(a.p95_prompt, a.p95_completion)
        against[p.name] = {
            "api_cost_per_request": cost,
            "breakeven_requests_per_day": {
                "standalone": A.breakeven_requests_per_day(a.fixed_daily, cost, selfhost),
                "kaito": A.breakeven_requests_per_day(kaito_fixed, cost, selfhost),
            },
        }
    doc: dict[str, Any] = {
        "schema": JSON_SCHEMA_VERSION,
        "command": "recommend",
        "inputs": {
            k: getattr(a, k)
            for k in (
                "model",
                "p95_prompt",
                "p95_completion",
                "peak_concurrency",
                "throughput",
                "gpu",
                "gpu_price",
                "fixed_daily",
                "api",
                "dtype",
                "quantization",
                "kv_cache_dtype",
                "gpu_memory_utilization",
                "runtime_overhead_gib",
            )
        },
        "model": model,
        "gpu": gpu,
        "gpu_price_per_hour": price,
        "tensor_parallel_size": report.tensor_parallel_size,
        "max_model_len": report.max_model_len,
        "max_num_seqs": report.max_num_seqs,
        "gpu_memory_utilization": report.gpu_memory_utilization,
        "replicas": replicas,
        "cost_per_hour_peak": replicas * price,
        "throughput_tokens_per_s": throughput,
        "throughput_source": "given" if a.throughput is not None else "roofline-estimate",
        "selfhost_cost_per_request": selfhost,
        "api": api_name,
        "api_cost_per_request": against[api_name]["api_cost_per_request"],
        "breakeven_requests_per_day": against[api_name]["breakeven_requests_per_day"],
        "fixed_daily": {"standalone": a.fixed_daily, "kaito": kaito_fixed},
        "against": against,
        "rejected": rejected,
        "fit": report.as_json(),
    }
    if a.json:
        json.dump(doc, out, indent=2)
        out.write("\n")
        return 0

    def per_day(v: float | None) -> str:
        return "never (self-hosting costs more per request)" if v is None else f"{v:,.0f} requests/day"

    out.write(f"{model}: {gpu} at ${price:.3f}/hour, tensor-parallel-size {report.tensor_parallel_size}\n")
    out.write(
        f"  --max-model-len {report.max_model_len} --max-num-seqs {report.max_num_seqs}; {replicas} replica(s) "
        f"for {a.peak_concurrency} concurrent requests = ${replicas * price:.2f}/hour at peak\n"
    )
    out.write(
        f"  throughput {throughput:,.0f} tok/s ({doc['throughput_source']}); self-hosted "
        f"${selfhost:.7f}/request of {tokens} tokens\n"
    )
    for name, v in against.items():
        be = v["breakeven_requests_per_day"]
        out.write(
            f"  vs {name} (${v['api_cost_per_request']:.7f}/request): break-even "
            f"{per_day(be['standalone'])} scale-to-zero (${a.fixed_daily:.2f}/day fixed), "
            f"{per_day(be['kaito'])} with KAITO's always-on node (${kaito_fixed:.2f}/day)\n"
        )
    return 0


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
        return commands[args.command](args, out)
    except (UnknownEntryError, CatalogError, ManifestError, SettingError, _UsageError) as exc:
        err.write(f"error: {exc}\n")
        return 2
