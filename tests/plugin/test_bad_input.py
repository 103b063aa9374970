"""Every bad input a new user hits gets one paragraph naming the knob, the bad value, the valid values and the
fix; no traceback; pytest runs end with exit code 4 (usage error).

One table: the cases run here assert the exact first line; the cases another module already asserts in full
(the same text, or more than a first line: file and line, the list of known values) are referenced there, and
`test_every_referenced_case_exists` keeps the references honest. The package's own `python -m` commands end
with their documented usage exit code: 2 for `pytest_aksai.sim`, `.sizing` and `.load` (argparse's
convention, which those commands document), 4 for `pytest_aksai janitor` (it takes the plugin's knobs).
"""

from __future__ import annotations

import ast
import io
import socket
import subprocess
import sys
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Run:
    """A case run here: `how` runs it in `folder` and returns (exit code, the error's first line, all output)."""

    how: Callable[[Path], tuple[int, str, str]]
    exit: int
    first_line: str
    """Exact; `{folder}` stands for the case's folder."""


@dataclass(frozen=True)
class Elsewhere:
    """A case asserted in full by another test (module path from the repository root, test name)."""

    module: str
    test: str


def _pytest(*args: str, files: dict[str, str] | None = None) -> Callable[[Path], tuple[int, str, str]]:
    def run(folder: Path) -> tuple[int, str, str]:
        (folder / "test_never_runs.py").write_text("def test_never_runs():\n    raise AssertionError\n")
        for name, text in (files or {}).items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
        done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", *args],
                              cwd=folder, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR: ")]
        return done.returncode, (errors[0] if len(errors) == 1 else repr(errors)), done.stdout + done.stderr

    return run


def _main(module: str, *argv: str) -> Callable[[Path], tuple[int, str, str]]:
    def run(folder: Path) -> tuple[int, str, str]:
        import importlib

        main = importlib.import_module(module).main
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main([a.replace("{folder}", str(folder)) for a in argv])
            except SystemExit as exc:  # argparse's own refusals
                code = int(exc.code or 0)
        text = err.getvalue()
        return code, (text.splitlines() or [""])[0], out.getvalue() + text

    return run


def _busy_port(folder: Path) -> tuple[int, str, str]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, first, text = _main("pytest_aksai.sim.__main__", "serve", "--kubeconfig", "{folder}/kc",
                                  "--port", str(port))(folder)  # fmt: skip
    return code, first.replace(str(port), "PORT"), text


