"""What each running container uses: the cAdvisor numbers the kubelet's `/metrics/resource` would report.

The model, in cluster time:

- A container that burns CPU by its command (`stress`/`stress-ng --cpu N`, `yes`, `dd if=/dev/zero`,
  `sha256sum /dev/zero`, `sh -c 'while true; do :; done'`) uses N cores (1 unless `--cpu N` says more),
  throttled to its CPU limit and to the node's capacity, as the CFS quota does.
- An add-on can model its own containers (the vLLM server's CPU and memory follow its engine's load):
  `register_usage(store, provider)`; a provider answers `None` for containers it does not play.
- Any other container uses a steady share of what it requests (15-35 % of its CPU request, 40-70 % of its
  memory request, fixed per container, with a slow ±10 % drift), or a few millicores and MiB without
  requests; never more than its limit.

A node's usage is the sum of its running pods' plus what the system (kubelet, containerd, the OS) takes.
"""

from __future__ import annotations

import hashlib
import math
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from weakref import WeakKeyDictionary

from pytest_aksai.sim._core import _resources

NANO = 1_000_000_000
MIB = 1024 * 1024
PAGE = 4096


@dataclass(frozen=True)
class Usage:
    cpu_cores: float
    memory_bytes: int

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.cpu_cores + other.cpu_cores, self.memory_bytes + other.memory_bytes)


UsageProvider = Callable[[Mapping[str, Any], Mapping[str, Any], float], Usage | None]
"""(pod, container spec, cluster time in seconds) → the container's usage, or None when not modelled."""

_PROVIDERS: WeakKeyDictionary[Any, list[UsageProvider]] = WeakKeyDictionary()


def register_usage(store: Any, provider: UsageProvider) -> None:
    _PROVIDERS.setdefault(store, []).append(provider)


def unregister_usage(store: Any, provider: UsageProvider) -> None:
    providers = _PROVIDERS.get(store) or []
    if provider in providers:
        providers.remove(provider)


def _fraction(*parts: str) -> float:
    """A stable number in [0, 1) for the given identity (same container, same share, every run)."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _argv(container: Mapping[str, Any]) -> list[str]:
    return [str(a) for a in (container.get("command") or [])] + [
        str(a) for a in (container.get("args") or [])
    ]


def burner_cores(container: Mapping[str, Any]) -> float | None:
    """The cores a CPU-burning command keeps busy, or None for any other command."""
    argv = _argv(container)
    if not argv:
        return None
    program = argv[0].rsplit("/", 1)[-1]
    if program in ("sh", "bash", "ash", "dash") and len(argv) >= 3 and argv[1] == "-c":
        script = " ".join(argv[2:])
        squashed = " ".join(script.replace(";", " ; ").split())
        if "while true ; do : ; done" in squashed or "while : ; do : ; done" in squashed:
            return 1.0
        try:
            words = shlex.split(script)
        except ValueError:
            return None
        return burner_cores({"command": words}) if words and words[0] != argv[0] else None
    if program in ("stress", "stress-ng"):
        for flag in ("--cpu", "-c"):
            if flag in argv:
                at = argv.index(flag)
                try:
                    return max(1.0, float(argv[at + 1]))
                except (IndexError, ValueError):
                    return 1.0
        return None
    if program == "yes":
        return 1.0
    if program == "dd" and any(a == "if=/dev/zero" or a == "if=/dev/urandom" for a in argv):
        return 1.0
    if program in ("sha256sum", "md5sum", "sha1sum") and "/dev/zero" in argv:
        return 1.0
    return None


def _limits(container: Mapping[str, Any]) -> dict[str, Decimal]:
    return _resources.parse_map((container.get("resources") or {}).get("limits"))


def _requests(container: Mapping[str, Any]) -> dict[str, Decimal]:
    resources = container.get("resources") or {}
    merged = _resources.parse_map(resources.get("limits"))
    merged.update(_resources.parse_map(resources.get("requests")))
    return merged


def container_usage(
    store: Any, pod: Mapping[str, Any], container: Mapping[str, Any], now: float, node_cores: float
) -> Usage:
    meta = pod.get("metadata") or {}
    for provider in _PROVIDERS.get(store) or []:
        found = provider(pod, container, now)
        if found is not None:
            return _capped(found, container)
    identity = (str(meta.get("uid", "")), str(container.get("name", "")))
    requests = _requests(container)
    drift = 1.0 + 0.1 * math.sin(now / 300.0 + 6.283 * _fraction(*identity, "phase"))
    burning = burner_cores(container)
    if burning is not None:
        cpu = min(burning, node_cores)
    elif "cpu" in requests:
        cpu = float(requests["cpu"]) * (0.15 + 0.2 * _fraction(*identity, "cpu")) * drift
    else:
        cpu = (0.001 + 0.004 * _fraction(*identity, "cpu")) * drift
    if "memory" in requests:
        memory = float(requests["memory"]) * (0.4 + 0.3 * _fraction(*identity, "memory"))
    else:
        memory = (6 + 26 * _fraction(*identity, "memory")) * MIB
    if burning is not None:
        memory = min(memory, 4 * MIB)
    return _capped(Usage(cpu, int(memory * drift)), container)


def _capped(usage: Usage, container: Mapping[str, Any]) -> Usage:
    limits = _limits(container)
    cpu = min(usage.cpu_cores, float(limits["cpu"])) if "cpu" in limits else usage.cpu_cores
    memory = min(usage.memory_bytes, int(limits["memory"])) if "memory" in limits else usage.memory_bytes
    return Usage(max(cpu, 0.0), max(int(memory) // PAGE * PAGE, PAGE))


def system_usage(node: Mapping[str, Any], now: float) -> Usage:
    """What the node uses outside pods: kubelet, containerd and the OS (about 5 % of a core per 4 cores and
    ~750 MiB on an AKS node)."""
    capacity = _resources.parse_map((node.get("status") or {}).get("capacity"))
    cores = float(capacity.get("cpu", Decimal(2)))
    name = str((node.get("metadata") or {}).get("name", ""))
    drift = 1.0 + 0.1 * math.sin(now / 240.0 + 6.283 * _fraction(name, "phase"))
    return Usage((0.04 + 0.012 * cores) * drift, int((600 + 150 * _fraction(name, "memory")) * MIB * drift))


def format_cpu(cores: float) -> str:
    """CPU as metrics-server writes it: nanocores in the quantity's canonical form (`1234567n`, `25m`, `2`)."""
    return canonical_decimal(round(cores * NANO), 9)


def canonical_decimal(value: int, scale: int) -> str:
    """`value × 10^-scale` in the canonical form of a Kubernetes DecimalSI quantity (`250m`, `52428800`, `1M`)."""
    suffixes = {9: "n", 6: "u", 3: "m", 0: "", -3: "k", -6: "M", -9: "G", -12: "T", -15: "P", -18: "E"}
    if value == 0:
        return "0"
    while scale > -18 and value % 1000 == 0:
        value //= 1000
        scale -= 3
    return f"{value}{suffixes[scale]}"


def format_memory(bytes_: int) -> str:
    """Memory as a BinarySI quantity in canonical form (`11816Ki`, `3Gi`)."""
    if bytes_ == 0:
        return "0"
    suffix = ""
    for candidate in ("Ki", "Mi", "Gi", "Ti"):
        if bytes_ % 1024:
            break
        bytes_ //= 1024
        suffix = candidate
    return f"{bytes_}{suffix}"
