"""`python -m pytest_aksai vendor DIR`: copies, headers, the refusal to overwrite edits, and a vendored run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_aksai import __version__, _vendor
from pytest_aksai.__main__ import main

REPO = Path(__file__).resolve().parents[2]
SUITE_FILES = sorted(p.name for p in (REPO / "suites").glob("*.py") if p.name != "__init__.py")


def test_vendor_writes_every_suite_with_a_header_naming_the_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["vendor", str(tmp_path / "aksai")]) == 0
    folder = tmp_path / "aksai"
    assert sorted(p.name for p in folder.glob("*.py")) == SUITE_FILES
    assert SUITE_FILES, "no suites found in suites/"
    for name in SUITE_FILES:
        text = (folder / name).read_text()
        first = text.splitlines()[0]
        assert first == (
            f"# Vendored from pytest-aksai {__version__} (pytest_aksai.suites/{name}) by "
            "`python -m pytest_aksai vendor`."
        )
        assert text.endswith((REPO / "suites" / name).read_text())
    out = capsys.readouterr().out
    for name in SUITE_FILES:
        assert f"wrote {folder / name}\n" in out
    assert f"vendored pytest-aksai {__version__}: {len(SUITE_FILES)} written, 0 unchanged" in out
    record = json.loads((folder / _vendor.MANIFEST).read_text())
    assert record["pytest-aksai"] == __version__
    assert sorted(record["files"]) == SUITE_FILES


def test_vendor_again_leaves_unchanged_files_and_overwrites_unedited_older_copies(tmp_path: Path) -> None:
    _vendor.vendor(tmp_path, release="0.0.1")
    assert (tmp_path / SUITE_FILES[0]).read_text().startswith("# Vendored from pytest-aksai 0.0.1 ")
    again = _vendor.vendor(tmp_path, release="0.0.1")
    assert again.written == () and len(again.unchanged) == len(SUITE_FILES)
    newer = _vendor.vendor(tmp_path, release="0.0.2")  # nobody edited them: a newer release replaces them
    assert len(newer.written) == len(SUITE_FILES)
    assert (tmp_path / SUITE_FILES[0]).read_text().startswith("# Vendored from pytest-aksai 0.0.2 ")


def test_vendor_refuses_to_overwrite_an_edited_file_in_one_paragraph_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _vendor.vendor(tmp_path, release="0.0.1")
    edited = tmp_path / SUITE_FILES[0]
    edited.write_text(edited.read_text() + "# our local tweak\n")
    untouched = tmp_path / SUITE_FILES[-1]
    before = untouched.read_text()
    untouched.write_text(before.replace("0.0.1", "0.0.0", 1))  # an old, but also edited, copy
    capsys.readouterr()
    assert main(["vendor", str(tmp_path)]) == 1
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert message.startswith(f"pytest-aksai vendor: refusing to overwrite 2 files in {tmp_path} ")
    assert SUITE_FILES[0] in message and "--force" in message and "nothing was written" in message
    assert edited.read_text().endswith("# our local tweak\n")  # nothing was written, not even the others
    assert main(["vendor", str(tmp_path), "--force"]) == 0
    assert not edited.read_text().endswith("# our local tweak\n")
    assert edited.read_text().startswith(f"# Vendored from pytest-aksai {__version__} ")


def test_vendor_refuses_files_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / SUITE_FILES[0]).write_text("def test_mine() -> None:\n    assert True\n")
    with pytest.raises(_vendor.VendorRefused, match=f"refusing to overwrite 1 file .*{SUITE_FILES[0]}"):
        _vendor.vendor(tmp_path)
    assert (tmp_path / SUITE_FILES[0]).read_text().startswith("def test_mine")


def test_vendor_into_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "suites.py"
    target.write_text("")
    with pytest.raises(_vendor.VendorRefused, match="exists and is not a folder"):
        _vendor.vendor(target)


def test_vendor_copies_fixtures_data_under_fixtures_with_headers_where_comments_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    (data / "probes").mkdir(parents=True)
    (data / "probes" / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\n")
    (data / "prompts.json").write_text('["hello"]\n')
    monkeypatch.setattr(_vendor, "_fixtures_root", lambda: data)
    out = tmp_path / "out"
    _vendor.vendor(out, release="9.9.9")
    pod = (out / "fixtures" / "probes" / "pod.yaml").read_text()
    assert pod.startswith("# Vendored from pytest-aksai 9.9.9 (pytest_aksai.fixtures/probes/pod.yaml)")
    assert pod.endswith("apiVersion: v1\nkind: Pod\n")
    assert (out / "fixtures" / "prompts.json").read_text() == '["hello"]\n'  # JSON takes no comment


def test_vendored_suites_run_green_against_the_sim(tmp_path: Path) -> None:
    """The copies are self-contained: they collect and pass in a folder with no conftest of ours."""
    folder = tmp_path / "vendored"
    _vendor.vendor(folder)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(folder),
            "-q",
            "-p",
            "no:randomly",
            "-m",
            "sizing",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout


def test_module_entry_point_lists_the_vendor_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_aksai", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0 and "vendor" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "pytest_aksai", "nosuch"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert bad.returncode == 2 and "invalid choice: 'nosuch'" in bad.stderr
