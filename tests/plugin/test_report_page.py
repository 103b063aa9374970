"""report.html looked at as a person would: opened from a file in headless Chromium, with no network."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.plugin.test_report import LIFECYCLE

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "no headless Chromium on PATH (looked for chromium, chromium-browser, google-chrome): "
        "`apt-get install chromium` enables this test; .ci/run installs it when it can"
    )


def test_the_page_renders_every_plot_with_no_console_error(pytester: pytest.Pytester) -> None:
    executable = _browser()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (a dev dependency) is missing")
    pytester.makepyfile(LIFECYCLE)
    pytester.runpytest("--aksai-report=out").assert_outcomes(passed=2, failed=1)
    folder = pytester.path / "out"
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        context = browser.new_context(offline=True, viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.on(
            "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
        )
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
        page.goto((folder / "report.html").as_uri())
        plots = page.locator("figure.plot svg")
        kinds = page.locator("figure.plot").evaluate_all("els => els.map(e => e.className)")
        sizes = plots.evaluate_all(
            "els => els.map(e => [e.getBoundingClientRect().width, e.getBoundingClientRect().height, e.querySelectorAll('path').length])"
        )
        page.screenshot(path=str(folder / "screenshot.png"), full_page=True)
        browser.close()
    assert problems == []
    assert sorted(kinds) == ["plot histogram", "plot timeline", "plot waterfall"]
    for width, height, paths in sizes:
        assert width > 300 and height > 100 and paths > 5, sizes
    assert (folder / "screenshot.png").stat().st_size > 10_000
    artifacts = os.environ.get("AKSAI_CI_ARTIFACTS")
    if artifacts:
        shutil.copytree(folder, Path(artifacts) / "report-page", dirs_exist_ok=True)
