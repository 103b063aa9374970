"""The table of knobs: every `--aksai-*` option with its ini key and environment variable.

Kept apart from the settings' resolution (pydantic profiles) so that registering the options, which pytest
does on every run of every project the plugin is installed in, imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

BUILTIN_PROFILE = "sim"


@dataclass(frozen=True)
class _Knob:
    noun: str
    help: str
    kind: str = "string"
    """string | path | float | bool | list (comma separated) | multi (repeatable)."""
    metavar: str | None = None

    @property
    def option(self) -> str:
        return f"--aksai-{self.noun}"

    @property
    def ini(self) -> str:
        return "aksai_" + self.noun.replace("-", "_")

    @property
    def env(self) -> str:
        return "AKSAI_" + self.noun.replace("-", "_").upper()

    @property
    def dest(self) -> str:
        return self.ini


KNOBS: tuple[_Knob, ...] = (
    _Knob(
        "cluster",
        f"cluster profile to test (default: {BUILTIN_PROFILE}, the embedded simulated cluster)",
        metavar="NAME",
    ),
    _Knob(
        "config",
        "profile file (default: aksai.toml in the rootdir, else [tool.aksai] in pyproject.toml)",
        "path",
        "PATH",
    ),
    _Knob(
        "kubeconfig",
        "kubeconfig file for a live cluster (default: the profile's, else $KUBECONFIG or ~/.kube/config)",
        "path",
        "PATH",
    ),
    _Knob(
        "context",
        "kubeconfig context to use (default: the profile's, else the current context)",
        metavar="NAME",
    ),
    _Knob(
        "namespace",
        "namespace of the workloads under test (default: the profile's, else every namespace)",
        metavar="NAME",
    ),
    _Knob("timeout-scale", "multiply every wait budget by this factor (default: 1.0)", "float", "FLOAT"),
    _Knob(
        "allow",
        "safety classes allowed on a live cluster, comma separated: disruptive,costly "
        "(always allowed on sim)",
        "list",
        "CLASSES",
    ),
    _Knob("keep", "keep the namespaces and objects the run created, and list them, for debugging", "bool"),
    _Knob(
        "report",
        "write the run report into this folder: report.json, report.html, evidence of failed checks",
        "path",
        "DIR",
    ),
    _Knob(
        "report-all",
        "with --aksai-report: write the evidence of every check, not only of failed ones",
        "bool",
    ),
    _Knob(
        "manifests",
        "static mode: check the YAML manifests in this file or folder, no cluster needed",
        "path",
        "PATH",
    ),
    _Knob("strict", "a check's warnings become failures", "bool"),
    _Knob(
        "readonly",
        "read-only run: send no request that creates, changes or deletes anything (checks that would are "
        "skipped); the identity's access is reviewed when connecting",
        "bool",
    ),
    _Knob(
        "load-workers",
        "load suite: run the load client as an Indexed Job of N pods in the cluster (default: the profile's "
        "[load] workers, else 1: this machine)",
        metavar="N",
    ),
    _Knob(
        "cleanup-timeout",
        "on Ctrl-C or SIGTERM, wall seconds to spend removing what the run created before giving up and "
        "listing what is left (default: 60)",
        "float",
        "SECONDS",
    ),
    _Knob(
        "expiry",
        "how long what the run creates may outlive a dead run before a later run or the janitor reaps it, "
        "e.g. 90s, 30m, 6h (default: 6h)",
        metavar="DURATION",
    ),
    _Knob(
        "sim-fault",
        "simulated cluster only: start it with this named fault (repeatable; NAME or NAME=VALUE)",
        "multi",
        "NAME",
    ),
)
KNOB_BY_NOUN = {k.noun: k for k in KNOBS}


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("aksai", "pytest-aksai: conformance of AKS LLM inference clusters")
    for knob in KNOBS:
        if knob.kind == "bool":
            group.addoption(knob.option, action="store_true", default=None, dest=knob.dest, help=knob.help)
            parser.addini(knob.ini, f"{knob.help} [{knob.option}]", type="bool", default=None)
        elif knob.kind == "multi":
            group.addoption(
                knob.option,
                action="append",
                default=None,
                dest=knob.dest,
                metavar=knob.metavar,
                help=knob.help,
            )
            parser.addini(knob.ini, f"{knob.help} [{knob.option}]", type="linelist", default=[])
        else:
            group.addoption(
                knob.option,
                action="store",
                default=None,
                dest=knob.dest,
                metavar=knob.metavar,
                help=knob.help,
            )
            parser.addini(knob.ini, f"{knob.help} [{knob.option}]", default=None)
