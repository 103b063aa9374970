"""`pytest -n 4` gives the verdicts of `pytest -n 0`, with one run id, one simulated cluster and no name clash.

Runs the bundled suites against the embedded simulated cluster twice — without xdist and with `-n N` — each
writing its run report, and compares the outcome of every check. With xdist, the controller starts the one
simulated cluster the workers share (it prints `aksai: ... run=<id>` once per process: one id for all) and
sweeps the run at the end.

    python benchmarks/xdist_verdicts.py [-n 4] [-m "kaito or nap"] [--json out.json]

Exit 0 when the verdicts are equal, the run ids agree, and neither run left an object labelled with its run.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def run(folder: Path, workers: int, marker: str | None, logs: Path | None) -> dict[str, Any]:
    report = folder / f"report-n{workers}"
    args = [sys.executable, "-m", "pytest", "--pyargs", "pytest_aksai.suites", f"--aksai-report={report}",
            "-p", "no:cacheprovider", "-p", "no:randomly", "-n", str(workers), "-rA"]  # fmt: skip
    if marker:
        args += ["-m", marker]
    start = time.monotonic()
    done = subprocess.run(args, cwd=folder, capture_output=True, text=True, timeout=3600, check=False)
    seconds = time.monotonic() - start
    if logs is not None:
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"n{workers}.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    checks = json.loads((report / "report.json").read_text())["checks"]
    outcomes = {c["nodeid"]: c["outcome"] for c in checks}
    run_ids = set(re.findall(r"\brun=(r[0-9a-f]{7})\b", done.stdout))
    return {"exit": done.returncode, "seconds": round(seconds, 1), "outcomes": outcomes, "run_ids": sorted(run_ids),
            "clash": "AlreadyExists" in done.stdout}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=4)
    parser.add_argument("-m", dest="marker")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--logs", type=Path, help="keep each run's output in this folder")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aksai-xdist-") as tmp:
        folder = Path(tmp)
        serial = run(folder, 0, args.marker, args.logs)
        parallel = run(folder, args.n, args.marker, args.logs)
    differ = {
        nodeid: (serial["outcomes"].get(nodeid), parallel["outcomes"].get(nodeid))
        for nodeid in sorted(set(serial["outcomes"]) | set(parallel["outcomes"]))
        if serial["outcomes"].get(nodeid) != parallel["outcomes"].get(nodeid)
    }
    counts = {
        name: {o: list(r["outcomes"].values()).count(o) for o in sorted(set(r["outcomes"].values()))}
        for name, r in (("n0", serial), (f"n{args.n}", parallel))
    }
    result = {
        "checks": len(serial["outcomes"]),
        "counts": counts,
        "differ": differ,
        "seconds": {"n0": serial["seconds"], f"n{args.n}": parallel["seconds"]},
        "run_ids_n0": serial["run_ids"],
        "run_ids_parallel": parallel["run_ids"],
        "exit": {"n0": serial["exit"], f"n{args.n}": parallel["exit"]},
        "name_clash": serial["clash"] or parallel["clash"],
    }
    result["ok"] = not differ and len(parallel["run_ids"]) <= 1 and not result["name_clash"]
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text, encoding="utf-8")
    print(text)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
