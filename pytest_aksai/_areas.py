"""The table of areas: one row per area of the stack that the suites check.

An area is one unit: its row here (name, marker description, docs page, fixture module, the API group it
needs), its fixture module under `pytest_aksai/_fixtures/`, its typed views under `pytest_aksai/kube/`, its
suite `suites/test_<area>.py` and its docs page. The plugin registers each row's marker and loads each row's
fixture module as a pytest plugin; nothing else in `plugin.py` knows about areas. See
docs/how-to/add-an-area.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Area:
    name: str
    """The marker (`pytest -m <name>`) and the name a profile's `absent` list uses."""
    description: str
    """What the area's checks cover (the marker's help text)."""
    docs: str
    """The area's docs page, relative to the repository root."""
    fixtures: str | None
    """The fixture module (a pytest plugin), or None while the area has no fixtures of its own."""
    api_group: str | None = None
    """The API group the area needs on the cluster; without it the area's checks skip, naming it."""
    built: bool = True
    """False while the area has no checks yet: its profile keys are refused with a pointer to the issue."""


AREAS: tuple[Area, ...] = (
    Area(
        "kaito",
        "KAITO workspaces: conditions, StatefulSet, Service, inference config, GPU node, cold start",
        "docs/reference/suites/kaito.md",
        "pytest_aksai._fixtures._kaito",
        api_group="kaito.sh",
    ),
    Area(
        "api",
        "vLLM OpenAI-compatible API surface: health, models, completions, chat, streaming, errors, metrics",
        "docs/reference/suites/api.md",
        "pytest_aksai._fixtures._api",
        api_group="kaito.sh",
    ),
    Area(
        "sizing",
        "sizing invariants: model fits GPU, KV cache, replicas, NodePool limits, cost",
        "docs/explanation/sizing.md",
        "pytest_aksai._fixtures._sizing",
    ),
    Area(
        "keda",
        "KEDA autoscaling: scale to zero and back, HTTP add-on, Service Bus trigger",
        "docs/reference/suites/keda.md",
        "pytest_aksai._fixtures._keda",
        api_group="keda.sh",
    ),
    Area(
        "nap",
        "Node Auto-Provisioning (Karpenter on AKS): NodePools, GPU node provision and deprovision, idle cost",
        "docs/reference/suites/nap.md",
        "pytest_aksai._fixtures._nap",
        api_group="karpenter.sh",
    ),
    Area(
        "identity",
        "Azure Workload Identity chain: ServiceAccount, pod label, webhook, token, OIDC issuer, Entra ID "
        "exchange, Key Vault, SecretProviderClass",
        "docs/reference/suites/identity.md",
        "pytest_aksai._fixtures._identity",
    ),
    Area(
        "load",
        "load and latency SLOs: TTFT, inter-token latency, end-to-end latency, throughput, cross-checks",
        "docs/reference/suites/load.md",
        "pytest_aksai._fixtures._load",
        api_group="kaito.sh",
    ),
)

CORE_FIXTURES = (
    "pytest_aksai._fixtures._cluster",
    "pytest_aksai._fixtures._findings",
    "pytest_aksai._fixtures._report",
    "pytest_aksai._fixtures._readonly",
)
"""Fixture modules every area builds on: the cluster and run scope, findings as failures, measurements."""

AREA_BY_NAME: dict[str, Area] = {area.name: area for area in AREAS}

SAFETY_MARKERS: dict[str, str] = {
    "disruptive": "changes shared cluster state (scales, deletes, applies); refused on live clusters unless allowed",
    "costly": "provisions GPU capacity; refused on live clusters unless allowed",
}

PLUGIN_MARKERS: dict[str, str] = {
    "explains": "explains(fixture): this check is the one that explains a failure of that fixture; the checks "
    "that depend on the fixture fail with one line pointing here",
}


def area_of(markers: set[str]) -> list[str]:
    """The names of the areas among an item's markers, in table order."""
    return [area.name for area in AREAS if area.name in markers]
