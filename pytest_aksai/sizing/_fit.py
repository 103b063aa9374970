"""Does a vLLM configuration fit a GPU SKU? The per-workload invariants."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from pytest_aksai._errors import AksaiError
from pytest_aksai.sizing import _arith as A
from pytest_aksai.sizing._catalog import GpuSku, ModelSpec

Status = Literal["pass", "fail", "warn", "unknown"]


@dataclass(frozen=True)
class Check:
    """The outcome of one invariant: `message` quotes the numbers and, when not passing, what to change."""

    invariant: str
    status: Status
    message: str


class SettingError(AksaiError, ValueError):
    """A vLLM setting this tool cannot interpret (e.g. an unknown --quantization)."""


@dataclass(frozen=True)
class ServingConfig:
    """The vLLM engine settings that matter for memory. None means vLLM's default."""

    dtype: str = "auto"
    max_model_len: int | None = None
    max_num_seqs: int | None = None
    gpu_memory_utilization: float | None = None
    tensor_parallel_size: int | None = None
    quantization: str | None = None
    kv_cache_dtype: str = "auto"


@dataclass(frozen=True)
class FitReport:
    model: str
    gpu: str
    dtype: str
    weight_bytes_per_param: float
    kv_dtype_bytes: float
    max_model_len: int
    max_num_seqs: int
    gpu_memory_utilization: float
    tensor_parallel_size: int
    runtime_overhead_gib: float
    weights_gib: float
    weights_per_gpu_gib: float
    vram_gib: float
    usable_vram_gib: float
    kv_bytes_per_token: int
    kv_bytes_per_token_per_gpu: int
    kv_budget_gib: float
    kv_token_capacity: int
    max_concurrent_seqs: int
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def fits(self) -> bool:
        return not any(c.status == "fail" for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("checks")
        out["fits"] = self.fits
        out["checks"] = [asdict(c) for c in self.checks]
        out["violations"] = [
            {"invariant": c.invariant, "severity": c.status, "message": c.message}
            for c in self.checks
            if c.status in ("fail", "warn")
        ]
        return out


def _resolve_dtype(dtype: str, model: ModelSpec, sku: GpuSku) -> str:
    d = dtype.strip().lower()
    if d == "auto":
        # vLLM keeps the checkpoint dtype, but falls back to float16 where bfloat16 is unsupported.
        native = model.torch_dtype.lower()
        return "float16" if native == "bfloat16" and not sku.bf16 else native
    if d not in A.DTYPE_BYTES:
        raise SettingError(
            f"--dtype {dtype!r} is not one of auto, {', '.join(sorted(A.DTYPE_BYTES))}; fix the vLLM --dtype"
        )
    return d


def _weight_bytes_per_param(quantization: str | None, dtype: str) -> float:
    if quantization is None or quantization.lower() in ("", "none"):
        return A.DTYPE_BYTES[dtype]
    q = quantization.lower()
    if q not in A.WEIGHT_BYTES_PER_PARAM:
        raise SettingError(
            f"--quantization {quantization!r} is not known to the sizing model (known: "
            f"{', '.join(sorted(A.WEIGHT_BYTES_PER_PARAM))}); weights size cannot be computed"
        )
    return A.WEIGHT_BYTES_PER_PARAM[q]


def _kv_dtype_bytes(kv_cache_dtype: str, dtype: str) -> float:
    k = kv_cache_dtype.strip().lower()
    if k == "auto":
        return A.DTYPE_BYTES[dtype]
    if k not in A.KV_CACHE_DTYPE_BYTES:
        raise SettingError(
            f"--kv-cache-dtype {kv_cache_dtype!r} is not one of auto, {', '.join(sorted(A.KV_CACHE_DTYPE_BYTES))}"
        )
    return A.KV_CACHE_DTYPE_BYTES[k]


def _g(x: float) -> str:
    return f"{x / A.GIB:.2f} GiB"


def evaluate(
    model: ModelSpec,
    sku: GpuSku,
    config: ServingConfig,
    *,
    runtime_overhead_gib: float = A.DEFAULT_RUNTIME_OVERHEAD_GIB,
    default_tensor_parallel: int = 1,
) -> FitReport:
    """Compute every memory figure for `model` on `sku` and run the six per-workload invariants."""
    dtype = _resolve_dtype(config.dtype, model, sku)
    bpp = _weight_bytes_per_param(config.quantization, dtype)
    kv_b = _kv_dtype_bytes(config.kv_cache_dtype, dtype)
    util = (
        config.gpu_memory_utilization
        if config.gpu_memory_utilization is not None
        else A.DEFAULT_GPU_MEMORY_UTILIZATION
    )
    tp = config.tensor_parallel_size or default_tensor_parallel
    mml = config.max_model_len or model.max_context
    mns = config.max_num_seqs or A.DEFAULT_MAX_NUM_SEQS
    where = f"{sku.gpu_model} ({sku.vram_gib:g} GiB) on {sku.name}"

    weights = A.weights_bytes(model.parameters, bpp)
    weights_gpu = weights / tp
    vram = sku.vram_gib * A.GIB
    usable = vram * util
    overhead = runtime_overhead_gib * A.GIB
    kv_total = A.kv_bytes_per_token(model.layers, model.kv_heads, model.head_dim, kv_b)
    # Tensor parallelism shards KV heads; with fewer KV heads than ranks, heads are replicated.
    kv_gpu = int(A.kv_bytes_per_token(model.layers, math.ceil(model.kv_heads / tp), model.head_dim, kv_b))
    budget_gpu = A.kv_budget_bytes(vram, util, weights_gpu, overhead)
    capacity = int(budget_gpu // kv_gpu) if budget_gpu > 0 else 0
    seqs = capacity // mml

    checks: list[Check] = []
    need = weights_gpu * A.WEIGHT_MARGIN
    tp_note = f" per GPU at tensor-parallel-size {tp}" if tp > 1 else ""
    if need < usable:
        checks.append(
            Check(
                "weights-fit",
                "pass",
                f"weights {_g(weights_gpu)}{tp_note} × {A.WEIGHT_MARGIN} = {_g(need)} < usable "
                f"{_g(usable)} ({sku.vram_gib:g} GiB × gpu-memory-utilization {util:g}) of {where}",
            )
        )
    else:
        half = A.weights_bytes(model.parameters, 0.5) / tp * A.WEIGHT_MARGIN
        checks.append(
            Check(
                "weights-fit",
                "fail",
                f"{model.name} weights {_g(weights_gpu)}{tp_note} × {A.WEIGHT_MARGIN} = {_g(need)} do not "
                f"fit the usable {_g(usable)} ({sku.vram_gib:g} GiB × gpu-memory-utilization {util:g}) of "
                f"{where}; use a SKU with more memory per GPU, shard with --tensor-parallel-size on a "
                f"multi-GPU SKU, or quantize (int4 AWQ needs {_g(half)})",
            )
        )

    if capacity >= mml:
        checks.append(
            Check(
                "kv-one-sequence",
                "pass",
                f"KV budget {_g(budget_gpu)} per GPU holds {capacity} tokens "
                f"({kv_gpu} B/token) ≥ max-model-len {mml}",
            )
        )
    else:
        arith = (
            f"usable {_g(usable)} − weights {_g(weights_gpu)} − overhead {runtime_overhead_gib:g} GiB "
            f"= {budget_gpu / A.GIB:.2f} GiB"
        )
        if capacity == 0:
            checks.append(
                Check(
                    "kv-one-sequence",
                    "fail",
                    f"no room for a KV cache per GPU ({arith}); vLLM will refuse to start. Free memory "
                    f"first (see weights-fit): a larger GPU, quantization or tensor parallelism",
                )
            )
        else:
            checks.append(
                Check(
                    "kv-one-sequence",
                    "fail",
                    f"KV budget per GPU ({arith}) holds {capacity} tokens at {kv_gpu} B/token, less than "
                    f"one sequence of max-model-len {mml}; vLLM will refuse to start. Lower "
                    f"--max-model-len to at most {capacity}, raise --gpu-memory-utilization, use "
                    f"--kv-cache-dtype fp8, or use a larger GPU",
                )
            )

    if mns <= seqs:
        checks.append(
            Check(
                "kv-concurrency",
                "pass",
                f"max-num-seqs {mns} ≤ {seqs} sequences of {mml} tokens that the KV budget holds",
            )
        )
    else:
        fix = (
            f"Set --max-num-seqs {seqs} or lower --max-model-len"
            if seqs
            else "Not even one fits: fix kv-one-sequence first"
        )
        checks.append(
            Check(
                "kv-concurrency",
                "warn",
                f"max-num-seqs {mns} > {seqs} sequences of max-model-len {mml} that the KV budget "
                f"({capacity} tokens) holds; at full length vLLM queues or preempts the rest. {fix}",
            )
        )

    if mml <= model.max_context:
        checks.append(
            Check(
                "context-limit",
                "pass",
                f"max-model-len {mml} ≤ {model.name} context limit {model.max_context}",
            )
        )
    else:
        checks.append(
            Check(
                "context-limit",
                "fail",
                f"max-model-len {mml} > {model.name} context limit {model.max_context} "
                f"(max_position_embeddings); set --max-model-len {model.max_context} or less",
            )
        )

    explicit = config.dtype.strip().lower()
    if explicit in ("bfloat16", "bf16") and not sku.bf16:
        checks.append(
            Check(
                "dtype-supported",
                "fail",
                f"dtype bfloat16 needs compute capability ≥ 8.0; {sku.gpu_model} on {sku.name} has "
                f"{sku.compute_capability:.1f}; set --dtype float16 (or auto) or use an Ampere+ GPU",
            )
        )
    else:
        checks.append(
            Check(
                "dtype-supported",
                "pass",
                f"dtype {config.dtype} (runs as {dtype}) is supported by {sku.gpu_model} "
                f"(compute capability {sku.compute_capability:.1f})",
            )
        )

    problems = []
    if tp > sku.gpu_count or sku.gpu_count % tp:
        problems.append(f"does not divide the {sku.gpu_count} GPU(s) of {sku.name}")
    if model.attention_heads % tp:
        problems.append(f"does not divide the {model.attention_heads} attention heads of {model.name}")
    if problems:
        valid = [
            n
            for n in range(1, sku.gpu_count + 1)
            if sku.gpu_count % n == 0 and model.attention_heads % n == 0
        ]
        checks.append(
            Check(
                "tensor-parallel",
                "fail",
                f"tensor-parallel-size {tp} {' and '.join(problems)}; valid values here: "
                f"{', '.join(map(str, valid))}",
            )
        )
    else:
        checks.append(
            Check(
                "tensor-parallel",
                "pass",
                f"tensor-parallel-size {tp} divides {sku.gpu_count} GPU(s) and "
                f"{model.attention_heads} attention heads",
            )
        )

    return FitReport(
        model=model.name,
        gpu=sku.name,
        dtype=dtype,
        weight_bytes_per_param=bpp,
        kv_dtype_bytes=kv_b,
        max_model_len=mml,
        max_num_seqs=mns,
        gpu_memory_utilization=util,
        tensor_parallel_size=tp,
        runtime_overhead_gib=runtime_overhead_gib,
        weights_gib=weights / A.GIB,
        weights_per_gpu_gib=weights_gpu / A.GIB,
        vram_gib=sku.vram_gib * tp,
        usable_vram_gib=usable * tp / A.GIB,
        kv_bytes_per_token=int(kv_total),
        kv_bytes_per_token_per_gpu=int(kv_gpu),
        kv_budget_gib=max(budget_gpu, 0.0) * tp / A.GIB,
        kv_token_capacity=capacity,
        max_concurrent_seqs=seqs,
        checks=tuple(checks),
    )


MEMORY_INVARIANTS = frozenset({"weights-fit", "kv-one-sequence"})


def smallest_change(
    model: ModelSpec,
    sku: GpuSku,
    config: ServingConfig,
    report: FitReport,
    skus: Iterable[GpuSku],
    *,
    runtime_overhead_gib: float = A.DEFAULT_RUNTIME_OVERHEAD_GIB,
) -> str | None:
    """The least change that makes a configuration that runs out of memory fit, tried in this order: a
    shorter max-model-len (same GPU, same weights), int4 AWQ weights, the cheapest larger SKU with the same
    settings (its GPU count as tensor-parallel size). None when memory is not what fails, or nothing helps."""
    if not MEMORY_INVARIANTS & {c.invariant for c in report.checks if c.status == "fail"}:
        return None
    weights_fit = next(c for c in report.checks if c.invariant == "weights-fit").status == "pass"
    if weights_fit and report.kv_token_capacity >= 1:
        shorter = min(report.kv_token_capacity, model.max_context)
        return f"--max-model-len {shorter} (the KV cache holds {report.kv_token_capacity} tokens)"

    def fits(s: GpuSku, c: ServingConfig) -> FitReport | None:
        r = evaluate(
            model, s, c, runtime_overhead_gib=runtime_overhead_gib, default_tensor_parallel=s.gpu_count
        )
        return r if r.fits else None

    if config.quantization is None and (awq := fits(sku, replace(config, quantization="awq"))):
        return (
            f"--quantization awq (int4 AWQ weights: {awq.weights_per_gpu_gib:.2f} GiB per GPU) on {sku.name}"
        )
    larger = sorted(
        (s for s in skus if s.price_per_hour is not None and s.total_vram_gib > sku.total_vram_gib),
        key=lambda s: (s.price_per_hour or 0.0, s.name),
    )
    same_settings = replace(config, tensor_parallel_size=None)
    for s in larger:
        if fits(s, same_settings):
            return f"a larger SKU: {s.name} ({s.gpu_count} × {s.gpu_model}, ${s.price_per_hour:.3f}/hour)"
    return None
