"""Named faults of the simulated cluster: each breaks exactly one behaviour.

Faults are selected at start (`--fault NAME`, repeatable; `NAME=VALUE` gives a parameter) and toggled at
run time through the ConfigMap `kube-system/aksai-sim-faults`, whose data maps a fault name to its parameter
(an empty string when it takes none).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

FAULTS_CONFIGMAP_NAMESPACE = "kube-system"
FAULTS_CONFIGMAP_NAME = "aksai-sim-faults"


@dataclass(frozen=True)
class FaultSpec:
    name: str
    breaks: str
    parameter: str = ""
    """What the optional parameter means; empty when the fault takes none."""


FAULTS: dict[str, FaultSpec] = {
    spec.name: spec
    for spec in [
        FaultSpec(
            "node-not-ready",
            "a node stops heartbeating and turns NotReady",
            "node name (default: every node)",
        ),
        FaultSpec(
            "image-pull-backoff",
            "pods of an image never start (ErrImagePull, ImagePullBackOff)",
            "image (substring)",
        ),
        FaultSpec(
            "api-flaky",
            "a share of API requests answer 500, 429 or a connection reset",
            "percent (default 20)",
        ),
        FaultSpec("vllm-no-metrics", "the model server answers 404 on /metrics"),
        FaultSpec("vllm-buffered-stream", "streamed responses arrive all at once at the end"),
        FaultSpec("vllm-wrong-served-name", "the model server serves the model under a wrong name"),
        FaultSpec("vllm-broken-chat-template", "chat completions answer 500; completions still work"),
        FaultSpec(
            "vllm-legacy-metrics",
            "model servers started from now on are an older vLLM: vllm:gpu_cache_usage_perc instead of "
            "vllm:kv_cache_usage_perc",
        ),
        FaultSpec("kaito-inference-oom", "KAITO inference pods are OOMKilled while loading the model"),
    ]
}


class UnknownFaultError(ValueError):
    pass


def parse_fault(text: str) -> tuple[str, str]:
    """`name` or `name=value` → (name, value); rejects names not in the registry."""
    name, _, value = text.partition("=")
    name = name.strip()
    if name not in FAULTS:
        known = ", ".join(sorted(FAULTS))
        raise UnknownFaultError(f"unknown simulated-cluster fault {name!r}; known faults: {known}")
    return name, value.strip()


class ActiveFaults:
    """The faults in force now. Mutated only on the simulated cluster's event loop."""

    def __init__(self, faults: Iterable[str] = ()) -> None:
        self._active: dict[str, str] = dict(parse_fault(f) for f in faults)

    def replace(self, data: Mapping[str, str]) -> None:
        """Take the whole set from the faults ConfigMap's data; unknown names are ignored."""
        self._active = {name: str(value) for name, value in data.items() if name in FAULTS}

    def is_active(self, name: str) -> bool:
        return name in self._active

    def parameter(self, name: str, default: str = "") -> str:
        value = self._active.get(name, "")
        return value or default

    def names(self) -> list[str]:
        return sorted(self._active)

    def as_data(self) -> dict[str, str]:
        return dict(self._active)
