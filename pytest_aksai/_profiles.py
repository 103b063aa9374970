"""Cluster profiles: the `[clusters.<name>]` tables of `aksai.toml` (or `[tool.aksai.clusters.<name>]`).

Validated with pydantic; every error is turned into one paragraph that names the file, the key (with its
line where it can be found), the bad value, the valid values and the fix.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from pytest_aksai._areas import AREA_BY_NAME, AREAS
from pytest_aksai._errors import AksaiError
from pytest_aksai._knobs import BUILTIN_PROFILE
from pytest_aksai.sim.contract import DEFAULT_TIME_SCALE
from pytest_aksai.sizing import SizingProfile

AREA_KEYS = {
    key: area
    for key, area in {
        "nodepools": "nap",
        "scaled_objects": "keda",
        "azure": "identity",
        "slos": "load",
    }.items()
    if not AREA_BY_NAME[area].built
}
"""Profile keys that belong to an area, while that area has no checks yet."""
SAFETY_CLASSES = ("disruptive", "costly")
SafetyClass = Literal["disruptive", "costly"]
Provider = Literal["aks", "kind", "sim"]


class ProfileError(AksaiError):
    """A profile or config file is wrong; the message is the whole user-facing paragraph."""


NamespacedName = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")
]
"""`namespace/name`, e.g. `inference/workspace-phi4-mini`."""
DnsLabel = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
"""A namespace name (an RFC 1123 label)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Strict):
    """Budgets in cluster seconds, per kind of wait; multiplied by the timeout scale."""

    connect: PositiveFloat = 10
    namespace_ready: PositiveFloat = 30
    namespace_delete: PositiveFloat = 120
    pod_ready: PositiveFloat = 300
    workspace_ready: PositiveFloat = 1800
    node_provision: PositiveFloat = 900
    node_deprovision: PositiveFloat = 1200
    gpu_advertise: PositiveFloat = 600
    scale_up: PositiveFloat = 600
    scale_to_zero: PositiveFloat = 900


class SimSettings(_Strict):
    scenario: str = "default"
    time_scale: PositiveFloat = DEFAULT_TIME_SCALE
    faults: tuple[str, ...] = ()


class AzureSettings(_Strict):
    """The identity area: whose Workload Identity chain to walk and what it must reach."""

    tenant_id: str | None = None
    """The default tenant (a ServiceAccount's `azure.workload.identity/tenant-id` wins)."""
    authority_host: str | None = None
    """Entra ID's host; default `https://login.microsoftonline.com/` (sim: the simulated Entra)."""
    oidc_issuer: str | None = None
    """The cluster's OIDC issuer URL (`az aks show --query oidcIssuerProfile.issuerUrl`); tokens must name it."""
    service_accounts: tuple[NamespacedName, ...] = ()
    """`namespace/name` of the ServiceAccounts whose chain to walk; empty means every one configured for
    Workload Identity."""
    key_vaults: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Vault name → the secret names to read; empty means the vaults and objects of the
    SecretProviderClasses the ServiceAccounts' pods mount."""
    service_bus_namespace: str | None = None
    service_bus_queue: str | None = None


class SloSettings(_Strict):
    """The load area's objectives; each one set is its own check. Defaults: MLPerf Inference's Server scenario
    (TTFT 2 s; TPOT 200 ms, the 70B-class figure), no server errors, 99 % of requests meeting every SLO."""

    ttft_p95_ms: PositiveFloat | None = 2000
    itl_p95_ms: PositiveFloat | None = 200
    e2e_p99_ms: PositiveFloat | None = None
    error_rate_max: Annotated[float, Field(ge=0, le=1)] | None = 0.0
    min_output_tokens_per_s: PositiveFloat | None = None
    attainment_min: Annotated[float, Field(gt=0, le=1)] | None = 0.99
    breakeven_requests_per_day_max: PositiveFloat | None = None
    """Fail when self-hosting breaks even against `[load] api_model` only above this many requests/day."""


class LoadValidity(_Strict):
    """When the client's numbers cannot be trusted (the run is an error, not a pass or a latency failure)."""

    min_concurrency_fraction: Annotated[float, Field(gt=0, le=1)] = 0.95
    max_schedule_lag_p99_ms: PositiveFloat = 5.0
    max_loop_lag_p99_ms: PositiveFloat = 5.0
    max_client_cpu_fraction: Annotated[float, Field(gt=0, le=1)] = 0.8
    max_start_late_s: PositiveFloat = 1.0


