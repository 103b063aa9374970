"""The interrupt campaign: nothing the suite creates outlives an interrupted run once the janitor has run.

One standalone simulated cluster (`python -m pytest_aksai.sim serve`); one uninterrupted run of the full
suite to learn its duration; then N runs, each sent SIGINT, SIGTERM or SIGKILL at a random moment of that
duration; then one `python -m pytest_aksai janitor`. Asserts that no object labelled with those runs remains,
that no unlabelled object was deleted or had its spec changed (a snapshot before and after; `replicas` are
left out, KEDA owns them), and that no GPU node is left beyond those of the baseline.

    python benchmarks/interrupt_campaign.py [--runs 20] [--seed 1] [--json out.json]

Exit 0 when every assertion holds. The runs use `--aksai-expiry 1s`, so what a dead run left is expired at
once: only the Lease a live run renews protects it (the janitor must not touch a run still going).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from pytest_aksai.kube import _rest

RUN_LABEL = "aksai.dev/run"
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
RUN_EXIT_BUDGET_S = 150.0
"""A run must end this long after SIGINT/SIGTERM (cleanup's 60 s, plus pytest's own teardown)."""
SNAPSHOT_KINDS = (
    # (group, version, plural): the configuration a suite must never delete or change.
    ("", "v1", "namespaces"),
    ("", "v1", "services"),
    ("", "v1", "serviceaccounts"),
    ("", "v1", "configmaps"),
    ("", "v1", "secrets"),
    ("apps", "v1", "deployments"),
    ("apps", "v1", "statefulsets"),
    ("karpenter.sh", "v1", "nodepools"),
    ("karpenter.azure.com", "v1beta1", "aksnodeclasses"),
    ("kaito.sh", "v1beta1", "workspaces"),
    ("keda.sh", "v1alpha1", "scaledobjects"),
    ("http.keda.sh", "v1alpha1", "httpscaledobjects"),
)
LABELLED_KINDS = (
    *SNAPSHOT_KINDS,
    ("", "v1", "pods"),
    ("batch", "v1", "jobs"),
    ("", "v1", "nodes"),
    ("karpenter.sh", "v1", "nodeclaims"),
    ("coordination.k8s.io", "v1", "leases"),
)


def _list(
    api: k8s.ApiClient, kind: tuple[str, str, str], selector: str | None = None
) -> list[dict[str, Any]]:
    namespaced = kind[2] not in ("namespaces", "nodes", "nodeclaims", "nodepools", "aksnodeclasses")
    try:
        return _rest.items(api, _rest.Kind(*kind, namespaced=namespaced), None, label_selector=selector)
    except ApiException as exc:
        if exc.status == 404:
            return []
        raise


def _spec_hash(obj: dict[str, Any]) -> str:
    spec = dict(obj.get("spec") or {})
    spec.pop("replicas", None)
    return hashlib.sha256(
        json.dumps([spec, obj.get("data")], sort_keys=True, default=str).encode()
    ).hexdigest()[:12]


def snapshot(api: k8s.ApiClient) -> dict[str, str]:
    """Every unlabelled configuration object: kind/namespace/name → uid:spec-hash."""
    found: dict[str, str] = {}
    for kind in SNAPSHOT_KINDS:
        for obj in _list(api, kind):
            meta = obj["metadata"]
            if RUN_LABEL in (meta.get("labels") or {}):
                continue
            found[f"{kind[2]}/{meta.get('namespace', '')}/{meta['name']}"] = (
                f"{meta['uid']}:{_spec_hash(obj)}"
            )
    return found


def gpu_nodes(api: k8s.ApiClient) -> set[str]:
    """GPU nodes a suite could have caused: not those KAITO provisions for the scenario's own Workspaces
    (labelled kaito.sh/workspace), which may come up after the baseline snapshot."""
    return {
        n["metadata"]["name"]
        for n in _list(api, ("", "v1", "nodes"))
        if int(((n.get("status") or {}).get("capacity") or {}).get("nvidia.com/gpu") or 0) > 0
        and "kaito.sh/workspace" not in (n["metadata"].get("labels") or {})
    }


def labelled(api: k8s.ApiClient, runs: set[str]) -> list[str]:
    left = []
    for kind in LABELLED_KINDS:
        for obj in _list(api, kind, RUN_LABEL):
            meta = obj["metadata"]
            if (meta.get("labels") or {}).get(RUN_LABEL) in runs:
                state = " (Terminating)" if meta.get("deletionTimestamp") else ""
                left.append(f"{kind[2]}/{meta.get('namespace', '')}/{meta['name']}{state}")
    return left


def _start_sim(folder: Path, time_scale: float) -> tuple[subprocess.Popen[str], Path]:
    kubeconfig = folder / "sim.kubeconfig"
    sim = subprocess.Popen(
        [sys.executable, "-m", "pytest_aksai.sim", "serve", "--kubeconfig", str(kubeconfig), "--time-scale", str(time_scale)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert sim.stdout is not None
    line = sim.stdout.readline()
    if not line.startswith("ready"):
        sim.kill()
        raise SystemExit(f"the sim did not start: {line}")
    return sim, kubeconfig


def _pytest(folder: Path, extra_env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "--pyargs", "pytest_aksai.suites", "--aksai-cluster=campaign",
         f"--aksai-config={folder / 'aksai.toml'}", "--aksai-expiry=1s", "-p", "no:cacheprovider", "-p",
         "no:randomly", "-rfE"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **extra_env},
        start_new_session=True,
    )  # fmt: skip


def _run_id(output: str) -> str | None:
    found = re.search(r"\brun=(r[0-9a-f]{7})\b", output)
    return found.group(1) if found else None


def _keep(folder: Path | None, name: str, text: str) -> None:
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.log").write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-scale", type=float, default=60.0)
    parser.add_argument(
        "--duration", type=float, help="skip the calibration run: interrupt within this many s"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--logs", type=Path, help="keep each run's output in this folder")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    results: dict[str, Any] = {"runs": [], "seed": args.seed}
    with tempfile.TemporaryDirectory(prefix="aksai-campaign-") as tmp:
        folder = Path(tmp)
        sim, kubeconfig = _start_sim(folder, args.time_scale)
        try:
            (folder / "aksai.toml").write_text(
                f'[clusters.campaign]\nprovider = "sim"\nkubeconfig = "{kubeconfig}"\n', encoding="utf-8"
            )
            api = k8s_config.new_client_from_config(str(kubeconfig))
            before, gpu_before = snapshot(api), gpu_nodes(api)
            # Calibration: one whole run (its duration bounds the random moments; it must leave nothing).
            calibration_id: str | None = None
            duration = args.duration or 0.0
            if not args.duration:
                start = time.monotonic()
                whole = _pytest(folder, {})
                out, _ = whole.communicate(timeout=1800)
                duration = time.monotonic() - start
                calibration_id = _run_id(out)
                _keep(args.logs, "calibration", out)
                results["calibration"] = {"run": calibration_id, "seconds": round(duration, 1), "exit": whole.returncode,
                                          "left": labelled(api, {calibration_id or "-"})}  # fmt: skip
                print(
                    f"calibration run {calibration_id}: {duration:.1f} s, exit {whole.returncode}", flush=True
                )
            runs: set[str] = set()
            for index in range(args.runs):
                name = rng.choice(sorted(SIGNALS))
                moment = rng.uniform(1.0, duration)
                proc = _pytest(folder, {})
                time.sleep(moment)
                finished_first = proc.poll() is not None
                sent = time.monotonic()
                if not finished_first:
                    os.killpg(proc.pid, SIGNALS[name]) if name == "SIGKILL" else proc.send_signal(
                        SIGNALS[name]
                    )
                try:
                    out, _ = proc.communicate(timeout=RUN_EXIT_BUDGET_S)
                    ended = round(time.monotonic() - sent, 1)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    out, _ = proc.communicate()
                    ended = None
                run_id = _run_id(out)
                _keep(args.logs, f"run-{index:02d}-{name}", out)
                if run_id:
                    runs.add(run_id)
                left = labelled(api, {run_id}) if run_id else []
                row = {"signal": name, "at_s": round(moment, 1), "run": run_id, "exit": proc.returncode,
                       "ended_after_s": ended, "finished_first": finished_first,
                       "left_right_after": [x for x in left if not x.endswith("(Terminating)")]}  # fmt: skip
                results["runs"].append(row)
                print(json.dumps(row), flush=True)
            start = time.monotonic()
            janitor = subprocess.run(
                [sys.executable, "-m", "pytest_aksai", "janitor", "--aksai-cluster=campaign",
                 f"--aksai-config={folder / 'aksai.toml'}"],
                capture_output=True, text=True, timeout=900, cwd=folder,
            )  # fmt: skip
            results["janitor"] = {"seconds": round(time.monotonic() - start, 1), "exit": janitor.returncode,
                                  "output": janitor.stdout.splitlines()[:60] + janitor.stderr.splitlines()[-5:]}  # fmt: skip
            print(janitor.stdout + janitor.stderr, flush=True)
            deadline = time.monotonic() + 120
            remaining = labelled(api, runs | {calibration_id or "-"})
            while remaining and time.monotonic() < deadline:  # Terminating namespaces finish on their own
                time.sleep(1)
                remaining = labelled(api, runs | {calibration_id or "-"})
            after, gpu_after = snapshot(api), gpu_nodes(api)
            touched = sorted(k for k in before if after.get(k) != before[k])
            results["remaining"] = remaining
            results["unlabelled_touched"] = touched
            results["gpu_nodes_before"] = sorted(gpu_before)
            results["gpu_nodes_after"] = sorted(gpu_after)
        finally:
            sim.send_signal(signal.SIGTERM)
            sim.wait(timeout=60)
    by_signal: dict[str, int] = {}
    for row in results["runs"]:
        by_signal[row["signal"]] = by_signal.get(row["signal"], 0) + 1
    results["by_signal"] = by_signal
    results["ok"] = not results["remaining"] and not results["unlabelled_touched"] and set(
        results["gpu_nodes_after"]) <= set(results["gpu_nodes_before"])  # fmt: skip
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.write_text(text, encoding="utf-8")
    print(json.dumps({k: v for k, v in results.items() if k != "runs"}, indent=2))
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
