"""A scheduled-token fake OpenAI server in its own process, so the client's CPU and event loop are its own."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest


@pytest.fixture(scope="session")
def fake_server() -> Iterator[Callable[..., str]]:
    """fake_server(ttft_ms=…, itl_ms=…, tokens=…, fail_every=…) → the OpenAI base URL of a running server."""
    running: dict[tuple[float, float, int, int], tuple[subprocess.Popen[str], str]] = {}

    def start(ttft_ms: float = 0.0, itl_ms: float = 0.0, tokens: int = 16, fail_every: int = 0) -> str:
        key = (ttft_ms, itl_ms, tokens, fail_every)
        if key not in running:
            command = [sys.executable, "-m", "pytest_aksai.load._fake_server", "--ttft-ms", str(ttft_ms),
                       "--itl-ms", str(itl_ms), "--tokens", str(tokens), "--fail-every", str(fail_every)]  # fmt: skip
            process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            assert process.stdout is not None
            line = process.stdout.readline()  # blocks until the server is listening
            assert line.startswith("PORT "), f"the fake server did not start: {line!r}"
            running[key] = (process, f"http://127.0.0.1:{line.split()[1]}/v1")
        return running[key][1]

    yield start
    for process, _ in running.values():
        process.terminate()
        process.wait(timeout=10)
