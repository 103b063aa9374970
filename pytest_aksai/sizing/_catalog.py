"""GPU SKU and model catalogs: packaged YAML data plus user additions."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pytest_aksai._errors import AksaiError
from pytest_aksai._public import public

GIB = 1024**3


@public
class UnknownEntryError(AksaiError, LookupError):
    """A model or SKU name that the catalog does not hold."""

    def __init__(self, what: str, name: str, known: Iterable[str]) -> None:
        self.what = what
        self.name = name
        known_list = sorted(known)
        super().__init__(
            f"unknown {what} {name!r}; known: {', '.join(known_list)}. "
            f"Add it to the sizing catalog (profile table [sizing] `{what}s` or a `models_file`)."
        )


class GpuSku(BaseModel):
    """One Azure VM size with its GPUs. Figures are per GPU unless the name says otherwise."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    series: str
    gpu_model: str
    gpu_count: int = Field(ge=1)
    vram_gib: float = Field(gt=0, description="memory per GPU, GiB")
    compute_capability: float
    bf16: bool
    bandwidth_gbs: float = Field(gt=0, description="memory bandwidth per GPU, GB/s")
    dense_fp16_tflops: float = Field(gt=0, description="dense FP16/BF16 tensor TFLOP/s per GPU")
    vcpu: int
    ram_gib: float
    price_per_hour: float | None = Field(default=None, description="on-demand Linux USD/hour")
    spot_price_per_hour: float | None = Field(default=None, description="spot Linux USD/hour (evictable)")
    source: str = ""

    @property
    def sku_family(self) -> str:
        """The value NAP puts in the `karpenter.azure.com/sku-family` label: the family letter."""
        return self.name.removeprefix("Standard_")[:1].upper()

    @property
    def total_vram_gib(self) -> float:
        return self.vram_gib * self.gpu_count


def served_name_of(hf_id: str) -> str:
    """The last segment of a Hugging Face repo id, lowercased (`microsoft/Phi-4-mini-instruct` → `phi-4-mini-instruct`)."""
    return hf_id.rstrip("/").rsplit("/", 1)[-1].lower()


@public
class ModelSpec(BaseModel):
    """A model's architecture as published in its config.json."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    hf_id: str
    kaito_preset: str | None = None
    served_name_override: str | None = Field(default=None, alias="served_name")
    aliases: tuple[str, ...] = ()
    parameters: int = Field(gt=0)
    layers: int = Field(gt=0)
    attention_heads: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    max_context: int = Field(gt=0)
    torch_dtype: str = "bfloat16"
    source: str = ""

    @property
    def served_name(self) -> str:
        """What vLLM as KAITO runs it serves the model as: the HF id's last segment, lowercased."""
        return self.served_name_override or served_name_of(self.hf_id)

    @property
    def weights_bytes(self) -> int:
        """Weights at 16-bit precision (the published checkpoints' dtype)."""
        return self.parameters * 2

    @property
    def kv_bytes_per_token(self) -> int:
        """K and V for one token over all layers at a 16-bit KV cache."""
        return kv_bytes_per_token(self, 2)

    def names(self) -> set[str]:
        out = {self.name, self.hf_id, self.served_name, *self.aliases}
        if self.kaito_preset:
            out.add(self.kaito_preset)
        return {n.lower() for n in out}


