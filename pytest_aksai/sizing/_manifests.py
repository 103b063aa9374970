"""Static analysis of Kubernetes objects: KAITO Workspaces, vLLM workloads, KEDA scalers, NodePools."""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pytest_aksai._errors import AksaiError
from pytest_aksai._public import public
from pytest_aksai.sizing import _arith as A
from pytest_aksai.sizing._catalog import Catalog, GpuSku, ModelSpec, UnknownEntryError, default_catalog
from pytest_aksai.sizing._fit import FitReport, ServingConfig, SettingError, Status, evaluate

Obj = Mapping[str, Any]
INSTANCE_TYPE_LABELS = (
    "node.kubernetes.io/instance-type",
    "beta.kubernetes.io/instance-type",
    "karpenter.azure.com/sku-name",
)
GPU_RESOURCE = "nvidia.com/gpu"


@public
@dataclass(frozen=True)
class Finding:
    """One (object, invariant) outcome. `source` is a file path relative to the analysed root, or e.g. `cluster`."""

    source: str
    kind: str
    name: str
    namespace: str | None
    invariant: str
    status: Status
    message: str
    fit: FitReport | None = field(default=None, compare=False)
    """The memory figures a workload's invariant was judged on (None for NodePool and scaler invariants)."""

    @property
    def ok(self) -> bool:
        return self.status != "fail"

    @property
    def test_id(self) -> str:
        return f"{self.source}::{self.kind}/{self.name}::{self.invariant}"

    @property
    def numbers(self) -> dict[str, float]:
        """The figures behind the verdict (VRAM, KV budget and capacity, concurrency), for reports."""
        if self.fit is None:
            return {}
        f = self.fit
        return {
            "weights_per_gpu_gib": round(f.weights_per_gpu_gib, 3),
            "vram_gib": f.vram_gib,
            "usable_vram_gib": round(f.usable_vram_gib, 3),
            "kv_budget_gib": round(f.kv_budget_gib, 3),
            "kv_bytes_per_token": f.kv_bytes_per_token_per_gpu,
            "kv_token_capacity": f.kv_token_capacity,
            "max_model_len": f.max_model_len,
            "max_num_seqs": f.max_num_seqs,
            "max_concurrent_seqs": f.max_concurrent_seqs,
            "gpu_memory_utilization": f.gpu_memory_utilization,
            "tensor_parallel_size": f.tensor_parallel_size,
        }

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        del out["fit"]
        out["file"] = out.pop("source")
        out["ok"] = self.ok
        if self.fit is not None:
            out["model"], out["gpu"], out["numbers"] = self.fit.model, self.fit.gpu, self.numbers
        return out


class ManifestError(AksaiError, ValueError):
    """A manifest file that cannot be read or parsed."""

    location: str = ""
    """`path:line` of invalid YAML."""
    problem: str = ""


