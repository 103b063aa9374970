"""`python -m pytest_aksai.sim serve --kubeconfig PATH ...`: the simulated cluster, standalone."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from . import DEFAULT_TIME_SCALE, SimCluster, SimClusterError
from ._faults import FAULTS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message}. Run `python -m pytest_aksai.sim serve --help` for the options.\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m pytest_aksai.sim", description="The embedded simulated AKS AI lab.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the simulated cluster until SIGTERM/SIGINT")
    serve.add_argument("--kubeconfig", required=True, type=Path, help="where to write the kubeconfig")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve.add_argument("--scenario", default="default")
    serve.add_argument(
        "--time-scale", type=float, default=DEFAULT_TIME_SCALE, help="cluster seconds per wall second"
    )
    serve.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help=f"inject a fault (repeatable); one of: {', '.join(sorted(FAULTS))}",
    )
    sub.add_parser("faults", help="list the named faults and what each breaks")
    return parser


def _list_faults() -> int:
    width = max(len(name) for name in FAULTS)
    for name in sorted(FAULTS):
        spec = FAULTS[name]
        parameter = f" [=VALUE: {spec.parameter}]" if spec.parameter else ""
        print(f"{name:<{width}}  {spec.breaks}{parameter}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "faults":
        return _list_faults()
    try:
        cluster = SimCluster(
            scenario=args.scenario,
            time_scale=args.time_scale,
            faults=args.fault,
            host=args.host,
            port=args.port,
            kubeconfig_path=args.kubeconfig,
        )
    except SimClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        cluster.start()
    except SimClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"ready {cluster.server_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
