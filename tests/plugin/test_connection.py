"""Lazy connection and the one-paragraph errors a broken cluster profile gives."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.plugin._fake_apiserver import kubeconfig_text, refusing_apiserver

USES_CLUSTER = """
def test_one(aksai_cluster):
    pass

def test_two(aksai_cluster):
    pass
"""


def _lab(pytester: pytest.Pytester, server: str) -> None:
    pytester.makefile(".yaml", kc=kubeconfig_text(server))
    pytester.makefile(".toml", aksai='[clusters.lab]\nprovider = "aks"\nkubeconfig = "kc.yaml"\n')
    pytester.makepyfile(USES_CLUSTER)


def _exit_message(result: pytest.RunResult) -> str:
    text = result.stdout.str()
    assert text.count("Exit: ") == 1, text
    assert "Traceback" not in text
    return next(line for line in result.outlines if "Exit: " in line)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("args", [["--collect-only"], ["--markers"], ["--fixtures"], ["--help"]])
def test_listing_commands_never_contact_the_cluster(pytester: pytest.Pytester, args: list[str]) -> None:
    _lab(pytester, f"https://127.0.0.1:{_free_port()}")
    result = pytester.runpytest("--aksai-cluster=lab", *args)
    assert result.ret == 0
    assert "unreachable" not in result.stdout.str()


def test_unreachable_server_ends_the_run_fast_with_one_message(pytester: pytest.Pytester) -> None:
    server = f"https://127.0.0.1:{_free_port()}"
    _lab(pytester, server)
    started = time.monotonic()
    result = pytester.runpytest("--aksai-cluster=lab")
    assert time.monotonic() - started < 15
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    message = _exit_message(result)
    assert f"the API server {server} (context 'lab' of cluster profile 'lab') is unreachable" in message
    assert "Check that the cluster is running" in message


def test_missing_kubeconfig_file(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", aksai='[clusters.lab]\nprovider = "aks"\nkubeconfig = "nowhere.yaml"\n')
    pytester.makepyfile(USES_CLUSTER)
    result = pytester.runpytest("--aksai-cluster=lab")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        f"Cluster profile 'lab': the kubeconfig file {pytester.path / 'nowhere.yaml'} does not exist. "
        "Set --aksai-kubeconfig"
    ) in _exit_message(result)


def test_unknown_context_lists_known_contexts(pytester: pytest.Pytester) -> None:
    _lab(pytester, "https://127.0.0.1:1")
    result = pytester.runpytest("--aksai-cluster=lab", "--aksai-context=prod")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        f"Cluster profile 'lab': context 'prod' is not in the kubeconfig {pytester.path / 'kc.yaml'}; "
        "known contexts: lab. Set --aksai-context"
    ) in _exit_message(result)


def test_unauthorized(pytester: pytest.Pytester) -> None:
    with refusing_apiserver(401, "Unauthorized", "Unauthorized") as server:
        _lab(pytester, server)
        result = pytester.runpytest("--aksai-cluster=lab")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert (
        f"the API server {server} (context 'lab' of cluster profile 'lab') rejected the credentials "
        "(401 Unauthorized)"
    ) in _exit_message(result)


def test_forbidden(pytester: pytest.Pytester) -> None:
    message = 'namespaces is forbidden: User "ci" cannot list resource "namespaces"'
    with refusing_apiserver(403, "Forbidden", message) as server:
        _lab(pytester, server)
        result = pytester.runpytest("--aksai-cluster=lab")
    text = _exit_message(result)
    assert f"accepted the credentials but forbids what the suite needs (403 Forbidden: {message})" in text
    assert "the `view` ClusterRole" in text


def test_tls_failure(pytester: pytest.Pytester, tmp_path: Path) -> None:
    with refusing_apiserver(200, "", "", tls_dir=tmp_path) as server:
        _lab(pytester, server)
        result = pytester.runpytest("--aksai-cluster=lab")
    text = _exit_message(result)
    assert (
        f"the API server {server} (context 'lab' of cluster profile 'lab'): the TLS handshake failed" in text
    )
    assert "certificate-authority data does not match" in text


def test_kind_create_without_the_tools_says_what_is_missing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(pytester.path))
    pytester.makefile(".toml", aksai='[clusters.throwaway]\nprovider = "kind"\ncreate = true\n')
    pytester.makepyfile(USES_CLUSTER)
    result = pytester.runpytest("--aksai-cluster=throwaway")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "Cluster profile 'throwaway' has provider = \"kind\" and create = true, which needs the kind, kubectl "
        "and docker commands and a running Docker engine; missing: kind, kubectl, docker."
    ) in _exit_message(result)


def test_create_is_only_for_kind(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", aksai='[clusters.lab]\nprovider = "aks"\ncreate = true\n')
    result = pytester.runpytest("--aksai-cluster=lab")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "create = true works only with provider = \"kind\", not 'aks'" in result.stderr.str()


def test_static_mode_contacts_no_cluster_even_with_cluster_suites_collected(
    pytester: pytest.Pytester,
) -> None:
    """`--aksai-manifests` with a live profile whose server is unreachable: nothing tries to connect."""
    from pathlib import Path as _Path

    suites = _Path(__file__).resolve().parents[2] / "suites"
    _lab(pytester, f"https://127.0.0.1:{_free_port()}")
    pytester.makepyfile(test_kaito_vendored=(suites / "test_kaito.py").read_text())
    (pytester.path / "deploy").mkdir()
    (pytester.path / "deploy" / "empty.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
    )
    result = pytester.runpytest(
        "--aksai-cluster=lab", "--aksai-manifests=deploy", "-rs", "test_kaito_vendored.py"
    )
    assert "unreachable" not in result.stdout.str()
    outcomes = result.parseoutcomes()  # every check of the suite skips; how many the suite has is its own
    assert outcomes.get("skipped", 0) >= 7, outcomes
    assert not {"passed", "failed", "errors"} & set(outcomes), outcomes
    result.stdout.fnmatch_lines(["*static mode (--aksai-manifests) reads files and contacts no cluster*"])
