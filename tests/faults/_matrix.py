"""The fault × check matrix's runner: the bundled suites in pytest processes of their own, one case a run.

A case is a simulated lab (healthy, or with named faults) and the suites run against it; its verdicts come from
the inner run's report. Every test module under `tests/faults/` declares its cases in a module-level `CASES`
dict, and names which of its tests need which case by parametrizing them with `case` (or `fault`), or through
a module-level `CASE_TESTS` dict (case → test name prefix). The session's `matrix` fixture (conftest) starts
every case the selected tests need, from all modules at once, a few at a time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUITES = Path(__file__).resolve().parents[2] / "suites"
CONCURRENT_RUNS = 4
"""The suites mostly wait on the simulated cluster's (compressed) clock and the model server's token
latency, so runs overlap well."""
RUN_TIMEOUT_S = 300

Verdicts = dict[str, dict[str, Any]]
"""Check name (the test function, without parameters) → its entry in the inner run's report."""


@dataclass(frozen=True)
class Case:
    faults: tuple[str, ...] = ()
    strict: bool = False
    route: str = "auto"
    suites: tuple[str, ...] = ("test_kaito.py", "test_api_surface.py")
    """Suite files (under `suites/`) the inner run copies and runs."""
    time_scale: int = 600
    scenario: str = ""
    """The sim scenario of the inner run (empty: default)."""
    profile: str = ""
    """TOML lines added to the inner run's `[clusters.fast]` table (after `provider` and `endpoint_route`)."""
    args: tuple[str, ...] = ()
    """Extra command-line arguments of the inner run (e.g. `-m`, `keda`)."""
    scenario: str = ""
    """A scenario YAML (a path) for the inner run's simulated lab: the lab broken from outside, as an operator
    breaks it with kubectl (a misspelt flag, a taint, a Service edit); empty: the default lab."""

    def profile_toml(self) -> str:
        lines = [
            "[clusters.fast]",
            'provider = "sim"',
            f'endpoint_route = "{self.route}"',
            self.profile.strip(),
            "[clusters.fast.sim]",
            f"time_scale = {self.time_scale}",
            f"scenario = {json.dumps(self.scenario)}" if self.scenario else "",
        ]
        return "\n".join(line for line in lines if line) + "\n"


def run_suites(folder: Path, case: Case) -> Verdicts:
    """Run the case's suites in a pytest process of their own against a new simulated lab."""
    for name in case.suites:
        shutil.copy(SUITES / name, folder / name)
    (folder / "aksai.toml").write_text(case.profile_toml())
    args = [
        sys.executable,
        "-m",
        "pytest",
        "--aksai-cluster=fast",
        "--aksai-report=report",
        "-p",
        "no:randomly",
    ]
    for fault in case.faults:
        args += ["--aksai-sim-fault", fault]
    if case.strict:
        args.append("--aksai-strict")
    args += case.args
    run = subprocess.run(args, cwd=folder, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    report = folder / "report" / "report.json"
    assert report.is_file(), f"the inner run wrote no report (exit {run.returncode}):\n{run.stdout[-3000:]}"
    data = json.loads(report.read_text())
    verdicts: Verdicts = {}
    for check in data["checks"]:
        name = check["nodeid"].split("::")[-1].split("[")[0]
        # A check that runs once per Workspace keeps its worst verdict.
        if _RANK.get(check["outcome"], 0) >= _RANK.get(verdicts.get(name, {}).get("outcome", ""), -1):
            verdicts[name] = check
    return verdicts


_RANK = {"skipped": 0, "passed": 1, "failed": 2, "error": 3}


Matrix = dict[tuple[str, str], Future[Verdicts]]
"""(test module name, case name) → the verdicts of that case, running in the background."""


def failing(verdicts: Verdicts) -> dict[str, str]:
    """Check name → message of every check that failed or errored."""
    return {name: c["message"] for name, c in verdicts.items() if c["outcome"] in ("failed", "error")}
