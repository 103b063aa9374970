"""Options, ini keys and environment variables, resolved once into a frozen `Settings` kept in `config.stash`.

Resolution order for every knob: command-line option > `AKSAI_*` environment variable > ini key > cluster
profile > built-in default. The source of each value is remembered and shown in the report header.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_aksai._errors import AksaiError
from pytest_aksai._knobs import BUILTIN_PROFILE, KNOB_BY_NOUN
from pytest_aksai._profiles import (
    SAFETY_CLASSES,
    ClusterProfile,
    ProfileError,
    ProfileSet,
    load_profiles,
)
from pytest_aksai._public import public
from pytest_aksai.sim.contract import KUBECONFIG_CONTEXT


class SettingsError(AksaiError):
    """A knob has a bad value; the message is the whole user-facing paragraph."""


ABSENT_ON_PURPOSE = "absent on purpose"
"""In the skip reason of a check whose area the profile declares absent (see `Settings.absence_reason`)."""


@public
@dataclass(frozen=True)
class Settings:
    """The resolved settings of a run (the `aksai_settings` fixture): the profile, every knob's value and
    where it came from, and the wait budgets in cluster seconds (`timeout("workspace_ready")`)."""

    __module__ = "pytest_aksai"

    cluster: str
    profile: ClusterProfile
    profiles: ProfileSet
    kubeconfig: Path | None
    context: str | None
    namespace: str | None
    timeout_scale: float
    allow: frozenset[str]
    keep: bool
    report: Path | None
    report_all: bool
    manifests: Path | None
    strict: bool
    sim_faults: tuple[str, ...]
    run_id: str
    cleanup_timeout: float = 60.0
    """Wall seconds cleanup may take after Ctrl-C or SIGTERM."""
    expiry_s: float = 6 * 3600.0
    """Seconds what the run creates may outlive it before another run reaps it."""
    sources: Mapping[str, str] = field(default_factory=dict)
    """Knob noun → where its value came from (`option`, `env AKSAI_X`, `ini aksai_x`, `profile NAME`, `default`)."""
    readonly: bool = False
    """Send only reads (get, list, watch) and self access reviews; every check that would write skips."""

    @property
    def provider(self) -> str:
        return self.profile.provider

    @property
    def is_sim(self) -> bool:
        return self.profile.provider == "sim"

    def allows(self, safety_class: str) -> bool:
        return self.is_sim or safety_class in self.allow

    def timeout(self, kind: str) -> float:
        """The budget in cluster seconds for a kind of wait (a key of the profile's `timeouts` table)."""
        return float(getattr(self.profile.timeouts, kind)) * self.timeout_scale

    def refusal(self, safety_class: str) -> str:
        """Why a check of that safety class is skipped on this cluster, and the knobs that allow it."""
        what = "changes shared cluster state" if safety_class == "disruptive" else "provisions GPU capacity"
        source = self.profiles.source or "aksai.toml"
        table = f"{self.profiles.table_prefix}.{self.cluster}"
        return (
            f"{safety_class} check refused on cluster {self.cluster!r}: it {what}. Allow it with "
            f'allow = ["{safety_class}"] in [{table}] of {source}, or --aksai-allow {safety_class}'
        )

    def is_absent(self, area: str) -> bool:
        """The profile says this cluster lacks the area on purpose (its `absent` list)."""
        return area in self.profile.absent

    def absence_reason(self, area: str) -> str:
        table = f"{self.profiles.table_prefix}.{self.cluster}"
        return (
            f"the {area} area is {ABSENT_ON_PURPOSE} on cluster {self.cluster!r} (absent = [..., {area!r}] in "
            f"[{table}] of {self.profiles.source or 'the built-in profiles'})"
        )


_STASH_KEY = pytest.StashKey[Settings]()


def settings_of(config: pytest.Config) -> Settings:
    return config.stash[_STASH_KEY]


def new_run_id(shared: str | None = None) -> str:
    """8 DNS-safe characters; shared by every xdist worker of one run (and its controller)."""
    shared = shared or os.environ.get("PYTEST_XDIST_TESTRUNUID")
    seed = shared if shared else f"{time.time_ns()}-{secrets.token_hex(8)}"
    return "r" + hashlib.sha256(seed.encode()).hexdigest()[:7]


class _Resolver:
    def __init__(self, config: pytest.Config, env: Mapping[str, str]) -> None:
        self._config = config
        self._env = env
        self.sources: dict[str, str] = {}

    def raw(self, noun: str) -> tuple[Any, str] | None:
        knob = KNOB_BY_NOUN[noun]
        value = self._config.getoption(knob.dest)
        if value is not None:
            return value, "option"
        if knob.env in self._env and self._env[knob.env] != "":
            return self._env[knob.env], f"env {knob.env}"
        ini_value = self._config.getini(knob.ini)
        if ini_value not in (None, "", []):
            return ini_value, f"ini {knob.ini}"
        return None

    def get(
        self, noun: str, convert: Callable[[Any, str], Any], *, profile: tuple[Any, str] | None, default: Any
    ) -> Any:
        found = self.raw(noun)
        if found is not None:
            value, source = found
            result = convert(value, source)
        elif profile is not None and profile[0] not in (None, (), []):
            result, source = profile
        else:
            result, source = default, "default"
        self.sources[noun] = source
        return result


def _bad(noun: str, source: str, value: object, valid: str, fix: str) -> SettingsError:
    knob = KNOB_BY_NOUN[noun]
    return SettingsError(
        f"{knob.option} (from {source}) has the bad value {value!r}; valid values are {valid}. {fix}"
    )


def _to_float(
    noun: str,
    valid: str = "a positive number such as 0.5, 1 or 3",
    fix: str = "Use a larger factor on slow clusters, a smaller one to fail fast.",
) -> Callable[[Any, str], float]:
    def convert(value: Any, source: str) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not number > 0 or number == float("inf"):
            raise _bad(
                noun,
                source,
                value,
                valid,
                fix,
            )
        return number

    return convert


def _to_workers(value: Any, source: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number < 1:
        raise _bad("load-workers", source, value, "a whole number ≥ 1", "Give e.g. --aksai-load-workers 3 "
                   "(1 runs the load client on this machine, more run it as an Indexed Job in the cluster).")  # fmt: skip
    return number


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _to_duration(value: Any, source: str) -> float:
    import re

    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(value))
    seconds = float(found.group(1)) * _UNITS[found.group(2) or "s"] if found else 0.0
    if not seconds > 0:
        raise _bad("expiry", source, value, "a positive duration such as 90s, 30m, 6h or 2d",
                   "Give how long a dead run's leftovers may stay before they are reaped.")  # fmt: skip
    return seconds


def _to_bool(noun: str) -> Callable[[Any, str], bool]:
    def convert(value: Any, source: str) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise _bad(noun, source, value, "1/true/yes/on or 0/false/no/off", "Set it to one of those.")

    return convert


def _to_path(value: Any, source: str) -> Path:
    return Path(str(value)).expanduser()


def _to_str(value: Any, source: str) -> str:
    return str(value).strip()


def _to_allow(value: Any, source: str) -> frozenset[str]:
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    classes = frozenset(str(item).strip() for item in items if str(item).strip())
    unknown = sorted(classes - set(SAFETY_CLASSES))
    if unknown:
        raise _bad(
            "allow",
            source,
            ",".join(sorted(classes)),
            "a comma-separated subset of disruptive,costly",
            f"Remove {', '.join(unknown)}.",
        )
    return classes


def _to_faults(value: Any, source: str) -> tuple[str, ...]:
    from pytest_aksai.sim.contract import UnknownFaultError, parse_fault

    items = value if isinstance(value, list | tuple) else str(value).split(",")
    faults = tuple(str(item).strip() for item in items if str(item).strip())
    for fault in faults:
        try:
            parse_fault(fault)
        except UnknownFaultError as exc:
            raise SettingsError(
                f"--aksai-sim-fault (from {source}) has the bad value {fault!r}: {exc}. "
                "Run `python -m pytest_aksai.sim faults` for what each one breaks."
            ) from None
    return faults


def resolve(config: pytest.Config, env: Mapping[str, str] | None = None) -> Settings:
    """Resolve every knob; raises `SettingsError` or `ProfileError` with a user-facing paragraph."""
    resolver = _Resolver(config, os.environ if env is None else env)
    rootdir = Path(str(config.rootpath))
    config_path = resolver.get(
        "config", lambda v, s: _absolute(_to_path(v, s), rootdir), profile=None, default=None
    )
    profiles = load_profiles(config_path, rootdir)
    if profiles.source is not None:
        resolver.sources["config"] = f"{resolver.sources['config']}: {profiles.source}"
    cluster = resolver.get("cluster", _to_str, profile=None, default=BUILTIN_PROFILE)
    profile = profiles.get(cluster)
    from_profile = f"profile {cluster}"

    def pick(value: Any) -> tuple[Any, str]:
        return value, from_profile

    kubeconfig = resolver.get(
        "kubeconfig",
        lambda v, s: _absolute(_to_path(v, s), rootdir),
        profile=pick(profile.kubeconfig),
        default=None,
    )
    context = resolver.get("context", _to_str, profile=pick(profile.context), default=None)
    namespace = resolver.get("namespace", _to_str, profile=pick(profile.namespace), default=None)
    timeout_scale = resolver.get(
        "timeout-scale",
        _to_float("timeout-scale"),
        profile=pick(profile.timeout_scale if profile.timeout_scale != 1.0 else None),
        default=1.0,
    )
    allow = resolver.get(
        "allow", _to_allow, profile=pick(frozenset(profile.allow) or None), default=frozenset()
    )
    keep = resolver.get("keep", _to_bool("keep"), profile=None, default=False)
    report = resolver.get(
        "report", lambda v, s: _absolute(_to_path(v, s), rootdir), profile=None, default=None
    )
    report_all = resolver.get("report-all", _to_bool("report-all"), profile=None, default=False)
    manifests = resolver.get(
        "manifests", lambda v, s: _absolute(_to_path(v, s), rootdir), profile=None, default=None
    )
    strict = resolver.get("strict", _to_bool("strict"), profile=None, default=False)
    readonly = resolver.get(
        "readonly", _to_bool("readonly"), profile=pick(profile.readonly or None), default=False
    )
    sim_faults = resolver.get("sim-fault", _to_faults, profile=pick(profile.sim.faults or None), default=())
    if sim_faults and profile.provider != "sim":
        raise SettingsError(
            f"--aksai-sim-fault (from {resolver.sources['sim-fault']}) applies only to a simulated cluster, "
            f"but profile {cluster!r} has provider {profile.provider!r}. Drop the fault, or use "
            f"--aksai-cluster={BUILTIN_PROFILE}."
        )
    workers = resolver.get(
        "load-workers",
        _to_workers,
        profile=pick(profile.load.workers if profile.load.workers != 1 else None),
        default=1,
    )
    if workers != profile.load.workers:
        profile = profile.model_copy(update={"load": profile.load.model_copy(update={"workers": workers})})
    cleanup_timeout = resolver.get(
        "cleanup-timeout",
        _to_float(
            "cleanup-timeout",
            "a positive number of seconds such as 30, 60 or 300",
            "Give enough for GPU NodeClaims to go (a minute on AKS).",
        ),
        profile=None,
        default=60.0,
    )
    expiry_s = resolver.get("expiry", _to_duration, profile=None, default=6 * 3600.0)
    if manifests is not None and not manifests.exists():
        raise SettingsError(
            f"--aksai-manifests (from {resolver.sources['manifests']}) names {str(manifests)!r}, which does "
            "not exist; valid values are a YAML file or a folder of YAML files. Fix the path."
        )
    if manifests is not None:
        _check_manifests(manifests, resolver.sources["manifests"])
    return Settings(
        cluster=cluster,
        profile=profile,
        profiles=profiles,
        kubeconfig=kubeconfig,
        context=context,
        namespace=namespace,
        timeout_scale=timeout_scale,
        allow=allow,
        keep=keep,
        report=report,
        report_all=report_all,
        manifests=manifests,
        strict=strict,
        sim_faults=sim_faults,
        readonly=readonly,
        run_id=new_run_id(),
        cleanup_timeout=cleanup_timeout,
        expiry_s=expiry_s,
        sources=dict(resolver.sources),
    )


def _check_manifests(path: Path, source: str) -> None:
    """Static mode reads every YAML file: one that does not parse is a usage error naming the file and line."""
    from pytest_aksai.sizing import ManifestError, load_manifests

    try:
        load_manifests([path])
    except ManifestError as exc:
        where, problem = (exc.location, exc.problem) if exc.location else (str(path), str(exc))
        raise SettingsError(
            f"--aksai-manifests (from {source}): {where}: not valid YAML ({problem}); valid values are files of "
            "YAML documents. Fix the file at that line."
        ) from None


def _absolute(path: Path, rootdir: Path) -> Path:
    return path if path.is_absolute() else rootdir / path


def _xdist_run_uid(config: pytest.Config) -> str | None:
    """On an xdist controller: the test run's uid, fixed now so that the controller's run id (which sweeps the
    run at the end) is the one its workers derive from PYTEST_XDIST_TESTRUNUID."""
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return None
    if not getattr(config.option, "testrunuid", None):
        config.option.testrunuid = secrets.token_hex(16)
    return str(config.option.testrunuid)


def configure(config: pytest.Config) -> Settings:
    uid = _xdist_run_uid(config)
    try:
        settings = resolve(config)
        if uid is not None:
            settings = dataclasses.replace(settings, run_id=new_run_id(uid))
    except (SettingsError, ProfileError) as exc:
        if config.getoption("help", False):
            settings = resolve_for_help(config)
        else:
            raise pytest.UsageError(str(exc)) from None
    config.stash[_STASH_KEY] = settings
    return settings


def resolve_for_help(config: pytest.Config) -> Settings:
    """`pytest --help` must work even with a broken profile: fall back to the built-in one."""
    from pytest_aksai._profiles import BUILTIN_PROFILES

    profiles = ProfileSet(profiles=dict(BUILTIN_PROFILES), source=None, table_prefix="clusters")
    return Settings(
        cluster=BUILTIN_PROFILE,
        profile=profiles.get(BUILTIN_PROFILE),
        profiles=profiles,
        kubeconfig=None,
        context=None,
        namespace=None,
        timeout_scale=1.0,
        allow=frozenset(),
        keep=False,
        report=None,
        report_all=False,
        manifests=None,
        strict=False,
        sim_faults=(),
        run_id=new_run_id(),
    )


def header_lines(settings: Settings) -> list[str]:
    """The report header: every value with its source, and any profile key that does nothing yet."""
    lines = [header_line(settings)]
    unbuilt = settings.profile.unbuilt_area_keys()
    if unbuilt:
        keys = ", ".join(f"{key} ({area})" for key, area in unbuilt.items())
        lines.append(
            f"aksai: profile {settings.cluster!r} sets {keys}: keys of areas this version of pytest-aksai does "
            "not check yet; they are ignored"
        )
    return lines


def header_line(settings: Settings) -> str:
    def item(name: str, value: object, noun: str) -> str:
        return f"{name}={value} ({settings.sources.get(noun, 'default')})"

    allow = ",".join(sorted(settings.allow)) or "none"
    if settings.is_sim:
        allow = "all (sim)"
    parts = [
        item("cluster", settings.cluster, "cluster"),
        f"provider={settings.provider} (profile {settings.cluster})",
        item(
            "context", settings.context or (KUBECONFIG_CONTEXT if settings.is_sim else "current"), "context"
        ),
        item("allow", allow, "allow"),
        item("timeout-scale", settings.timeout_scale, "timeout-scale"),
    ]
    if settings.sim_faults:
        parts.append(item("sim-faults", ",".join(settings.sim_faults), "sim-fault"))
    return "aksai: " + ", ".join(parts) + f", run={settings.run_id}"