class LoadSettings(_Strict):
    """The load shape per endpoint. Defaults: the seed's "customer support chat" row (p95 prompt 500 tokens,
    p95 completion 300, peak concurrency 32), closed loop, 60 measured seconds."""

    concurrency: Annotated[int, Field(ge=1)] | None = None
    """Closed loop: streams always in flight (32 when neither concurrency nor rate is given)."""
    rate: PositiveFloat | None = None
    """Open loop: arrivals per second (instead of concurrency)."""
    arrival: Literal["poisson", "constant"] = "poisson"
    duration_s: PositiveFloat = 60
    requests: Annotated[int, Field(ge=1)] | None = None
    prompt_tokens: Annotated[int, Field(ge=1)] = 500
    max_tokens: Annotated[int, Field(ge=1)] = 300
    endpoint: Literal["chat", "completions"] = "chat"
    workers: Annotated[int, Field(ge=1)] = 1
    """More than 1: the client runs in the cluster as an Indexed Job of this many pods."""
    image: str | None = None
    """The worker image (pytest-aksai installed) for workers > 1; default: the simulated cluster's own."""
    api_model: str = "gpt-4o-mini"
    """The API the break-even is computed against (a name of the sizing catalog's `apis`)."""
    validity: LoadValidity = Field(default_factory=LoadValidity)

    @model_validator(mode="after")
    def _one_shape(self) -> LoadSettings:
        if self.concurrency is not None and self.rate is not None:
            raise ValueError("give either concurrency (closed loop) or rate (open loop), not both")
        return self

    @property
    def closed_loop_concurrency(self) -> int | None:
        if self.rate is not None:
            return None
        return self.concurrency if self.concurrency is not None else 32


