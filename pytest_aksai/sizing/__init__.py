"""Sizing: GPU and model catalogs, memory and cost arithmetic, invariants, manifest analysis.

Pure domain code: no pytest import, no I/O beyond reading YAML/TOML files.
"""

from __future__ import annotations

from pytest_aksai._public import public
from pytest_aksai._warnings import AksaiWarning
from pytest_aksai.sizing._catalog import (
    ApiPrice,
    Catalog,
    CatalogError,
    GpuModel,
    GpuSku,
    ModelSpec,
    UnknownEntryError,
    VmSize,
    default_catalog,
    gpu_models,
    gpu_sku,
    load_catalog_file,
    model_spec,
    served_name_of,
    vm_sizes,
)
from pytest_aksai.sizing._check import SizingCheck
from pytest_aksai.sizing._fit import Check, FitReport, ServingConfig, SettingError, evaluate
from pytest_aksai.sizing._latency import Roofline
from pytest_aksai.sizing._manifests import Finding, ManifestError, analyze_objects, load_manifests
from pytest_aksai.sizing._profile import SizingProfile
from pytest_aksai.sizing._recommend import NothingFits
from pytest_aksai.sizing._resolve import RefusedInput


@public
class AksaiSizingWarning(AksaiWarning):
    """A sizing invariant that holds only with a caveat (e.g. max-num-seqs above what the KV cache holds)."""


__all__ = [
    "AksaiSizingWarning",
    "ApiPrice",
    "Catalog",
    "CatalogError",
    "Check",
    "Finding",
    "FitReport",
    "GpuModel",
    "GpuSku",
    "ManifestError",
    "ModelSpec",
    "NothingFits",
    "RefusedInput",
    "Roofline",
    "ServingConfig",
    "SettingError",
    "SizingCheck",
    "SizingProfile",
    "UnknownEntryError",
    "VmSize",
    "analyze_objects",
    "default_catalog",
    "evaluate",
    "gpu_models",
    "gpu_sku",
    "load_catalog_file",
    "load_manifests",
    "model_spec",
    "served_name_of",
    "vm_sizes",
]
