"""`python -m pytest_aksai vendor DIR`: copy the bundled suites (and the data they apply) into a repository.

The suites are written into DIR (`DIR/test_kaito.py`, ...), their declarative data into `DIR/fixtures/`. Each
file that can carry a comment starts with a header naming the pytest-aksai version it came from, and
`DIR/.pytest-aksai-vendor.json` records what was written (version, sha256 of each file), so a later run of a
newer version overwrites the files nobody edited and refuses, without `--force`, to overwrite the others.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.resources
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath
from typing import TextIO

from pytest_aksai._errors import AksaiError

MANIFEST = ".pytest-aksai-vendor.json"
SUITES_PACKAGE = "pytest_aksai.suites"
FIXTURES_PACKAGE = "pytest_aksai.fixtures"
_COMMENT = {".py": "#", ".yaml": "#", ".yml": "#", ".toml": "#", ".sh": "#", ".cfg": "#", ".ini": "#"}
"""Suffix → comment leader: the files that get a header. Others (JSON, prompt sets) are copied verbatim."""


def version() -> str:
    try:
        return importlib.metadata.version("pytest-aksai")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree that is not installed
        from pytest_aksai import __version__

        return __version__


@dataclass(frozen=True)
class VendoredFile:
    target: PurePosixPath
    """Path relative to DIR, with forward slashes (the manifest's key)."""
    source: str
    """Where it came from, for the header: `pytest_aksai.suites/test_kaito.py`."""
    content: bytes


@dataclass(frozen=True)
class Outcome:
    written: tuple[PurePosixPath, ...]
    unchanged: tuple[PurePosixPath, ...]
    refused: tuple[PurePosixPath, ...]
    """Files changed since pytest-aksai wrote them (or not written by it); nothing is written when non-empty."""


class VendorRefused(AksaiError):
    """The one-paragraph explanation of why nothing was written."""


def header(path: PurePosixPath | str, source: str, release: str) -> str:
    leader = _COMMENT.get(PurePosixPath(path).suffix, "")
    if not leader:
        return ""
    return (
        f"{leader} Vendored from pytest-aksai {release} ({source}) by `python -m pytest_aksai vendor`.\n"
        f"{leader} Edit freely: vendoring again refuses to overwrite an edited file unless given --force.\n"
    )


def bundled_files(release: str | None = None) -> list[VendoredFile]:
    """The suites and their data as they would be written, headers included."""
    release = release or version()
    files: list[VendoredFile] = []
    suites = importlib.resources.files(SUITES_PACKAGE)
    for entry in sorted(suites.iterdir(), key=lambda e: e.name):
        if entry.is_file() and entry.name.endswith(".py") and entry.name != "__init__.py":
            files.append(
                _vendored(PurePosixPath(entry.name), f"{SUITES_PACKAGE}/{entry.name}", entry, release)
            )
    data = _fixtures_root()
    if data is not None:
        for relative, entry in _walk(data, PurePosixPath()):
            files.append(
                _vendored(
                    PurePosixPath("fixtures") / relative, f"{FIXTURES_PACKAGE}/{relative}", entry, release
                )
            )
    return files


def _fixtures_root() -> Traversable | None:
    try:
        return importlib.resources.files(FIXTURES_PACKAGE)
    except ModuleNotFoundError:  # no declarative data shipped yet
        return None


def _walk(folder: Traversable, prefix: PurePosixPath) -> Iterator[tuple[PurePosixPath, Traversable]]:
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name in {"__pycache__", "__init__.py"} or entry.name.endswith(".pyc"):
            continue
        if entry.is_dir():
            yield from _walk(entry, prefix / entry.name)
        elif entry.is_file():
            yield prefix / entry.name, entry


def _vendored(target: PurePosixPath, source: str, entry: Traversable, release: str) -> VendoredFile:
    body = entry.read_bytes()
    return VendoredFile(target, source, header(target, source, release).encode() + body)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_manifest(folder: Path) -> dict[str, str]:
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data["files"]
        return {str(k): str(v["sha256"]) for k, v in files.items()}
    except FileNotFoundError:
        return {}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise VendorRefused(
            f"{path} is not a pytest-aksai vendor record ({type(exc).__name__}: {exc}), so it cannot tell which "
            f"files in {folder} were edited; nothing was written. Restore it from version control, or delete it "
            "and pass --force to overwrite every bundled file."
        ) from None


def vendor(folder: Path, *, force: bool = False, release: str | None = None) -> Outcome:
    """Write the bundled files into `folder`; refuse (raise `VendorRefused`) to overwrite edited files."""
    release = release or version()
    if folder.exists() and not folder.is_dir():
        raise VendorRefused(
            f"{folder} exists and is not a folder; `python -m pytest_aksai vendor DIR` writes the suites into "
            "the folder DIR (created if missing). Give a folder path, such as tests/aksai."
        )
    recorded = _read_manifest(folder)
    files = bundled_files(release)
    written: list[PurePosixPath] = []
    unchanged: list[PurePosixPath] = []
    refused: list[PurePosixPath] = []
    for item in files:
        path = folder / item.target
        if not path.exists():
            written.append(item.target)
            continue
        current = path.read_bytes()
        if current == item.content:
            unchanged.append(item.target)
        elif recorded.get(str(item.target)) == _sha256(current) or force:
            written.append(item.target)
        else:
            refused.append(item.target)
    if refused:
        raise VendorRefused(_refusal(folder, refused, release))
    for item in files:
        if item.target in written:
            path = folder / item.target
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(item.content)
    manifest = {
        "pytest-aksai": release,
        "files": {
            str(item.target): {"source": item.source, "sha256": _sha256(item.content)} for item in files
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return Outcome(tuple(written), tuple(unchanged), tuple(refused))


def _refusal(folder: Path, refused: list[PurePosixPath], release: str) -> str:
    names = ", ".join(str(p) for p in refused)
    count = f"{len(refused)} file" + ("s" if len(refused) != 1 else "")
    return (
        f"pytest-aksai vendor: refusing to overwrite {count} in {folder} that changed since pytest-aksai wrote "
        f"them (or that it did not write): {names}. Expected each to match the copy recorded in "
        f"{folder / MANIFEST}; overwriting them would lose those edits, so nothing was written. To take "
        f"pytest-aksai {release}'s copies anyway, commit your edits, run again with --force and review the diff; "
        "or vendor into an empty folder and merge by hand."
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dir", metavar="DIR", type=Path, help="folder to write the suites into (created if missing)"
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite files that were edited since they were vendored"
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    folder: Path = args.dir
    release = version()
    try:
        outcome = vendor(folder, force=bool(args.force), release=release)
    except VendorRefused as exc:
        print(exc, file=sys.stderr)
        return 1
    for target in outcome.written:
        print(f"wrote {folder / target}", file=out)
    for target in outcome.unchanged:
        print(f"unchanged {folder / target}", file=out)
    print(
        f"vendored pytest-aksai {release}: {len(outcome.written)} written, {len(outcome.unchanged)} unchanged, "
        f"record in {folder / MANIFEST}. Run them with: pytest {folder}",
        file=out,
    )
    return 0
