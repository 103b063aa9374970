"""`python -m pytest_aksai.load run …`: one load run, a summary table or one JSON object, an exit code.

Exit codes: 0 done (and every --slo met), 1 an --slo missed, 2 bad input or a server that cannot be used,
3 the run is invalid (the client saturated itself; its numbers are not the server's).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO, TypeVar

from pytest_aksai._errors import AksaiError

from ._client import Progress, run_load
from ._plan import LoadInputError, LoadPlan, Slos, bad_input
from ._result import LoadResult
from ._validity import InvalidRunError
from ._worker import WorkerSpec, run_worker

EXIT_OK, EXIT_SLO_MISSED, EXIT_BAD_INPUT, EXIT_INVALID_RUN = 0, 1, 2, 3
_N = TypeVar("_N", int, float)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise LoadInputError(f"The command line is not valid: {message}",
                             fix=f"Run `{self.prog} --help` for the knobs and their values")  # fmt: skip


def _parser() -> _Parser:
    parser = _Parser(
        prog="python -m pytest_aksai.load", description="Measure an OpenAI-compatible LLM server."
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="run one load test and print what it measured")
    run.add_argument("--url", required=True, help="OpenAI base URL, e.g. http://127.0.0.1:8000/v1")
    run.add_argument("--model", required=True, help="served model name (GET /v1/models)")
    shape = run.add_mutually_exclusive_group(required=True)
    shape.add_argument("--concurrency", metavar="N", help="closed loop: N streams always in flight")
    shape.add_argument("--rate", metavar="R", help="open loop: R arrivals per second")
    run.add_argument("--arrival", default="poisson", help="open-loop arrivals: poisson (default) or constant")
    run.add_argument("--duration", required=True, metavar="S", help="measured seconds (warm-up excluded)")
    run.add_argument("--requests", metavar="N", help="stop after N measured requests, if before --duration")
    run.add_argument("--prompt-tokens", default="256", metavar="N", help="prompt length in server tokens")
    run.add_argument("--max-tokens", default="128", metavar="N", help="completion length limit")
    run.add_argument("--endpoint", default="chat", help="chat (/v1/chat/completions) or completions")
    run.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    run.add_argument("--slo", nargs="+", default=[], metavar="NAME=VALUE",
                     help="limits that set the exit code, e.g. ttft_p95_ms=500 itl_p95_ms=50 attainment_min=0.99")  # fmt: skip
    worker = commands.add_parser(
        "worker",
        help="run one worker's share of a plan and print one AKSAI_RESULT line (the suite's workers)",
    )
    worker.add_argument("--spec", required=True, metavar="PATH", help="the worker spec (JSON; - reads stdin)")
    worker.add_argument(
        "--index", metavar="I", help="this worker's index (default $JOB_COMPLETION_INDEX, else 0)"
    )
    return parser


def _worker(args: argparse.Namespace, out: TextIO) -> int:
    try:
        text = sys.stdin.read() if args.spec == "-" else Path(args.spec).read_text(encoding="utf-8")
        spec = WorkerSpec.from_json(json.loads(text))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LoadInputError(f"The worker spec {args.spec} cannot be read", observed=f"{type(exc).__name__}: {exc}",
                             fix="Write it with WorkerSpec.to_json (the suite does)") from None  # fmt: skip
    index_text = args.index if args.index is not None else os.environ.get("JOB_COMPLETION_INDEX", "0")
    index = _number("index", index_text, int, "a whole number ≥ 0", "0") or 0
    out.write(run_worker(spec, index).line() + "\n")
    out.flush()
    return EXIT_OK


def _number(knob: str, text: str | None, kind: Callable[[str], _N], valid: str, example: str) -> _N | None:
    if text is None:
        return None
    try:
        return kind(text)
    except ValueError:
        raise bad_input(knob, text, valid, f"Give e.g. --{knob.replace(' ', '-')} {example}.") from None


def plan_from_args(argv: Sequence[str]) -> tuple[LoadPlan, bool]:
    """The plan the command line asks for, and whether it wants JSON; LoadInputError names any bad knob."""
    args = _parser().parse_args(argv)
    whole = "a whole number ≥ 1"
    plan = LoadPlan(
        url=args.url,
        model=args.model,
        concurrency=_number("concurrency", args.concurrency, int, whole, "64"),
        rate=_number("rate", args.rate, float, "a number of requests per second > 0", "20"),
        arrival=args.arrival,
        duration_s=_number("duration", args.duration, float, "a number of seconds > 0", "30") or 0.0,
        requests=_number("requests", args.requests, int, whole, "1000"),
        prompt_tokens=_number("prompt tokens", args.prompt_tokens, int, whole, "256") or 0,
        max_tokens=_number("max tokens", args.max_tokens, int, whole, "128") or 0,
        endpoint=args.endpoint,
        slos=Slos.parse(args.slo),
    )
    return plan, bool(args.json)


def _progress(stream: TextIO) -> Callable[[Progress], None]:
    def show(p: Progress) -> None:
        done = min(p.elapsed_s / p.duration_s, 1.0)
        bar = "#" * round(done * 30)
        stream.write(
            f"\r[{bar:<30}] {p.elapsed_s:5.1f}/{p.duration_s:g} s  {p.requests} done  {p.in_flight} in flight"
        )
        stream.flush()

    return show


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render_table(result: LoadResult) -> str:
    s: dict[str, Any] = result.summary()
    lines = [f"{'':8}{'p50':>10}{'p90':>10}{'p95':>10}{'p99':>10}{'max':>10}   (ms)"]
    for name in ("ttft", "itl", "tpot", "e2e"):
        row = s[f"{name}_ms"]
        lines.append(
            f"{name.upper():8}" + "".join(f"{_ms(row[k]):>10}" for k in ("p50", "p90", "p95", "p99", "max"))
        )
    lines += [
        f"requests {s['requests']}  errors {s['errors']} {s['errors_by_class'] or ''}".rstrip(),
        f"throughput {s['req_per_s']:.1f} req/s, {s['output_tokens_per_s']:.0f} output tok/s; "
        f"goodput {s['goodput_req_per_s']:.1f} req/s, attainment {s['attainment']:.1%}",
        f"in flight {s['achieved_concurrency']:.1f} (Little's law), {s['sampled_concurrency']:.1f} (sampled); "
        f"client CPU {s['client_cpu_ms_per_request']:.2f} ms/request ({s['client_cpu_fraction']:.0%} of a core)",
    ]
    for verdict in result.slo_verdicts():
        mark = "met" if verdict.met else "MISSED"
        lines.append(f"SLO {verdict.name}: {_ms(verdict.measured)} against {verdict.limit:g}: {mark}")
    lines.append("run valid" if s["valid"] else "RUN INVALID: " + "; ".join(s["invalid_reasons"]))
    return "\n".join(lines)


def exit_code(result: LoadResult) -> int:
    if not result.valid:
        return EXIT_INVALID_RUN
    return EXIT_OK if all(v.met for v in result.slo_verdicts()) else EXIT_SLO_MISSED


def main(
    argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list[:1] == ["worker"]:
            return _worker(_parser().parse_args(args_list), out)
        plan, as_json = plan_from_args(args_list)
        result = run_load(plan, on_progress=_progress(err) if err.isatty() and not as_json else None)
    except AksaiError as exc:  # LoadInputError, LoadTargetError, an unreadable prompt set
        err.write(exc.paragraph() + "\n")
        return EXIT_BAD_INPUT
    if err.isatty() and not as_json:
        err.write("\n")
    out.write((json.dumps(result.summary()) if as_json else render_table(result)) + "\n")
    if not result.valid:
        err.write(InvalidRunError(result.invalid_reasons).paragraph() + "\n")
    return exit_code(result)