class ClusterProfile(_Strict):
    provider: Provider
    kubeconfig: Path | None = None
    context: str | None = None
    namespace: str | None = None
    """Namespace of the workloads under test; None searches every namespace."""
    allow: tuple[SafetyClass, ...] = ()
    create: bool = False
    """kind only: create a throwaway kind cluster for the run (through pytest-kubernetes), deleted at the end."""
    timeout_scale: PositiveFloat = 1.0
    timeouts: Timeouts = Field(default_factory=Timeouts)
    sim: SimSettings = Field(default_factory=SimSettings)
    workspaces: tuple[NamespacedName, ...] = ()
    """`namespace/name` of the KAITO Workspaces to check; empty means every Workspace found."""
    nodepools: tuple[str, ...] = ()
    """Names of the NodePools the `nap` suite checks; empty means every NodePool. The GPU probe runs on the first
    GPU NodePool of the list."""
    probe_sku: str | None = None
    """The VM size the `nap` suite's GPU probe asks for; None lets NAP choose the cheapest a NodePool allows."""
    consolidate_after_max: PositiveFloat = 1800
    """The idle budget (cluster seconds): a NodePool's consolidateAfter may not exceed it."""
    idle_cost_per_day_max: NonNegativeFloat | None = None
    """USD per day the GPU nodes may cost with no inference traffic; None: the idle-cost check skips."""
    scaled_objects: tuple[NamespacedName, ...] = ()
    """`namespace/name` of the ScaledObjects or HTTPScaledObjects to check; empty means every scaler found."""
    endpoint_route: Literal["auto", "port-forward", "service-proxy"] = "auto"
    """How to reach model servers without a direct URL: port-forward, the service proxy, or port-forward falling
    back to the service proxy."""
    endpoints: dict[NamespacedName, str] = Field(default_factory=dict)
    """Workspace (`namespace/name`) → a direct base URL, bypassing port-forward and the service proxy."""
    client_namespaces: tuple[DnsLabel, ...] = ()
    """Namespaces whose pods call the model servers (the network path checks); empty: each model's own."""
    azure: AzureSettings = Field(default_factory=AzureSettings)
    slos: SloSettings = Field(default_factory=SloSettings)
    load: LoadSettings = Field(default_factory=LoadSettings)
    sizing: SizingProfile = Field(default_factory=SizingProfile)
    readonly: bool = False
    """Read-only runs on this cluster (`--aksai-readonly`): only reads reach its API server."""
    absent: tuple[str, ...] = ()
    """Areas this cluster lacks on purpose: their checks skip (naming this key) instead of failing on
    finding nothing to check."""

    def unbuilt_area_keys(self) -> dict[str, str]:
        """Profile keys set for areas that have no checks yet (key → area): accepted, but they do nothing."""
        return {key: area for key, area in AREA_KEYS.items() if key in self.model_fields_set}

    @field_validator("absent")
    @classmethod
    def _known_areas(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [v for v in values if v not in AREA_BY_NAME]
        if unknown:
            raise ValueError(
                f"unknown area(s) {', '.join(map(repr, unknown))}; valid areas are {', '.join(a.name for a in AREAS)}"
            )
        return values

    @model_validator(mode="after")
    def _create_needs_kind(self) -> ClusterProfile:
        if self.create and self.provider != "kind":
            raise ValueError(f'create = true works only with provider = "kind", not {self.provider!r}')
        return self


BUILTIN_PROFILES: dict[str, ClusterProfile] = {
    BUILTIN_PROFILE: ClusterProfile(
        provider="sim",
        allow=("disruptive", "costly"),
        # A smoke shape so `-m load` takes seconds: the lab's Workspace holds 12 sequences, and a 300-token
        # completion lasts ~10 s at the T4's ~34 ms per decode step.
        load=LoadSettings(concurrency=8, duration_s=10, max_tokens=64),
        idle_cost_per_day_max=15.0,
        # The default lab's queue, as a user's profile names theirs.
        azure=AzureSettings(
            service_bus_namespace="sb-aksai-lab.servicebus.windows.net",
            service_bus_queue="inference-requests",
        ),
    ),
}


class ProfileSet(BaseModel):
    """The profiles known for this run, and where they came from."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    profiles: dict[str, ClusterProfile]
    source: Path | None
    table_prefix: str
    """`clusters` in aksai.toml, `tool.aksai.clusters` in pyproject.toml."""

    def get(self, name: str) -> ClusterProfile:
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles))
            where = f"in {self.source}" if self.source else "(no aksai.toml or [tool.aksai] found)"
            raise ProfileError(
                f"Unknown cluster profile {name!r} given to --aksai-cluster: known profiles {where} are: {known}. "
                f"Use one of those, or add a table [{self.table_prefix}.{name}] with at least "
                f'provider = "aks" | "kind" | "sim" to {self.source or "aksai.toml"}.'
            ) from None


def _line_of(text: str, table: str, key: str | None) -> int | None:
    """Best-effort line of `key` inside `[table]` (tomllib gives no positions for valid documents)."""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[\s*" + re.escape(table).replace(r"\.", r"\s*\.\s*") + r"\s*\]\s*(#.*)?$")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        return None
    if key is None:
        return start + 1
    key_re = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
    for i in range(start + 1, len(lines)):
        if lines[i].lstrip().startswith("["):
            break
        if key_re.match(lines[i]):
            return i + 1
    return start + 1


def _first_line_defining(text: str, dotted: str) -> int | None:
    """The first line that opens a table at or below `dotted`, or assigns it as a key."""
    name = re.escape(dotted).replace(r"\.", r"\s*\.\s*")
    pattern = re.compile(r"^\s*(\[+\s*" + name + r"\s*[\].]|" + name + r"\s*=)")
    return next((i + 1 for i, line in enumerate(text.splitlines()) if pattern.match(line)), None)


def _describe_validation_error(
    exc: ValidationError, *, path: Path, text: str, table: str, profile: str
) -> str:
    problems: list[str] = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"] if not isinstance(part, int)]
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        sub_table = table if len(loc) <= 1 else f"{table}.{'.'.join(loc[:-1])}"
        line = _line_of(text, sub_table, loc[-1] if loc else None) or _line_of(
            text, table, loc[0] if loc else None
        )
        where = f"{path}:{line}" if line else str(path)
        if err["type"] == "extra_forbidden":
            valid = ", ".join(_valid_keys(ClusterProfile, loc[:-1]))
            problems.append(
                f"{where}: unknown key {key!r} in profile {profile!r}; valid keys there are: {valid}. "
                "Remove it or fix its spelling."
            )
        elif err["type"] == "missing":
            problems.append(
                f"{where}: profile {profile!r} is missing the required key {key!r}; "
                'add for example provider = "aks" (valid: aks, kind, sim).'
            )
        elif err["type"] == "string_pattern_mismatch":
            problems.append(
                f"{where}: key {key!r} of profile {profile!r} has the bad value {err.get('input')!r}: expected "
                'namespace/name (lowercase DNS names), e.g. "inference/workspace-phi4-mini".'
            )
        else:
            bad = err.get("input")
            problems.append(
                f"{where}: key {key!r} of profile {profile!r} has the bad value {bad!r}: {err['msg']}."
            )
    return " ".join(problems)


def _valid_keys(model: type[BaseModel], loc: list[str]) -> list[str]:
    current: type[BaseModel] = model
    for part in loc:
        field = current.model_fields.get(part)
        annotation = field.annotation if field else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            current = annotation
        else:
            break
    return sorted(current.model_fields)


def _read_toml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(
            f"The aksai config file {path} does not exist (given by --aksai-config, AKSAI_CONFIG or the "
            "aksai_config ini key). Point it at an existing aksai.toml or pyproject.toml, or drop it to use "
            "aksai.toml in the rootdir."
        ) from None
    except OSError as exc:
        raise ProfileError(f"The aksai config file {path} cannot be read: {exc.strerror}.") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        line = getattr(exc, "lineno", None) or (int(found.group(1)) if found else None)
        where = f"{path}:{line}" if line else str(path)
        raise ProfileError(
            f"{where}: the aksai config file is not valid TOML ({exc}). Fix the syntax at that line; "
            "see docs/aksai.example.toml for a working example."
        ) from None


def load_profiles(config_path: Path | None, rootdir: Path) -> ProfileSet:
    """Read profiles from `config_path`, else `aksai.toml` in rootdir, else `[tool.aksai]` in pyproject.toml."""
    candidates: list[Path]
    if config_path is not None:
        candidates = [config_path]
    else:
        candidates = [p for p in (rootdir / "aksai.toml", rootdir / "pyproject.toml") if p.is_file()]
    for path in candidates:
        data, text = _read_toml(path)
        if path.name == "pyproject.toml":
            tool = data.get("tool", {})
            if "aksai" not in tool:
                if config_path is not None:
                    raise ProfileError(
                        f"{path} has no [tool.aksai] table. Add [tool.aksai.clusters.<name>] tables to it, "
                        "or point --aksai-config at an aksai.toml."
                    )
                continue
            return _parse_document(tool["aksai"], path, text, prefix="tool.aksai")
        return _parse_document(data, path, text, prefix="")
    return ProfileSet(profiles=dict(BUILTIN_PROFILES), source=None, table_prefix="clusters")


def _parse_document(doc: dict[str, Any], path: Path, text: str, *, prefix: str) -> ProfileSet:
    top = f"{prefix}." if prefix else ""
    unknown = sorted(set(doc) - {"clusters"})
    if unknown:
        line = _first_line_defining(text, f"{top}{unknown[0]}")
        where = f"{path}:{line}" if line else str(path)
        raise ProfileError(
            f"{where}: unknown table or key {top}{unknown[0]!r}; the only valid one is {top}clusters, "
            f"holding one table per cluster profile ([{top}clusters.<name>])."
        )
    clusters = doc.get("clusters", {})
    if not isinstance(clusters, dict):
        raise ProfileError(f"{path}: {top}clusters must be a table of profiles, got {clusters!r}.")
    profiles = dict(BUILTIN_PROFILES)
    for name, raw in clusters.items():
        table = f"{top}clusters.{name}"
        if not isinstance(raw, dict):
            raise ProfileError(f"{path}: [{table}] must be a table, got {raw!r}.")
        try:
            profile = ClusterProfile.model_validate(raw)
        except ValidationError as exc:
            raise ProfileError(
                _describe_validation_error(exc, path=path, text=text, table=table, profile=name)
            ) from None
        profiles[name] = _with_paths_resolved(profile, path.parent)
    return ProfileSet(profiles=profiles, source=path, table_prefix=f"{top}clusters")


def _with_paths_resolved(profile: ClusterProfile, base: Path) -> ClusterProfile:
    if profile.kubeconfig is None:
        return profile
    kubeconfig = profile.kubeconfig.expanduser()
    if not kubeconfig.is_absolute():
        kubeconfig = base / kubeconfig
    return profile.model_copy(update={"kubeconfig": kubeconfig})
