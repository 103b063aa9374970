"""A flaky API server does not change verdicts: `python benchmarks/flaky_verdicts.py [--rate 10] [--runs 3]
[-m MARKEXPR]`.

Runs the packaged suites once on a healthy simulated cluster and `--runs` times with the `api-flaky` fault
failing `--rate` % of API requests (429 with Retry-After, 500, 503, connection resets, chosen at random),
each run in its own pytest process, and compares each check's outcome (passed / failed / skipped / error)
with the clean run. Prints the per-run wall time with its ratio to the clean run, and every check whose
verdict differs; exits 1 if any does.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path


def outcomes(junit: Path, messages: dict[str, str] | None = None) -> dict[str, str]:
    """Test id → passed / failure / skipped / error; `messages` gets each non-passed check's message."""
    verdicts: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        tags = {child.tag: child for child in case}
        verdict = next((t for t in ("error", "failure", "skipped") if t in tags), "passed")
        # A check can fail in its call and error in its teardown: keep the worse.
        if verdicts.get(test_id) in ("error", "failure") and verdict != "error":
            continue
        verdicts[test_id] = verdict
        if messages is not None and verdict != "passed":
            messages[test_id] = (
                (tags[verdict].get("message") or "").splitlines()[0][:300]
                if tags[verdict].get("message")
                else ""
            )
    return verdicts


def run(
    folder: Path, label: str, extra: list[str], markexpr: str | None, messages: dict[str, str] | None = None
) -> tuple[dict[str, str], float]:
    junit = folder / f"{label}.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--pyargs",
        "pytest_aksai.suites",
        "-p",
        "no:cacheprovider",
        "-q",
        "--no-header",
        f"--junitxml={junit}",
        *(["-m", markexpr] if markexpr else []),
        *extra,
    ]
    started = time.monotonic()
    subprocess.run(command, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    if not junit.exists():
        raise SystemExit(f"the {label} run wrote no JUnit report: run `{' '.join(command)}` by hand")
    return outcomes(junit, messages), time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10.0, help="percent of API requests that fail")
    parser.add_argument("--runs", type=int, default=3, help="flaky runs to compare with the clean one")
    parser.add_argument("-m", dest="markexpr", default=None, help="only the checks with these markers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aksai-flaky-") as tmp:
        folder = Path(tmp)
        clean, clean_wall = run(folder, "clean", [], args.markexpr)
        counts = {
            v: sum(1 for o in clean.values() if o == v) for v in ("passed", "failure", "skipped", "error")
        }
        print(f"clean run: {len(clean)} checks {counts} in {clean_wall:.0f} s")
        differing = 0
        for index in range(1, args.runs + 1):
            fault = f"--aksai-sim-fault=api-flaky={args.rate:g}"
            messages: dict[str, str] = {}
            flaky, wall = run(folder, f"flaky-{index}", [fault], args.markexpr, messages)
            changed = sorted(
                (test_id, clean.get(test_id, "absent"), flaky.get(test_id, "absent"))
                for test_id in set(clean) | set(flaky)
                if clean.get(test_id) != flaky.get(test_id)
            )
            differing += len(changed)
            print(
                f"flaky run {index} (api-flaky={args.rate:g} %): {len(flaky)} checks, {len(changed)} verdicts "
                f"differ, {wall:.0f} s (x{wall / clean_wall:.2f} of the clean run)"
            )
            for test_id, before, after in changed:
                print(f"  {test_id}: clean {before}, flaky {after}: {messages.get(test_id, '')}")
    return 1 if differing else 0


if __name__ == "__main__":
    raise SystemExit(main())
