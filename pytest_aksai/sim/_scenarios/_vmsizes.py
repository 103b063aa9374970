"""The Azure VM sizes the sim can run as nodes, and what AKS makes of them (capacity, allocatable, labels).

The sizes and their GPUs come from the one catalog, `pytest_aksai.sizing` (gpus.yaml); what AKS makes of a
size (capacity, allocatable, reservations) is the simulated cluster's own arithmetic, here.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_aksai import sizing


@dataclass(frozen=True)
class GpuModel:
    key: str
    smi_name: str
    """The name `nvidia-smi` prints."""
    product_label: str
    """`nvidia.com/gpu.product` as GPU feature discovery writes it."""
    memory_mib: int
    power_cap_w: int


@dataclass(frozen=True)
class VmSize:
    name: str
    family: str
    vcpus: int
    memory_gib: int
    gpu: GpuModel | None = None
    gpu_count: int = 0


def _gpu_models() -> dict[str, GpuModel]:
    models: dict[str, GpuModel] = {}
    for key, g in sizing.gpu_models().items():
        model = GpuModel(key, g.nvidia_smi_name, g.gfd_product_label, g.memory_mib, g.power_cap_w)
        models[key] = model
        # Karpenter's `sku-gpu-name` label names the GPU without its variant (`A100`): the first variant wins.
        models.setdefault(key.split("-")[0], model)
    return models


GPU_MODELS: dict[str, GpuModel] = _gpu_models()
"""By the sizing catalog's key (`A100-80GB-PCIe`) and by the bare GPU name Karpenter labels (`A100`)."""

VM_SIZES: dict[str, VmSize] = {
    name: VmSize(
        name,
        size.family,
        size.vcpu,
        int(size.ram_gib),
        GPU_MODELS[size.gpu.key] if size.gpu is not None else None,
        size.gpu_count,
    )
    for name, size in sizing.vm_sizes().items()
}
"""Every VM size of the sizing catalog (pytest_aksai/sizing/gpus.yaml): the one catalog."""

EVICTION_HARD_MEMORY_MI = 100


def vm_size(name: str) -> VmSize:
    try:
        return VM_SIZES[name]
    except KeyError:
        raise ValueError(
            f"unknown VM size {name!r} in the scenario's `vmSize`; the simulated cluster knows: "
            f"{', '.join(sorted(VM_SIZES))}. Use one of these, or declare the Node object yourself under `objects`."
        ) from None


def kube_reserved_cpu_millis(vcpus: int) -> int:
    """AKS's CPU reservation table (60m for the first core, 40m the second, 20m each up to 4, then 10m)."""
    return 60 + (40 if vcpus >= 2 else 0) + 20 * min(max(vcpus - 2, 0), 2) + 10 * max(vcpus - 4, 0)


def memory_capacity_ki(size: VmSize) -> int:
    """What the kernel reports: a little under the VM's nominal memory (firmware and kernel reservations)."""
    return int(size.memory_gib * 1024 * 1024 * 0.976)


def kube_reserved_memory_mi(size: VmSize, max_pods: int) -> int:
    """AKS (Kubernetes 1.29+): min(20 MiB per pod + 50 MiB, 25% of memory)."""
    return min(20 * max_pods + 50, size.memory_gib * 1024 // 4)


def capacity_and_allocatable(size: VmSize, max_pods: int = 110) -> tuple[dict[str, str], dict[str, str]]:
    memory_ki = memory_capacity_ki(size)
    capacity = {
        "cpu": str(size.vcpus),
        "memory": f"{memory_ki}Ki",
        "pods": str(max_pods),
        "ephemeral-storage": "129886128Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    }
    reserved_mi = kube_reserved_memory_mi(size, max_pods) + EVICTION_HARD_MEMORY_MI
    allocatable = {
        **capacity,
        "cpu": f"{size.vcpus * 1000 - kube_reserved_cpu_millis(size.vcpus)}m",
        "memory": f"{memory_ki - reserved_mi * 1024}Ki",
        "ephemeral-storage": "119703055367",
    }
    if size.gpu is not None:
        capacity["nvidia.com/gpu"] = allocatable["nvidia.com/gpu"] = str(size.gpu_count)
    return capacity, allocatable