def load_manifests(paths: Iterable[Path], root: Path | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Every object in the YAML files (multi-document; folders searched recursively), with its source path."""
    out: list[tuple[str, dict[str, Any]]] = []
    for path in paths:
        files = (
            sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
            if path.is_dir()
            else [path]
        )
        base = root or (path if path.is_dir() else path.parent)
        for f in files:
            try:
                docs = list(yaml.safe_load_all(f.read_text(encoding="utf-8")))
            except OSError as exc:
                raise ManifestError(f"manifest {f} cannot be read: {exc.strerror}") from None
            except yaml.MarkedYAMLError as exc:
                mark = exc.context_mark or exc.problem_mark
                at = f":{mark.line + 1}" if mark is not None else ""
                error = ManifestError(f"manifest {f} is not valid YAML (at {f.name}{at}): {exc.problem}")
                error.location, error.problem = f"{f}{at}", str(exc.problem)
                raise error from None
            except yaml.YAMLError as exc:
                raise ManifestError(f"manifest {f} is not valid YAML: {exc}") from None
            try:
                rel = f.relative_to(base).as_posix()
            except ValueError:
                rel = f.as_posix()
            for doc in docs:
                for obj in _flatten(doc):
                    out.append((rel, obj))
    return out


def _flatten(doc: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(doc, dict) or "kind" not in doc:
        return
    if doc["kind"] == "List" or (str(doc["kind"]).endswith("List") and isinstance(doc.get("items"), list)):
        for item in doc.get("items") or []:
            yield from _flatten(item)
    else:
        yield doc


def _group(obj: Obj) -> str:
    return str(obj.get("apiVersion", "")).split("/")[0] if "/" in str(obj.get("apiVersion", "")) else ""


def _meta(obj: Obj) -> tuple[str, str | None]:
    meta = obj.get("metadata") or {}
    return str(meta.get("name", "")), meta.get("namespace")


# --- workloads ------------------------------------------------------------------------------------------


@dataclass
class _Workload:
    source: str
    kind: str  # the object as written: Workspace, Deployment, StatefulSet
    name: str
    namespace: str | None
    runs_as: str  # the kind of the object that owns the pods (KAITO Workspace → StatefulSet)
    model_ref: str | None
    sku_name: str | None
    gpus_per_replica: int
    config: ServingConfig = field(default_factory=ServingConfig)
    config_error: str | None = None
    default_tp: int = 1
    probed_max_model_len: bool = False
    """A KAITO Workspace whose config sets no max-model-len: KAITO passes `auto` and vLLM takes the longest
    context that fits the KV cache, so the model's full context is not what runs."""

    def finding(self, invariant: str, status: Status, message: str, fit: FitReport | None = None) -> Finding:
        return Finding(self.source, self.kind, self.name, self.namespace, invariant, status, message, fit)


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


def _serving_config(flags: Mapping[str, Any]) -> ServingConfig:
    def get(*names: str) -> Any:
        for n in names:
            if n in flags:
                return flags[n]
        return None

    return ServingConfig(
        dtype=str(get("dtype") or "auto"),
        max_model_len=_int(get("max-model-len", "max_model_len")),
        max_num_seqs=_int(get("max-num-seqs", "max_num_seqs")),
        gpu_memory_utilization=_float(get("gpu-memory-utilization", "gpu_memory_utilization")),
        tensor_parallel_size=_int(get("tensor-parallel-size", "tensor_parallel_size", "tp")),
        quantization=(None if get("quantization") is None else str(get("quantization"))),
        kv_cache_dtype=str(get("kv-cache-dtype", "kv_cache_dtype") or "auto"),
    )


def _parse_vllm_args(argv: Sequence[str]) -> tuple[str | None, dict[str, str]]:
    """The model and the `--flag value` / `--flag=value` pairs of a vLLM command line."""
    flags: dict[str, str] = {}
    model: str | None = None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--"):
            key, eq, val = a[2:].partition("=")
            if not eq:
                nxt = argv[i + 1] if i + 1 < len(argv) else None
                if nxt is not None and not nxt.startswith("--"):
                    val = nxt
                    i += 1
                else:
                    val = "true"
            flags[key.replace("_", "-")] = val
        elif a == "serve" and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            model = argv[i + 1]
            i += 1
        i += 1
    return flags.get("model", model), flags


def _container_argv(c: Obj) -> list[str]:
    argv: list[str] = []
    for part in (c.get("command") or []) + (c.get("args") or []):
        s = str(part)
        # `sh -c "vllm serve ..."`: split the script so its flags are seen.
        argv.extend(shlex.split(s) if " " in s.strip() else [s])
    return argv


def _is_vllm(c: Obj, argv: Sequence[str]) -> bool:
    image = str(c.get("image", "")).lower()
    joined = " ".join(argv)
    return "vllm" in image or "vllm serve" in joined or "vllm.entrypoints" in joined


def _pinned_sku(pod_spec: Obj) -> str | None:
    selector = pod_spec.get("nodeSelector") or {}
    for label in INSTANCE_TYPE_LABELS:
        if label in selector:
            return str(selector[label])
    terms = (
        ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        or {}
    ).get("nodeSelectorTerms") or []
    for term in terms:
        for expr in term.get("matchExpressions") or []:
            if (
                expr.get("key") in INSTANCE_TYPE_LABELS
                and expr.get("operator") == "In"
                and len(expr.get("values") or []) == 1
            ):
                return str(expr["values"][0])
    return None


def _gpu_request(c: Obj) -> int:
    res = c.get("resources") or {}
    for part in ("limits", "requests"):
        v = (res.get(part) or {}).get(GPU_RESOURCE)
        if v is not None:
            return int(v)
    return 0


def _vllm_workload(source: str, obj: Obj) -> _Workload | None:
    name, ns = _meta(obj)
    pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    for c in pod.get("containers") or []:
        argv = _container_argv(c)
        if not _is_vllm(c, argv):
            continue
        model, flags = _parse_vllm_args(argv)
        w = _Workload(
            source, str(obj["kind"]), name, ns, str(obj["kind"]), model, _pinned_sku(pod), _gpu_request(c)
        )
        try:
            w.config = _serving_config(flags)
        except ValueError as exc:
            w.config_error = f"a vLLM flag has a bad value: {exc}"
        return w
    return None


def _gpu_workload(source: str, obj: Obj) -> _Workload:
    """A non-vLLM Deployment/StatefulSet still counts for KEDA targets and GPU limits."""
    name, ns = _meta(obj)
    pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    gpus = sum(_gpu_request(c) for c in pod.get("containers") or [])
    return _Workload(source, str(obj["kind"]), name, ns, str(obj["kind"]), None, _pinned_sku(pod), gpus)


def _workspace(source: str, obj: Obj, configmaps: Mapping[tuple[str | None, str], Obj]) -> _Workload:
    name, ns = _meta(obj)
    resource = obj.get("resource") or {}
    inference = obj.get("inference") or {}
    preset = (inference.get("preset") or {}).get("name")
    w = _Workload(source, "Workspace", name, ns, "StatefulSet", preset, resource.get("instanceType"), 0)
    cm_name = inference.get("config")
    if cm_name:
        cm = configmaps.get((ns, cm_name))
        if cm is None:
            w.config_error = (
                f"inference.config names ConfigMap {cm_name!r}, which is not in the analysed "
                f"manifests; its vLLM settings are unknown"
            )
        else:
            text = (cm.get("data") or {}).get("inference_config.yaml")
            try:
                parsed = yaml.safe_load(text) if text else {}
                vllm = (parsed or {}).get("vllm") or {}
                w.config = _serving_config(vllm)
            except (yaml.YAMLError, ValueError, AttributeError) as exc:
                w.config_error = f"ConfigMap {cm_name} inference_config.yaml cannot be read: {exc}"
    if w.config.max_model_len is None:
        observed = ((obj.get("metadata") or {}).get("annotations") or {}).get(OBSERVED_MAX_MODEL_LEN)
        if observed and str(observed).isdigit():
            w.config = dataclasses.replace(w.config, max_model_len=int(observed))
        else:
            w.probed_max_model_len = True
    return w


OBSERVED_MAX_MODEL_LEN = "aksai.dev/observed-max-model-len"
"""Set (in memory, never on the cluster) on a Workspace whose running engine reported its `max_model_len`
(`/v1/models`): what KAITO's probe settled on, judged instead of the model's full context."""


# --- NodePools ------------------------------------------------------------------------------------------


def _sku_labels(s: GpuSku) -> dict[str, str]:
    return {
        "karpenter.azure.com/sku-name": s.name,
        "node.kubernetes.io/instance-type": s.name,
        "karpenter.azure.com/sku-family": s.sku_family,
        "karpenter.azure.com/sku-gpu-count": str(s.gpu_count),
        "karpenter.azure.com/sku-gpu-name": s.gpu_model.split("-")[0],
        "karpenter.azure.com/sku-cpu": str(s.vcpu),
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
    }


def _requirement_matches(req: Obj, labels: Mapping[str, str]) -> bool:
    key, op = str(req.get("key")), str(req.get("operator"))
    values = [str(v) for v in req.get("values") or []]
    if key not in labels:
        return True  # a label this catalog does not model (capacity type, zone, …) does not exclude a SKU
    v = labels[key]
    if op == "In":
        return v in values
    if op == "NotIn":
        return v not in values
    if op == "Exists":
        return True
    if op == "DoesNotExist":
        return False
    if op in ("Gt", "Lt") and values:
        try:
            return int(v) > int(values[0]) if op == "Gt" else int(v) < int(values[0])
        except ValueError:
            return False
    return True


@dataclass
class _Pool:
    source: str
    name: str
    requirements: list[Obj]
    gpu_limit: int | None
    matching: list[GpuSku]
    unknown_names: list[str]

    def finding(self, invariant: str, status: Status, message: str) -> Finding:
        return Finding(self.source, "NodePool", self.name, None, invariant, status, message)


def _is_gpu_pool(obj: Obj, catalog: Catalog) -> bool:
    tmpl = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    if GPU_RESOURCE in ((obj.get("spec") or {}).get("limits") or {}):
        return True
    if any(t.get("key") == GPU_RESOURCE for t in tmpl.get("taints") or []):
        return True
    known = {s.name.lower() for s in catalog.skus}
    for r in tmpl.get("requirements") or []:
        if str(r.get("key", "")).startswith("karpenter.azure.com/sku-gpu"):
            return True
        if r.get("key") in INSTANCE_TYPE_LABELS and any(
            str(v).lower() in known for v in r.get("values") or []
        ):
            return True
    return False


def _pool(source: str, obj: Obj, catalog: Catalog) -> _Pool:
    name, _ = _meta(obj)
    spec = obj.get("spec") or {}
    reqs = list((((spec.get("template") or {}).get("spec") or {}).get("requirements")) or [])
    limit = (spec.get("limits") or {}).get(GPU_RESOURCE)
    matching = [s for s in catalog.skus if all(_requirement_matches(r, _sku_labels(s)) for r in reqs)]
    known = {s.name.lower() for s in catalog.skus}
    unknown = [
        str(v)
        for r in reqs
        if r.get("key") in INSTANCE_TYPE_LABELS and r.get("operator") == "In"
        for v in r.get("values") or []
        if str(v).lower() not in known
    ]
    return _Pool(source, name, reqs, None if limit is None else int(str(limit)), matching, unknown)


def _pool_checks(p: _Pool, catalog: Catalog) -> Iterator[Finding]:
    if p.matching:
        names = ", ".join(s.name for s in p.matching)
        note = (
            f" (names not in the catalog, not checked: {', '.join(p.unknown_names)})"
            if p.unknown_names
            else ""
        )
        yield p.finding(
            "nodepool-sku-match",
            "pass",
            f"requirements match {len(p.matching)} known GPU SKU(s): {names}{note}",
        )
        return
    if p.unknown_names:
        yield p.finding(
            "nodepool-sku-match",
            "unknown",
            f"requirements match no catalog SKU and name SKUs the catalog does not know "
            f"({', '.join(p.unknown_names)}); add them to the sizing catalog to check this NodePool",
        )
        return
    culprits = []
    for r in p.requirements:
        hits = [s for s in catalog.skus if _requirement_matches(r, _sku_labels(s))]
        if not hits:
            vals = r.get("values") or []
            hint = ""
            if r.get("key") == "karpenter.azure.com/sku-family":
                hint = (
                    " (NAP labels karpenter.azure.com/sku-family with the family letter only, e.g. N for "
                    "every N-series GPU size; use values [N] or drop this requirement and keep sku-name)"
                )
            culprits.append(f"{r.get('key')} {r.get('operator')} {list(vals)} matches no GPU SKU{hint}")
    detail = (
        "; ".join(culprits) if culprits else "no single requirement excludes all SKUs, but together they do"
    )
    yield p.finding(
        "nodepool-sku-match",
        "fail",
        f"the requirements can match no GPU SKU, so NAP can provision nothing from this NodePool: {detail}",
    )


# --- the analysis -------------------------------------------------------------------------------------


def _resolve(w: _Workload, catalog: Catalog) -> tuple[ModelSpec | None, GpuSku | None, list[str]]:
    problems = []
    model = sku = None
    if w.model_ref is None:
        problems.append("no model is named (vLLM --model or Workspace inference.preset.name)")
    else:
        try:
            model = catalog.model_spec(w.model_ref)
        except UnknownEntryError as exc:
            problems.append(str(exc))
    if w.sku_name is not None:
        try:
            sku = catalog.gpu_sku(w.sku_name)
        except UnknownEntryError as exc:
            problems.append(str(exc))
    return model, sku, problems


def analyze_objects(
    objs: Iterable[tuple[str, Mapping[str, Any]]],
    catalog: Catalog | None = None,
    *,
    runtime_overhead_gib: float = A.DEFAULT_RUNTIME_OVERHEAD_GIB,
) -> list[Finding]:
    """Run every sizing invariant over parsed Kubernetes objects, each given with its source.

    Objects of kinds the analysis does not know are ignored. Returns one Finding per (object, invariant);
    status `unknown` marks checks that could not run (unknown model or SKU, missing referenced object).
    """
    cat = catalog or default_catalog()
    objects = [(src, o) for src, o in objs if isinstance(o, Mapping) and "kind" in o]
    configmaps = {(_meta(o)[1], _meta(o)[0]): o for _, o in objects if o.get("kind") == "ConfigMap"}
    workloads: list[_Workload] = []
    pools: list[_Pool] = []
    scalers: list[tuple[str, Obj]] = []
    for src, o in objects:
        kind, group = o.get("kind"), _group(o)
        if kind == "Workspace" and group == "kaito.sh":
            workloads.append(_workspace(src, o, configmaps))
        elif kind in ("Deployment", "StatefulSet") and group == "apps":
            workloads.append(_vllm_workload(src, o) or _gpu_workload(src, o))
        elif kind == "NodePool" and group == "karpenter.sh" and _is_gpu_pool(o, cat):
            pools.append(_pool(src, o, cat))
        elif (kind == "ScaledObject" and group == "keda.sh") or (
            kind == "HTTPScaledObject" and group == "http.keda.sh"
        ):
            scalers.append((src, o))

    findings: list[Finding] = []
    resolved: dict[int, ModelSpec] = {}
    for i, w in enumerate(workloads):
        if w.model_ref is None and w.kind != "Workspace":
            continue  # not an inference server
        model, sku, problems = _resolve(w, cat)
        if w.kind == "Workspace" and sku is not None:
            w.gpus_per_replica = sku.gpu_count
            w.default_tp = sku.gpu_count  # KAITO shards a preset over all GPUs of the node
        if problems or model is None:
            findings.append(w.finding("catalog", "unknown", "; ".join(problems)))
            continue
        if w.config_error:
            findings.append(w.finding("config", "unknown", w.config_error))
            continue
        if sku is None:
            resolved[i] = model
            findings.append(
                w.finding(
                    "gpu-sku",
                    "unknown",
                    f"{w.kind} {w.name} pins no GPU SKU (nodeSelector node.kubernetes.io/instance-type or "
                    f"resource.instanceType), so the per-GPU invariants run against each NodePool that can host it "
                    f"(nodepool-fits-model)"
                    + ("" if pools else "; no GPU NodePool is among the analysed manifests"),
                )
            )
            continue
        try:
            report = evaluate(
                model,
                sku,
                w.config,
                runtime_overhead_gib=runtime_overhead_gib,
                default_tensor_parallel=w.default_tp,
            )
        except SettingError as exc:
            findings.append(w.finding("config", "unknown", str(exc)))
            continue
        capacity = report.kv_token_capacity
        if w.probed_max_model_len and 0 < capacity < model.max_context:
            # KAITO's max-model-len=auto: vLLM serves the longest context the KV cache holds.
            report = evaluate(
                model,
                sku,
                dataclasses.replace(w.config, max_model_len=capacity),
                runtime_overhead_gib=runtime_overhead_gib,
                default_tensor_parallel=w.default_tp,
            )
        resolved[i] = model
        findings.extend(w.finding(c.invariant, c.status, c.message, report) for c in report.checks)

    for p in pools:
        findings.extend(_pool_checks(p, cat))
        findings.extend(_pool_fit_checks(p, workloads, resolved, runtime_overhead_gib))

    for src, o in scalers:
        findings.extend(_scaler_checks(src, o, workloads, pools))
    return findings


def _hosting_pools(w: _Workload, pools: Sequence[_Pool]) -> list[_Pool]:
    if w.sku_name:
        return [p for p in pools if any(s.name.lower() == w.sku_name.lower() for s in p.matching)]
    return [p for p in pools if any(s.gpu_count >= w.gpus_per_replica for s in p.matching)]


def _pool_fit_checks(
    p: _Pool, workloads: Sequence[_Workload], resolved: Mapping[int, ModelSpec], overhead: float
) -> Iterator[Finding]:
    if not p.matching:
        return
    for i, w in enumerate(workloads):
        if i not in resolved or p not in _hosting_pools(w, [p]):
            continue
        model = resolved[i]
        candidates = [s for s in p.matching if w.sku_name is None or s.name.lower() == w.sku_name.lower()]
        fitting = []
        for s in candidates:
            tp = w.config.tensor_parallel_size or (s.gpu_count if w.kind == "Workspace" else w.default_tp)
            try:
                r = evaluate(
                    model,
                    s,
                    ServingConfig(
                        dtype=w.config.dtype,
                        max_model_len=w.config.max_model_len,
                        gpu_memory_utilization=w.config.gpu_memory_utilization,
                        tensor_parallel_size=tp,
                        quantization=w.config.quantization,
                        kv_cache_dtype=w.config.kv_cache_dtype,
                    ),
                    runtime_overhead_gib=overhead,
                )
            except SettingError:
                continue
            if r.fits:
                fitting.append(s.name)
        inv = f"nodepool-fits-model[{w.kind}/{w.name}]"
        if fitting:
            yield p.finding(
                inv,
                "pass",
                f"{model.name} fits {len(fitting)} of the SKUs this NodePool can create: "
                f"{', '.join(fitting)}",
            )
        else:
            yield p.finding(
                inv,
                "fail",
                f"none of the SKUs this NodePool can create for {w.kind}/{w.name} "
                f"({', '.join(s.name for s in candidates)}) fits {model.name} at its settings; see that "
                f"workload's weights-fit and kv-one-sequence findings, and allow a larger GPU SKU here",
            )


def _scaler_checks(
    src: str, o: Obj, workloads: Sequence[_Workload], pools: Sequence[_Pool]
) -> Iterator[Finding]:
    name, ns = _meta(o)
    kind = str(o["kind"])
    spec = o.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    ref_name = str(ref.get("name", ""))
    ref_kind = str(ref.get("kind") or "Deployment")
    if kind == "HTTPScaledObject":
        max_replicas = int((spec.get("replicas") or {}).get("max", 100))
    else:
        max_replicas = int(spec.get("maxReplicaCount", 100))

    def finding(inv: str, status: Status, msg: str) -> Finding:
        return Finding(src, kind, name, ns, inv, status, msg)

    targets = [
        w
        for w in workloads
        if w.name == ref_name and (w.namespace == ns or ns is None or w.namespace is None)
    ]
    if not targets:
        yield finding(
            "keda-target-kind",
            "unknown",
            f"scaleTargetRef names {ref_kind}/{ref_name}, which is not among the analysed manifests; "
            f"include the workload's manifest to check it",
        )
        return
    target = targets[0]
    explained = " (an empty kind means Deployment)" if not ref.get("kind") else ""
    if target.runs_as == ref_kind:
        yield finding(
            "keda-target-kind",
            "pass",
            f"scaleTargetRef {ref_kind}/{ref_name}{explained} is the "
            f"{target.runs_as} that {target.kind}/{target.name} runs",
        )
    else:
        via = (
            f"KAITO runs Workspace {target.name} as a StatefulSet"
            if target.kind == "Workspace"
            else f"{ref_name} is a {target.runs_as}"
        )
        yield finding(
            "keda-target-kind",
            "fail",
            f"scaleTargetRef names {ref_kind}/{ref_name}{explained}, but {via}; KEDA will not find the "
            f"target. Set scaleTargetRef.kind: {target.runs_as} and apiVersion: apps/v1",
        )

    g = target.gpus_per_replica
    if g <= 0:
        return
    if not pools:
        yield finding(
            "keda-gpu-limit",
            "unknown",
            f"{ref_name} needs {g} GPU(s) per replica but no GPU NodePool is among the analysed "
            f"manifests; include the NodePools to check maxReplicaCount against their limits",
        )
        return
    hosting = _hosting_pools(target, pools)
    need = max_replicas * g
    if not hosting:
        yield finding(
            "keda-gpu-limit",
            "fail",
            f"max replicas {max_replicas} × {g} GPU(s) = {need} GPUs, but no NodePool can create a node "
            f"for {target.kind}/{target.name}"
            + (f" ({target.sku_name})" if target.sku_name else "")
            + "; fix the NodePool requirements (see nodepool-sku-match)",
        )
        return
    if any(p.gpu_limit is None for p in hosting):
        yield finding(
            "keda-gpu-limit",
            "pass",
            f"max replicas {max_replicas} × {g} GPU(s) = {need}; NodePool "
            f"{next(p.name for p in hosting if p.gpu_limit is None)} sets no {GPU_RESOURCE} limit",
        )
        return
    total = sum(p.gpu_limit or 0 for p in hosting)
    pools_txt = " + ".join(f"{p.name} {p.gpu_limit}" for p in hosting)
    if need <= total:
        yield finding(
            "keda-gpu-limit",
            "pass",
            f"max replicas {max_replicas} × {g} GPU(s) = {need} ≤ {GPU_RESOURCE} limit {total} ({pools_txt})",
        )
    else:
        field_name = "replicas.max" if kind == "HTTPScaledObject" else "maxReplicaCount"
        yield finding(
            "keda-gpu-limit",
            "fail",
            f"max replicas {max_replicas} × {g} GPU(s) = {need} > {GPU_RESOURCE} limit {total} of the "
            f"NodePools that can host {ref_name} ({pools_txt}); replicas beyond {total // g} stay "
            f"Pending. Lower {field_name} to {total // g} or raise the NodePool limits",
        )
