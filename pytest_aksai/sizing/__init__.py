"""Sizing: GPU and model catalogs, memory and cost arithmetic, invariants, manifest analysis.

Pure domain code: no pytest import, no I/O beyond reading YAML/TOML files. Names are imported on first use
(PEP 562): the plugin's profiles need only `SizingProfile`, on every pytest run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_aksai._lazy import lazy_getattr
from pytest_aksai._public import public
from pytest_aksai._warnings import AksaiWarning

if TYPE_CHECKING:
    from pytest_aksai.sizing._arith import (
        breakeven_requests_per_day,
        kaito_fixed_daily,
        selfhost_cost_per_token,
    )
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
    from pytest_aksai.sizing._engine_args import (
        EngineArg,
        EngineArgCatalog,
        EngineArgProblem,
        vllm_engine_args,
    )
    from pytest_aksai.sizing._fit import Check, FitReport, ServingConfig, SettingError, evaluate
    from pytest_aksai.sizing._latency import Roofline
    from pytest_aksai.sizing._manifests import Finding, ManifestError, analyze_objects, load_manifests
    from pytest_aksai.sizing._offerings import (
        WELL_KNOWN,
        InstanceType,
        compatible,
        do_not_disrupt_grace,
        family_hint,
        go_duration,
        instance_type,
        instance_types,
        matching_instance_types,
        offering_labels,
        requirement_matches,
        unknown_label_problems,
    )
    from pytest_aksai.sizing._profile import SizingProfile
    from pytest_aksai.sizing._recommend import NothingFits
    from pytest_aksai.sizing._resolve import RefusedInput

_LAZY = {
    "ApiPrice": "._catalog",
    "Catalog": "._catalog",
    "CatalogError": "._catalog",
    "GpuModel": "._catalog",
    "GpuSku": "._catalog",
    "ModelSpec": "._catalog",
    "UnknownEntryError": "._catalog",
    "VmSize": "._catalog",
    "default_catalog": "._catalog",
    "gpu_models": "._catalog",
    "gpu_sku": "._catalog",
    "load_catalog_file": "._catalog",
    "model_spec": "._catalog",
    "served_name_of": "._catalog",
    "vm_sizes": "._catalog",
    "breakeven_requests_per_day": "._arith",
    "kaito_fixed_daily": "._arith",
    "selfhost_cost_per_token": "._arith",
    "SizingCheck": "._check",
    "EngineArg": "._engine_args",
    "EngineArgCatalog": "._engine_args",
    "EngineArgProblem": "._engine_args",
    "vllm_engine_args": "._engine_args",
    "Check": "._fit",
    "FitReport": "._fit",
    "ServingConfig": "._fit",
    "SettingError": "._fit",
    "evaluate": "._fit",
    "Roofline": "._latency",
    "Finding": "._manifests",
    "ManifestError": "._manifests",
    "analyze_objects": "._manifests",
    "load_manifests": "._manifests",
    "InstanceType": "._offerings",
    "WELL_KNOWN": "._offerings",
    "compatible": "._offerings",
    "do_not_disrupt_grace": "._offerings",
    "family_hint": "._offerings",
    "go_duration": "._offerings",
    "instance_type": "._offerings",
    "instance_types": "._offerings",
    "matching_instance_types": "._offerings",
    "offering_labels": "._offerings",
    "requirement_matches": "._offerings",
    "unknown_label_problems": "._offerings",
    "SizingProfile": "._profile",
    "NothingFits": "._recommend",
    "RefusedInput": "._resolve",
}


@public
class AksaiSizingWarning(AksaiWarning):
    """A sizing invariant that holds only with a caveat (e.g. max-num-seqs above what the KV cache holds)."""


__getattr__ = lazy_getattr(globals(), _LAZY)


__all__ = [
    "WELL_KNOWN",
    "AksaiSizingWarning",
    "ApiPrice",
    "Catalog",
    "CatalogError",
    "Check",
    "EngineArg",
    "EngineArgCatalog",
    "EngineArgProblem",
    "Finding",
    "FitReport",
    "GpuModel",
    "GpuSku",
    "InstanceType",
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
    "breakeven_requests_per_day",
    "compatible",
    "default_catalog",
    "do_not_disrupt_grace",
    "evaluate",
    "family_hint",
    "go_duration",
    "gpu_models",
    "gpu_sku",
    "instance_type",
    "instance_types",
    "kaito_fixed_daily",
    "load_catalog_file",
    "load_manifests",
    "matching_instance_types",
    "model_spec",
    "offering_labels",
    "requirement_matches",
    "selfhost_cost_per_token",
    "served_name_of",
    "unknown_label_problems",
    "vllm_engine_args",
    "vm_sizes",
]