class ApiPrice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    as_of: str = ""
    source: str = ""

    def cost_per_request(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


def kv_bytes_per_token(model: ModelSpec, kv_dtype_bytes: float, kv_heads: int | None = None) -> int:
    """2 (K and V) × layers × KV heads × head dim × bytes per element."""
    heads = model.kv_heads if kv_heads is None else kv_heads
    return int(2 * model.layers * heads * model.head_dim * kv_dtype_bytes)


class Catalog:
    """Lookup over SKUs, models and API prices. Names match case-insensitively."""

    def __init__(
        self, skus: Iterable[GpuSku], models: Iterable[ModelSpec], apis: Iterable[ApiPrice] = ()
    ) -> None:
        self._skus = {s.name.lower(): s for s in skus}
        self._models: dict[str, ModelSpec] = {}
        self._model_list: list[ModelSpec] = []
        for m in models:
            self._model_list = [x for x in self._model_list if x.name != m.name] + [m]
        for m in self._model_list:
            for n in m.names():
                self._models[n] = m
        self._apis = {a.name.lower(): a for a in apis}

    @property
    def skus(self) -> list[GpuSku]:
        return list(self._skus.values())

    @property
    def models(self) -> list[ModelSpec]:
        return list(self._model_list)

    @property
    def apis(self) -> list[ApiPrice]:
        return list(self._apis.values())

    def gpu_sku(self, name: str) -> GpuSku:
        try:
            return self._skus[name.strip().lower()]
        except KeyError:
            raise UnknownEntryError("gpu", name, (s.name for s in self._skus.values())) from None

    def model_spec(self, name_or_preset: str) -> ModelSpec:
        key = name_or_preset.strip().lower()
        if key in self._models:
            return self._models[key]
        # vLLM may be given a local path or a hub id under a mirror prefix: match the last path segments.
        tail = "/".join(key.rstrip("/").split("/")[-2:])
        if tail in self._models:
            return self._models[tail]
        raise UnknownEntryError("model", name_or_preset, (m.name for m in self._model_list))

    def api_price(self, name: str) -> ApiPrice:
        try:
            return self._apis[name.strip().lower()]
        except KeyError:
            raise UnknownEntryError("api", name, (a.name for a in self._apis.values())) from None

    def extended(
        self,
        *,
        skus: Iterable[GpuSku] = (),
        models: Iterable[ModelSpec] = (),
        apis: Iterable[ApiPrice] = (),
    ) -> Catalog:
        """A new catalog where the given entries are added (or replace entries of the same name)."""
        return Catalog([*self.skus, *skus], [*self.models, *models], [*self.apis, *apis])


class GpuModel(BaseModel):
    """What a node with this GPU shows: the nvidia-smi name, the GPU feature discovery label, memory, power."""

    model_config = ConfigDict(frozen=True)

    key: str
    nvidia_smi_name: str
    gfd_product_label: str
    memory_mib: int = Field(gt=0)
    power_cap_w: int = Field(gt=0)


class VmSize(BaseModel):
    """An Azure VM size as a node: vCPUs, memory and its GPUs (none for system sizes)."""

    model_config = ConfigDict(frozen=True)

    name: str
    series: str
    vcpu: int = Field(gt=0)
    ram_gib: float = Field(gt=0)
    gpu: GpuModel | None = None
    gpu_count: int = 0
    price_per_hour: float | None = None

    @property
    def family(self) -> str:
        """The size's family letters (`D`, `NC`, `ND`, `NV`); NAP's `sku-family` label is the first."""
        stem = self.name.removeprefix("Standard_")
        return stem[: len(stem) - len(stem.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))]


@cache
def vm_sizes() -> dict[str, VmSize]:
    """Every packaged VM size a node can have: the system sizes and every GPU SKU, by name."""
    data = _read_package_yaml("gpus.yaml")
    models = gpu_models()
    sizes = {raw["name"]: VmSize.model_validate(raw) for raw in data.get("system_skus") or []}
    for sku in default_catalog().skus:
        sizes[sku.name] = VmSize(
            name=sku.name,
            series=sku.series,
            vcpu=sku.vcpu,
            ram_gib=sku.ram_gib,
            gpu=models.get(sku.gpu_model),
            gpu_count=sku.gpu_count,
            price_per_hour=sku.price_per_hour,
        )
    return sizes


@cache
def gpu_models() -> dict[str, GpuModel]:
    """The packaged GPU models by catalog key (`T4`, `A100-80GB-PCIe`, ...)."""
    gpus: Mapping[str, Mapping[str, Any]] = _read_package_yaml("gpus.yaml").get("gpus") or {}
    return {
        key: GpuModel(
            key=key,
            nvidia_smi_name=g["nvidia_smi_name"],
            gfd_product_label=g["gfd_product_label"],
            memory_mib=g["memory_mib"],
            power_cap_w=g["power_cap_w"],
        )
        for key, g in gpus.items()
    }


