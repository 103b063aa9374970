"""What the installed plugin costs a pytest run in a project that never uses it:
`python benchmarks/bench_plugin_import.py [--runs N]`.

`pytest --version --version` loads every plugin; the baseline, measured in the same run, is the same command
with `-p no:aksai`. Both run in an empty folder. Target (issue 9): the plugin adds at most 150 ms. The second
figure is a whole collection of an unrelated test file (`pytest --collect-only`), where the plugin's
configure hooks run too.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 150.0


def _median_ms(args: list[str], cwd: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", *args], cwd=cwd, capture_output=True, check=False
        )
        times.append((time.perf_counter() - started) * 1000)
        if done.returncode != 0:  # a run that crashed early is fast for the wrong reason
            raise SystemExit(
                f"`pytest {' '.join(args)}` exited {done.returncode}:\n{done.stdout.decode()[-2000:]}"
            )
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        (cwd / "test_unrelated.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
        for label, args in (
            ("pytest --version --version", ["--version", "--version"]),
            ("pytest --collect-only -q", ["--collect-only", "-q", "-p", "no:cacheprovider"]),
        ):
            with_plugin = _median_ms(args, cwd, runs)
            without = _median_ms([*args, "-p", "no:aksai"], cwd, runs)
            added = with_plugin - without
            verdict = "within" if added <= TARGET_MS else "OVER"
            print(
                f"{label}: {with_plugin:.0f} ms with the plugin, {without:.0f} ms without (baseline): "
                f"+{added:.0f} ms, ratio {with_plugin / without:.2f} ({verdict} the {TARGET_MS:.0f} ms target)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
