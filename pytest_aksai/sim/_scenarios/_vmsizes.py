"""The Azure VM sizes the sim can run as nodes, and what AKS makes of them (capacity, allocatable, labels).

A small catalog on purpose: the sizes the lab uses. It belongs with the sizing catalogs once those exist.
"""

from __future__ import annotations

from dataclasses import dataclass


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


GPU_MODELS: dict[str, GpuModel] = {
    g.key: g
    for g in (
        GpuModel("T4", "Tesla T4", "Tesla-T4", 15360, 70),
        GpuModel("V100", "Tesla V100-PCIE-16GB", "Tesla-V100-PCIE-16GB", 16384, 250),
        GpuModel("A100", "NVIDIA A100 80GB PCIe", "NVIDIA-A100-80GB-PCIe", 81920, 300),
        GpuModel("H100", "NVIDIA H100 NVL", "NVIDIA-H100-NVL", 95830, 400),
    )
}

_T4, _V100, _A100, _H100 = (GPU_MODELS[k] for k in ("T4", "V100", "A100", "H100"))

VM_SIZES: dict[str, VmSize] = {
    s.name: s
    for s in (
        VmSize("Standard_D2ds_v5", "D", 2, 8),
        VmSize("Standard_D4ds_v5", "D", 4, 16),
        VmSize("Standard_D8ds_v5", "D", 8, 32),
        VmSize("Standard_D16ds_v5", "D", 16, 64),
        VmSize("Standard_NC4as_T4_v3", "NC", 4, 28, _T4, 1),
        VmSize("Standard_NC8as_T4_v3", "NC", 8, 56, _T4, 1),
        VmSize("Standard_NC16as_T4_v3", "NC", 16, 110, _T4, 1),
        VmSize("Standard_NC64as_T4_v3", "NC", 64, 440, _T4, 4),
        VmSize("Standard_NC6s_v3", "NC", 6, 112, _V100, 1),
        VmSize("Standard_NC12s_v3", "NC", 12, 224, _V100, 2),
        VmSize("Standard_NC24s_v3", "NC", 24, 448, _V100, 4),
        VmSize("Standard_NC24ads_A100_v4", "NC", 24, 220, _A100, 1),
        VmSize("Standard_NC48ads_A100_v4", "NC", 48, 440, _A100, 2),
        VmSize("Standard_NC96ads_A100_v4", "NC", 96, 880, _A100, 4),
        VmSize("Standard_NC40ads_H100_v5", "NC", 40, 320, _H100, 1),
    )
}

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
