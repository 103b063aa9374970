"""Sizing: GPU and model catalogs, memory and cost arithmetic, invariants, manifest analysis.

Pure domain code: no pytest import, no I/O beyond reading YAML/TOML files.
"""

from __future__ import annotations

from pytest_aksai.sizing._catalog import (
    ApiPrice,
    Catalog,
    CatalogError,
    GpuSku,
    ModelSpec,
    UnknownEntryError,
    default_catalog,
    gpu_sku,
    load_catalog_file,
    model_spec,
)
from pytest_aksai.sizing._fit import Check, FitReport, ServingConfig, SettingError, evaluate

__all__ = [
    "ApiPrice",
    "Catalog",
    "CatalogError",
    "Check",
    "FitReport",
    "GpuSku",
    "ModelSpec",
    "ServingConfig",
    "SettingError",
    "UnknownEntryError",
    "default_catalog",
    "evaluate",
    "gpu_sku",
    "load_catalog_file",
    "model_spec",
]
