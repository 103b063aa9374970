"""The `sizing` table of a cluster profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pytest_aksai.sizing import _arith as A
from pytest_aksai.sizing._catalog import (
    ApiPrice,
    Catalog,
    ModelSpec,
    _skus_from_data,
    default_catalog,
    load_catalog_file,
)


class SizingProfile(BaseModel):
    """`[tool.aksai.<profile>.sizing]` / `[<profile>.sizing]`: catalog additions and sizing knobs.

    models_file: a YAML or TOML file with `models`, `gpus`, `skus` and/or `apis` entries (same shape as the
    packaged catalogs), relative to the rootdir. `models`, `gpus`, `skus`, `apis` given inline are added
    after it; an entry with the name of a packaged one replaces it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    models_file: Path | None = None
    models: tuple[ModelSpec, ...] = ()
    gpus: dict[str, dict[str, Any]] = Field(default_factory=dict)
    skus: tuple[dict[str, Any], ...] = ()
    apis: tuple[ApiPrice, ...] = ()
    runtime_overhead_gib: float = Field(default=A.DEFAULT_RUNTIME_OVERHEAD_GIB, ge=0)
    """Per-GPU memory vLLM needs besides weights and KV cache."""
    fixed_daily_usd: float = Field(default=A.DEFAULT_FIXED_DAILY_USD, ge=0)
    """Fixed daily cost of the scale-to-zero deployment (system node pool), for break-even figures."""

    @model_validator(mode="after")
    def _skus_resolve(self) -> SizingProfile:
        _skus_from_data({"gpus": self.gpus, "skus": list(self.skus)}, "profile [sizing]")
        return self

    def catalog(self, rootdir: Path | None = None, base: Catalog | None = None) -> Catalog:
        cat = base or default_catalog()
        if self.models_file is not None:
            path = (
                self.models_file
                if self.models_file.is_absolute() or rootdir is None
                else rootdir / self.models_file
            )
            skus, models, apis = load_catalog_file(path)
            cat = cat.extended(skus=skus, models=models, apis=apis)
        inline_skus = _skus_from_data({"gpus": self.gpus, "skus": list(self.skus)}, "profile [sizing]")
        return cat.extended(skus=inline_skus, models=self.models, apis=self.apis)