def _janitor(*argv: str, files: dict[str, str] | None = None) -> Callable[[Path], tuple[int, str, str]]:
    def run(folder: Path) -> tuple[int, str, str]:
        for name, text in (files or {}).items():
            (folder / name).write_text(text)
        done = subprocess.run([sys.executable, "-m", "pytest_aksai", "janitor", *argv], cwd=folder,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        return done.returncode, (done.stderr.splitlines() or [""])[0], done.stdout + done.stderr

    return run


BROKEN_YAML = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n"
VALID_KEYS = (
    "a positive number such as 0.5, 1 or 3. Use a larger factor on slow clusters, a smaller one to fail fast."
)
LAB = '[clusters.lab]\nprovider = "aks"\n'

CASES: dict[str, Run | Elsewhere] = {
    # --- pytest options, env, ini ---
    "timeout-scale 0": Run(_pytest("--aksai-timeout-scale=0"), 4,
        f"ERROR: --aksai-timeout-scale (from option) has the bad value '0'; valid values are {VALID_KEYS}"),
    "timeout-scale NaN": Run(_pytest("--aksai-timeout-scale=nan"), 4,
        f"ERROR: --aksai-timeout-scale (from option) has the bad value 'nan'; valid values are {VALID_KEYS}"),
    "timeout-scale negative": Elsewhere("tests/plugin/test_options.py", "test_bad_values_are_usage_errors_with_one_paragraph"),
    "timeout-scale not a number": Elsewhere("tests/plugin/test_options.py", "test_bad_values_are_usage_errors_with_one_paragraph"),
    "unknown --aksai-allow class": Elsewhere("tests/plugin/test_options.py", "test_bad_values_are_usage_errors_with_one_paragraph"),
    "unknown --aksai-sim-fault": Elsewhere("tests/plugin/test_options.py", "test_bad_values_are_usage_errors_with_one_paragraph"),
    "missing --aksai-manifests path": Run(_pytest("--aksai-manifests=nowhere/"), 4,
        "ERROR: --aksai-manifests (from option) names '{folder}/nowhere', which does not exist; valid values are "
        "a YAML file or a folder of YAML files. Fix the path."),
    "invalid YAML under --aksai-manifests": Run(_pytest("--aksai-manifests=deploy", files={"deploy/broken.yaml": BROKEN_YAML}), 4,
        "ERROR: --aksai-manifests (from option): {folder}/deploy/broken.yaml:4: not valid YAML (expected ',' or "
        "']', but got '<stream end>'); valid values are files of YAML documents. Fix the file at that line."),
    "cleanup-timeout 0": Run(_pytest("--aksai-cleanup-timeout=0"), 4,
        "ERROR: --aksai-cleanup-timeout (from option) has the bad value '0'; valid values are a positive number "
        "of seconds such as 30, 60 or 300. Give enough for GPU NodeClaims to go (a minute on AKS)."),
    "expiry not a duration": Run(_pytest("--aksai-expiry=soon"), 4,
        "ERROR: --aksai-expiry (from option) has the bad value 'soon'; valid values are a positive duration such "
        "as 90s, 30m, 6h or 2d. Give how long a dead run's leftovers may stay before they are reaped."),
    # --- aksai.toml ---
    "malformed aksai.toml": Elsewhere("tests/plugin/test_profiles.py", "test_malformed_toml_names_file_and_line"),
    "unknown key in aksai.toml": Elsewhere("tests/plugin/test_profiles.py", "test_unknown_key_names_file_line_key_and_valid_keys"),
    "unknown profile": Elsewhere("tests/plugin/test_profiles.py", "test_unknown_profile_lists_the_known_ones"),
    # --- the profile's kubeconfig ---
    "profile kubeconfig missing": Elsewhere("tests/plugin/test_connection.py", "test_missing_kubeconfig_file"),
    "profile context unknown": Elsewhere("tests/plugin/test_connection.py", "test_unknown_context_lists_known_contexts"),
    "profile token expired (401)": Elsewhere("tests/plugin/test_connection.py", "test_unauthorized"),
    # --- python -m pytest_aksai.sim serve ---
    "sim serve --time-scale 0": Run(_main("pytest_aksai.sim.__main__", "serve", "--kubeconfig", "{folder}/kc", "--time-scale", "0"), 2,
        "error: the time scale (--time-scale, time_scale=) must be a number > 0 (cluster seconds per wall "
        "second), got 0.0; use e.g. 60 for one cluster minute per wall second"),
    "sim serve --scenario nope": Run(_main("pytest_aksai.sim.__main__", "serve", "--kubeconfig", "{folder}/kc", "--scenario", "nope"), 2,
        "error: the simulated cluster failed to start: unknown scenario 'nope' (the `--scenario` option); "
        "built-in scenarios: aks-ai-lab, default, gpu, keda-gpu, or pass the path of a scenario YAML file"),
    "sim serve busy --port": Run(_busy_port, 2,
        "error: the simulated cluster could not listen on 127.0.0.1:PORT: [Errno 98] error while attempting to "
        "bind on address ('127.0.0.1', PORT): address already in use; pick another --port (0 chooses a free one)"),
    # --- python -m pytest_aksai.sizing ---
    "sizing unknown model": Elsewhere("tests/sizing/test_cli.py", "test_unknown_names_are_usage_errors"),
    "sizing unknown GPU": Elsewhere("tests/sizing/test_resolve.py", "test_an_unknown_gpu_gets_a_did_you_mean"),
    "sizing zero prompt tokens": Run(_main("pytest_aksai.sizing._cli", "recommend", "--model", "phi-4", "--p95-prompt", "0",
                                           "--p95-completion", "100", "--peak-concurrency", "10"), 2,
        "error: --p95-prompt 0: is impossible for a prompt length in tokens. Valid values: ≥ 1. Fix: pass e.g. "
        "--p95-prompt 500."),
    "sizing negative completion tokens": Run(_main("pytest_aksai.sizing._cli", "recommend", "--model", "phi-4", "--p95-prompt",
                                                   "100", "--p95-completion", "-5", "--peak-concurrency", "10"), 2,
        "error: --p95-completion -5: is impossible for a completion length in tokens. Valid values: ≥ 1. Fix: "
        "pass e.g. --p95-completion 300."),
    # --- python -m pytest_aksai.load run ---
    "load conflicting --concurrency and --rate": Elsewhere("tests/load/test_load_cli.py", "test_bad_input_exits_2_with_one_paragraph"),
    # --- python -m pytest_aksai janitor ---
    "janitor unknown profile": Run(_janitor("--aksai-cluster", "nope", files={"aksai.toml": LAB}), 4,
        "aksai janitor: Unknown cluster profile 'nope' given to --aksai-cluster: known profiles in "
        "{folder}/aksai.toml are: lab, sim. Use one of those, or add a table [clusters.nope] with at least "
        'provider = "aks" | "kind" | "sim" to {folder}/aksai.toml.'),
    "janitor on the embedded sim": Run(_janitor("--aksai-cluster", "sim"), 4,
        "aksai janitor: Cluster profile 'sim' is the embedded simulated cluster, which lives only as long as its "
        "pytest run: there is nothing for the janitor to reap. Give the profile of a live cluster, or of a "
        "standalone one (`python -m pytest_aksai.sim serve --kubeconfig PATH`) with kubeconfig = PATH."),
}  # fmt: skip

RUN_HERE = {name: case for name, case in CASES.items() if isinstance(case, Run)}


@pytest.mark.parametrize("name", sorted(RUN_HERE))
def test_bad_input_gets_one_paragraph(name: str, tmp_path: Path) -> None:
    case = RUN_HERE[name]
    code, first_line, text = case.how(tmp_path)
    assert first_line == case.first_line.replace("{folder}", str(tmp_path)), text
    assert code == case.exit, text
    assert "Traceback" not in text


def test_every_referenced_case_exists() -> None:
    for name, case in CASES.items():
        if isinstance(case, Elsewhere):
            tree = ast.parse((REPO / case.module).read_text(encoding="utf-8"))
            tests = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
            assert case.test in tests, f"{name}: {case.module}::{case.test} is gone; move the case here"
