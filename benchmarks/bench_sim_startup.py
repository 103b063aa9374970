"""How long the embedded simulated lab takes to come up: `python benchmarks/bench_sim_startup.py [--runs N]`.

Wall seconds from `SimCluster()` to: serving, both system nodes Ready, every add-on Deployment Available, and the
lab's phi4-mini Workspace Ready (cluster seconds too). Baseline measured in the same run: a bare
`SimCluster()` start and stop with nothing waited for.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from pytest_aksai.kube import connect
from pytest_aksai.kube._kaito import Workspace
from pytest_aksai.kube._rest import DEPLOYMENTS, NODES, WORKSPACES, items
from pytest_aksai.kube._wait import condition_is, wait_for
from pytest_aksai.sim import SimCluster


def _once(tmp: Path) -> dict[str, float]:
    started = time.monotonic()
    with SimCluster(kubeconfig_path=tmp / "kc") as sim:
        serving = time.monotonic() - started
        cluster = connect(profile="sim", provider="sim", kubeconfig=sim.kubeconfig_path, context="aksai-sim")
        cluster.time_scale = sim.time_scale
        for node in items(cluster._api, NODES):
            wait_for(
                cluster,
                NODES,
                node["metadata"]["name"],
                None,
                until=lambda n: condition_is(n, "Ready"),
                expected="Ready",
                timeout=600,
            )
        nodes = time.monotonic() - started
        for deployment in items(cluster._api, DEPLOYMENTS, "kube-system"):
            wait_for(
                cluster,
                DEPLOYMENTS,
                deployment["metadata"]["name"],
                "kube-system",
                until=lambda d: condition_is(d, "Available"),
                expected="Available",
                timeout=600,
            )
        addons = time.monotonic() - started
        result = wait_for(
            cluster,
            WORKSPACES,
            "workspace-phi4-mini",
            "inference",
            expected="Ready",
            timeout=3600,
            until=lambda w: w is not None and Workspace.model_validate(w).is_ready,
        )
        workspace = time.monotonic() - started
        cluster.close()
    return {
        "serving": serving,
        "nodes Ready": nodes,
        "add-ons Available": addons,
        "phi4 Ready": workspace,
        "phi4 Ready (cluster s)": result.elapsed,
    }


def _bare(tmp: Path) -> float:
    started = time.monotonic()
    with SimCluster(kubeconfig_path=tmp / "bare"):
        pass
    return time.monotonic() - started


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        baseline = statistics.median(_bare(tmp) for _ in range(args.runs))
        runs = [_once(tmp) for _ in range(args.runs)]
    print(f"baseline: SimCluster() start+stop, nothing awaited   {baseline:8.2f} s")
    for key in runs[0]:
        median = statistics.median(r[key] for r in runs)
        unit = "" if "cluster" in key else f"   ({median / baseline:5.1f}x baseline)"
        print(f"{key:<40} {median:8.2f} s{unit}")


if __name__ == "__main__":
    main()
