"""The catalog of vLLM's command-line arguments, and a check of a `vllm:` map the way vLLM's parser reads it.

KAITO passes each key of an inference ConfigMap's `vllm:` map to vLLM as `--<key> <str(value)>`; vLLM's
argument parser (an `argparse` parser that also accepts `_` for `-`) then refuses a flag it does not know,
a value of the wrong type or outside the choices, and its config classes refuse a value out of range. The
catalog (`vllm_engine_args.yaml`, with its source commit and vLLM version) is data; the check and the
simulated vLLM both read it, so the sim refuses exactly what the check flags.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pytest_aksai.sizing._catalog import _read_package_yaml

ArgType = Literal["int", "float", "str", "bool", "json"]
Problem = Literal["unknown", "type", "choice", "range"]


@dataclass(frozen=True)
class EngineArg:
    name: str
    type: ArgType
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    gt: float | None = None

    def bounds(self) -> str:
        parts = []
        if self.gt is not None:
            parts.append(f"> {self.gt:g}")
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        return " and ".join(parts)


@dataclass(frozen=True)
class EngineArgProblem:
    """One key of a `vllm:` map that vLLM refuses: which, why, in vLLM's words, and the closest known flag."""

    key: str
    problem: Problem
    message: str
    """What vLLM says (its argparse error, or the range its config enforces)."""
    closest: str | None = None

    @property
    def exits_with(self) -> int:
        """vLLM's exit code: argparse errors exit 2; a config error is a ValueError traceback, exit 1."""
        return 1 if self.problem == "range" else 2


@dataclass(frozen=True)
class EngineArgCatalog:
    version: str
    source: str
    args: Mapping[str, EngineArg]

    def flag(self, key: str) -> EngineArg | None:
        """The argument a `vllm:` key names (vLLM's parser reads `max_model_len` as `max-model-len`)."""
        return self.args.get(key.strip().lstrip("-").replace("_", "-"))

    def closest(self, key: str) -> str | None:
        name = key.strip().lstrip("-").replace("_", "-")
        found = difflib.get_close_matches(name, list(self.args), n=1, cutoff=0.6)
        return found[0] if found else None

    def check(self, vllm: Mapping[str, Any]) -> list[EngineArgProblem]:
        """Every key of the map vLLM would refuse, in the map's order."""
        problems: list[EngineArgProblem] = []
        unknown = [str(k) for k in vllm if self.flag(str(k)) is None]
        if unknown:
            # argparse reports every unrecognized argument at once, with their values.
            listed = " ".join(f"--{k} {_as_cli(vllm[k])}" for k in unknown)
            for key in unknown:
                problems.append(
                    EngineArgProblem(key, "unknown", f"unrecognized arguments: {listed}", self.closest(key))
                )
        for key, value in vllm.items():
            arg = self.flag(str(key))
            if arg is not None:
                problem = _check_value(arg, value)
                if problem is not None:
                    problems.append(problem)
        return problems


def _as_cli(value: Any) -> str:
    """What KAITO puts on the command line for a value: `str(value)`."""
    return str(value)


def _check_value(arg: EngineArg, value: Any) -> EngineArgProblem | None:
    text = _as_cli(value)
    number: float | None = None
    if arg.type == "int":
        try:
            number = int(text)
        except ValueError:
            return EngineArgProblem(arg.name, "type", f"argument --{arg.name}: invalid int value: {text!r}")
    elif arg.type == "float":
        try:
            number = float(text)
        except ValueError:
            return EngineArgProblem(arg.name, "type", f"argument --{arg.name}: invalid float value: {text!r}")
    elif arg.type == "json":
        if not isinstance(value, Mapping | list):
            try:
                json.loads(text)
            except ValueError:
                return EngineArgProblem(
                    arg.name, "type", f"argument --{arg.name}: invalid loads value: {text!r}"
                )
    elif arg.type == "bool" and text.lower() not in ("true", "false"):
        return EngineArgProblem(
            arg.name, "type", f"argument --{arg.name} is a switch: give true or false, not {text!r}"
        )
    if arg.choices and text not in arg.choices:
        choices = ", ".join(repr(c) for c in arg.choices)
        return EngineArgProblem(
            arg.name,
            "choice",
            f"argument --{arg.name}: invalid choice: {text!r} (choose from {choices})",
            difflib.get_close_matches(text, list(arg.choices), n=1, cutoff=0.5)[0]
            if difflib.get_close_matches(text, list(arg.choices), n=1, cutoff=0.5)
            else None,
        )
    if number is not None:
        below = (arg.min is not None and number < arg.min) or (arg.gt is not None and number <= arg.gt)
        above = arg.max is not None and number > arg.max
        if below or above:
            return EngineArgProblem(
                arg.name, "range", f"--{arg.name} {text} is out of range: vLLM requires {arg.bounds()}"
            )
    return None


@cache
def vllm_engine_args() -> EngineArgCatalog:
    """The catalog of vLLM's server and engine arguments (`vllm_engine_args.yaml`)."""
    data = _read_package_yaml("vllm_engine_args.yaml")
    args: dict[str, EngineArg] = {}
    for name, spec in (data.get("args") or {}).items():
        args[str(name)] = EngineArg(
            name=str(name),
            type=spec["type"],
            choices=tuple(str(c) for c in spec.get("choices") or ()),
            min=spec.get("min"),
            max=spec.get("max"),
            gt=spec.get("gt"),
        )
    return EngineArgCatalog(
        version=str(data["version"]), source=" ".join(str(data["source"]).split()), args=args
    )
