"""`python -m pytest_aksai janitor --aksai-cluster NAME [--dry-run]`: reap what dead runs left on a cluster.

A run labels everything it creates with `aksai.dev/run` and an expiry, and keeps a Lease renewed while it is
alive. The janitor removes the objects of runs whose Lease is gone or stale and whose expiry has passed — and
nothing without the run label. `--run ID` removes one run's objects now, whatever their expiry (the command a
run prints when its cleanup was interrupted). Namespaces stuck Terminating are reported with their finalizers.

Exit codes: 0 nothing of a dead run is left, 1 something is left (or stuck Terminating), 4 a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_aksai._errors import AksaiError

USAGE_ERROR = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--aksai-cluster", required=True, metavar="NAME", help="cluster profile to clean")
    parser.add_argument(
        "--aksai-config",
        type=Path,
        metavar="PATH",
        help="profile file (default: aksai.toml here, else [tool.aksai] in pyproject.toml)",
    )
    parser.add_argument(
        "--aksai-kubeconfig", type=Path, metavar="PATH", help="kubeconfig (default: the profile's)"
    )
    parser.add_argument("--aksai-context", metavar="NAME", help="kubeconfig context (default: the profile's)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    parser.add_argument(
        "--run", metavar="ID", help="remove this run's objects now, whatever their expiry and lease"
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for GPU NodeClaims to go (default: 300)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except AksaiError as exc:
        configuration = getattr(exc, "configuration_problem", True)
        print(f"aksai janitor: {exc}", file=sys.stderr)
        return USAGE_ERROR if configuration else 1


def _run(args: argparse.Namespace) -> int:
    from pytest_aksai._profiles import ProfileError, load_profiles
    from pytest_aksai.kube import Janitor, connect

    profiles = load_profiles(args.aksai_config, Path.cwd())
    profile = profiles.get(args.aksai_cluster)
    kubeconfig = args.aksai_kubeconfig or profile.kubeconfig
    if profile.provider == "sim" and kubeconfig is None:
        raise ProfileError(
            f"Cluster profile {args.aksai_cluster!r} is the embedded simulated cluster, which lives only as long "
            "as its pytest run: there is nothing for the janitor to reap. Give the profile of a live cluster, or "
            "of a standalone one (`python -m pytest_aksai.sim serve --kubeconfig PATH`) with kubeconfig = PATH."
        )
    cluster = connect(
        profile=args.aksai_cluster,
        provider=profile.provider,
        kubeconfig=kubeconfig,
        context=args.aksai_context or profile.context,
    )
    try:
        janitor = Janitor(cluster._api, cluster, only_run=args.run)
        report = janitor.reap(dry_run=args.dry_run, wait_s=args.wait)
    finally:
        cluster.close()
    verb = "would remove" if args.dry_run else "removed"
    print(f"aksai janitor on {args.aksai_cluster!r}: {verb} {len(report.removed)} object(s) of dead runs")
    for line in report.removed:
        print(f"  {verb}: {line}")
    for run_id in report.live_runs:
        print(f"  spared: everything of run {run_id} (its Lease default/aksai-run-{run_id} is being renewed)")
    for line in report.not_expired:
        print(f"  spared (not expired yet): {line}")
    for line in report.forced:
        print(f"  forced: {line}")
    for line in report.terminating:
        print(f"  stuck: {line}")
    for line in report.left:
        print(f"  left (still there after {args.wait:g} s): {line}")
    return 1 if report.terminating or report.left else 0