def _read_package_yaml(name: str) -> Any:
    return yaml.safe_load(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


def _skus_from_data(data: Mapping[str, Any], origin: str) -> list[GpuSku]:
    gpus: Mapping[str, Mapping[str, Any]] = data.get("gpus") or {}
    out = []
    for raw in data.get("skus") or []:
        entry = dict(raw)
        gpu_name = entry.pop("gpu", None)
        if gpu_name is not None:
            gpu = gpus.get(gpu_name)
            if gpu is None:
                raise CatalogError(
                    origin,
                    f"sku {entry.get('name')!r} names gpu {gpu_name!r}, "
                    f"which is not under `gpus` (known: {', '.join(sorted(gpus))})",
                )
            entry.setdefault("gpu_model", gpu_name)
            for key in ("compute_capability", "bf16", "bandwidth_gbs", "dense_fp16_tflops"):
                entry.setdefault(key, gpu[key])
            entry["compute_capability"] = float(entry["compute_capability"])
            if entry.get("source") and gpu.get("source"):
                entry["source"] = f"{entry['source']}; GPU: {gpu['source']}"
        try:
            out.append(GpuSku.model_validate(entry))
        except ValidationError as exc:
            raise CatalogError(origin, f"sku entry {raw!r} is invalid: {exc}") from None
    return out


class CatalogError(AksaiError, ValueError):
    def __init__(self, origin: str, problem: str) -> None:
        super().__init__(f"sizing catalog {origin}: {problem}")


def _validate_all(cls: type[BaseModel], rows: Iterable[Any], origin: str, what: str) -> list[Any]:
    out = []
    for raw in rows:
        try:
            out.append(cls.model_validate(raw))
        except ValidationError as exc:
            raise CatalogError(origin, f"{what} entry {raw!r} is invalid: {exc}") from None
    return out


def load_catalog_file(path: Path) -> tuple[list[GpuSku], list[ModelSpec], list[ApiPrice]]:
    """Read user entries from a YAML or TOML file with optional `gpus`, `skus`, `models`, `apis` keys."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(
            str(path), f"cannot be read ({exc.strerror}); fix the path in [sizing] models_file"
        ) from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise CatalogError(str(path), f"is not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from None
    if not isinstance(data, Mapping):
        raise CatalogError(str(path), "must be a mapping with keys `skus`, `gpus`, `models` and/or `apis`")
    unknown = set(data) - {"gpus", "skus", "models", "apis"}
    if unknown:
        raise CatalogError(str(path), f"unknown keys {sorted(unknown)}; valid keys: apis, gpus, models, skus")
    return (
        _skus_from_data(data, str(path)),
        _validate_all(ModelSpec, data.get("models") or [], str(path), "model"),
        _validate_all(ApiPrice, data.get("apis") or [], str(path), "api"),
    )


@cache
def default_catalog() -> Catalog:
    """The packaged catalog (gpus.yaml, models.yaml)."""
    gpu_data = _read_package_yaml("gpus.yaml")
    model_data = _read_package_yaml("models.yaml")
    return Catalog(
        _skus_from_data(gpu_data, "gpus.yaml"),
        _validate_all(ModelSpec, model_data["models"], "models.yaml", "model"),
        _validate_all(ApiPrice, model_data["apis"], "models.yaml", "api"),
    )


def gpu_sku(name: str) -> GpuSku:
    """Look up an Azure VM size (e.g. ``Standard_NC24ads_A100_v4``), case-insensitively."""
    return default_catalog().gpu_sku(name)


def model_spec(name_or_preset: str) -> ModelSpec:
    """Look up a model by served name, KAITO preset name or HF id, case-insensitively."""
    return default_catalog().model_spec(name_or_preset)
