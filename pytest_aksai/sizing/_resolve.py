"""Names people type (`A100`, `"A100 80GB"`, `mistral-7b`, a Hugging Face id) resolved against the catalog,
and the one paragraph every refused input is answered with."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence

from pytest_aksai._errors import AksaiError
from pytest_aksai.sizing._catalog import Catalog, GpuSku, ModelSpec, UnknownEntryError


class RefusedInput(AksaiError, ValueError):
    """An input the sizing tools refuse: one paragraph naming the knob, the value, the valid values, the fix."""

    def __init__(self, knob: str, value: object, problem: str, valid: str, fix: str) -> None:
        self.knob = knob
        self.value = value
        super().__init__(f"{knob} {value!s}: {problem}. Valid values: {valid}. Fix: {fix}.")


def _tokens(text: str) -> list[str]:
    joined = re.sub(r"(\d)\s+gb\b", r"\1gb", text.lower())  # "A100 80 GB" → a100, 80gb
    return [t for t in re.split(r"[^0-9a-z.]+", joined) if t]


def describe_sku(sku: GpuSku) -> str:
    price = "no price in the catalog" if sku.price_per_hour is None else f"${sku.price_per_hour:.3f}/hour"
    return f"{sku.name} ({sku.gpu_count} × {sku.gpu_model}, {price})"


def skus_named(catalog: Catalog, typed: str, *, knob: str = "--gpu") -> list[GpuSku]:
    """The SKUs `typed` names: an Azure VM size (with or without `Standard_`), or a GPU model such as
    `A100`, `A100 80GB` or `T4` (every SKU that carries that GPU, fewest GPUs and cheapest first)."""
    text = typed.strip()
    for candidate in (text, f"Standard_{text}"):
        try:
            return [catalog.gpu_sku(candidate)]
        except UnknownEntryError:
            pass
    wanted = _tokens(text)
    matches = [
        s for s in catalog.skus if wanted and all(t in _tokens(f"{s.gpu_model} {s.series}") for t in wanted)
    ]
    if matches:
        return sorted(matches, key=lambda s: (s.gpu_count, s.price_per_hour is None, s.price_per_hour or 0.0))
    names = [s.name for s in catalog.skus]
    gpu_models = sorted({s.gpu_model for s in catalog.skus})
    close = difflib.get_close_matches(text, [*names, *gpu_models], n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise RefusedInput(
        knob,
        repr(typed),
        "names no Azure VM size or GPU model in the sizing catalog",
        f"a VM size such as {', '.join(names[:3])}, …, or a GPU model: {', '.join(gpu_models)}",
        f"{hint}pass one of these, or add the SKU to the catalog with --models-file",
    )


def one_sku(catalog: Catalog, typed: str, *, knob: str = "--gpu") -> GpuSku:
    """Exactly one SKU; a GPU model carried by several SKUs is refused with the list."""
    matches = skus_named(catalog, typed, knob=knob)
    if len(matches) == 1:
        return matches[0]
    raise RefusedInput(
        knob,
        repr(typed),
        f"is carried by {len(matches)} VM sizes: {'; '.join(describe_sku(s) for s in matches)}",
        ", ".join(s.name for s in matches),
        f"pass one VM size, e.g. {knob} {matches[0].name}",
    )


def _model_names(model: ModelSpec) -> set[str]:
    return model.names() | {model.hf_id.lower().rsplit("/", 1)[-1]}


def model_named(catalog: Catalog, typed: str) -> ModelSpec:
    """The model `typed` names: any catalog name, KAITO preset or HF id, or a unique prefix of one
    (`mistral-7b` → mistral-7b-instruct); otherwise refused with a did-you-mean."""
    try:
        return catalog.model_spec(typed)
    except UnknownEntryError:
        pass
    key = typed.strip().lower()
    tail = key.rstrip("/").rsplit("/", 1)[-1]
    prefixed = _unique(m for m in catalog.models if any(n.startswith(f"{tail}-") for n in _model_names(m)))
    if len(prefixed) == 1:
        return prefixed[0]
    all_names = sorted({n for m in catalog.models for n in _model_names(m)})
    if len(prefixed) > 1:
        problem = f"is the start of {len(prefixed)} models: {', '.join(m.name for m in prefixed)}"
        choices: Sequence[str] = [m.name for m in prefixed]
    else:
        problem = "is not in the sizing catalog"
        choices = difflib.get_close_matches(key, all_names, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(choices)}? " if choices else ""
    raise RefusedInput(
        "--model",
        repr(typed),
        problem,
        f"a served name, KAITO preset or Hugging Face id of: {', '.join(m.name for m in catalog.models)}",
        f"{hint}pass one of these, or add the model to the catalog with --models-file",
    )


def _unique(models: Iterable[ModelSpec]) -> list[ModelSpec]:
    out: list[ModelSpec] = []
    for m in models:
        if m not in out:
            out.append(m)
    return out
