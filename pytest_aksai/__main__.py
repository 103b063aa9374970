"""`python -m pytest_aksai <command> ...`: the package's own commands (`vendor`; more join the table below).

Each command is a module with `add_arguments(parser)` and `run(args) -> int`; a command joins by adding one
row to `COMMANDS` (keep its module's top-level imports light: every command's module is imported to build
the parser).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast


class Command(Protocol):
    """What a command module provides."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module, one-line help)
    "vendor": (
        "pytest_aksai._vendor",
        "copy the bundled suites (and their data) into a folder of your repository",
    ),
    "janitor": (
        "pytest_aksai._janitor",
        "remove what dead runs left on a cluster (their run is gone and their expiry passed), nothing else",
    ),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_aksai",
        description="pytest-aksai's commands. The checks themselves run with pytest: `pytest --pyargs pytest_aksai.suites`.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, summary) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(_module=module)
        _load(module).add_arguments(sub)
    return parser


def _load(module: str) -> Command:
    return cast(Command, importlib.import_module(module))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return _load(args._module).run(args)


if __name__ == "__main__":
    sys.exit(main())
