"""Each conformance check fails on the broken simulated cluster it is meant to catch, and only there.

The bundled suites run in pytest processes of their own against the embedded simulated cluster, healthy and
then with one named fault at a time (several runs at once); the run report gives each check's verdict and
message.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults._matrix import Case, Verdicts, failing

KAITO_CHECKS = {
    "test_workspace_is_ready",
    "test_workload_is_ready",
    "test_services_expose_the_model",
    "test_served_name_matches_the_preset",
    "test_inference_config_is_valid",
    "test_gpu_node_matches_instance_type",
    "test_cold_start_by_phase",
    "test_network_policies_admit_the_clients",
}
API_CHECKS = {
    "test_health",
    "test_version",
    "test_models_list",
    "test_completion",
    "test_chat_completion",
    "test_chat_streams_through_the_sdk",
    "test_chat_stream_wire_format",
    "test_streaming_really_streams",
    "test_stream_usage_chunk",
    "test_unknown_model_is_404",
    "test_prompt_over_context_is_400",
    "test_required_metrics_are_exposed",
    "test_metrics_move_with_traffic",
    "test_model_pods_did_not_restart",
    "test_model_answers_on_its_cluster_dns_name",
}
SCENARIOS = Path(__file__).parent / "scenarios"


CASES: dict[str, Case] = {
    "healthy": Case(),
    "healthy-service-proxy": Case(route="service-proxy"),
    "vllm-no-metrics": Case(("vllm-no-metrics",)),
    "vllm-buffered-stream": Case(("vllm-buffered-stream",)),
    "vllm-broken-chat-template": Case(("vllm-broken-chat-template",)),
    "vllm-wrong-served-name": Case(("vllm-wrong-served-name",)),
    "kaito-inference-oom": Case(("kaito-inference-oom",)),
    "vllm-legacy-metrics": Case(("vllm-legacy-metrics",)),
    "vllm-legacy-metrics-strict": Case(("vllm-legacy-metrics",), strict=True),
    # --- kaito/api depth (issue 18): the lab broken from outside, and healthy variants ---
    "healthy-variants": Case(
        scenario=str(SCENARIOS / "healthy-variants.yaml"),
        profile='workspaces = ["inference/workspace-phi4-mini", "models/workspace-phi4-bare"]',
        suites=("test_kaito.py", "test_api_surface.py", "test_sizing.py"),
    ),
    "config-unknown-flag": Case(scenario=str(SCENARIOS / "config-unknown-flag.yaml")),
    "config-bf16-on-t4": Case(scenario=str(SCENARIOS / "config-bf16-on-t4.yaml")),
    "gpu-device-plugin-missing": Case(("gpu-device-plugin-missing",)),
    "image-pull-backoff": Case(("image-pull-backoff=kaito-base",)),
    "unschedulable-taint": Case(scenario=str(SCENARIOS / "unschedulable-taint.yaml")),
    "nodeclaim-launch-failed": Case(
        ("nap-quota-exceeded=kaito",), scenario=str(SCENARIOS / "nodeclaim-launch-failed.yaml")
    ),
    "vllm-engine-dies": Case(("vllm-engine-dies=5",)),
    "service-wrong-port": Case(scenario=str(SCENARIOS / "service-wrong-port.yaml")),
    "networkpolicy-blocks-clients": Case(scenario=str(SCENARIOS / "networkpolicy-blocks-clients.yaml")),
    "networkpolicy-admits-named-clients": Case(
        scenario=str(SCENARIOS / "networkpolicy-blocks-clients.yaml"),
        profile='client_namespaces = ["monitoring"]',
    ),
}
CASE_TESTS = {
    "kaito-inference-oom": "test_oom_killed_inference",
    "vllm-legacy-metrics": "test_an_old_server",
    "vllm-legacy-metrics-strict": "test_an_old_server",
    "healthy-variants": "test_healthy_variants",
    "vllm-engine-dies": "test_a_model_pod_restart",
    "service-wrong-port": "test_a_service_on_the_wrong_port",
    "networkpolicy-blocks-clients": "test_a_network_policy",
    "networkpolicy-admits-named-clients": "test_a_network_policy",
}


@pytest.mark.parametrize("case", ["healthy", "healthy-service-proxy"])
def test_healthy_lab_passes_every_check(matrix: Callable[[str], Verdicts], case: str) -> None:
    verdicts = matrix(case)
    assert set(verdicts) == KAITO_CHECKS | API_CHECKS
    assert {n: c["outcome"] for n, c in verdicts.items() if c["outcome"] != "passed"} == {}
    assert verdicts["test_cold_start_by_phase"]["measurements"]["cold_start_model_load_s"]["value"] > 0


@pytest.mark.parametrize(
    ("fault", "expected", "says"),
    [
        (
            "vllm-no-metrics",
            {"test_required_metrics_are_exposed", "test_metrics_move_with_traffic"},
            "answered 404, expected 200 with Prometheus text",
        ),
        ("vllm-buffered-stream", {"test_streaming_really_streams"}, "the stream is buffered"),
        (
            "vllm-broken-chat-template",
            {"test_chat_completion", "test_chat_streams_through_the_sdk", "test_chat_stream_wire_format"},
            "answered 500",
        ),
        (
            "vllm-wrong-served-name",
            {"test_served_name_matches_the_preset"},
            "expected one of ['phi-4-mini-instruct']",
        ),
    ],
)
def test_each_model_server_fault_fails_exactly_its_checks(
    matrix: Callable[[str], Verdicts], fault: str, expected: set[str], says: str
) -> None:
    failed = failing(matrix(fault))
    assert set(failed) == expected, failed
    for name in expected:
        assert says in failed[name], (name, failed[name])


def test_oom_killed_inference_fails_the_workspace_and_says_why(
    matrix: Callable[[str], Verdicts],
) -> None:
    verdicts = matrix("kaito-inference-oom")
    failed = failing(verdicts)
    assert verdicts["test_inference_config_is_valid"]["outcome"] == "passed"
    assert set(failed) == (KAITO_CHECKS | API_CHECKS) - {"test_inference_config_is_valid"}
    for name, message in failed.items():
        assert "was OOMKilled" in message, (name, message)


def test_an_old_server_passes_with_a_warning_naming_the_rename(
    matrix: Callable[[str], Verdicts],
) -> None:
    verdicts = matrix("vllm-legacy-metrics")
    assert failing(verdicts) == {}
    warned = verdicts["test_required_metrics_are_exposed"]["warnings"]
    assert any("vllm:gpu_cache_usage_perc, renamed vllm:kv_cache_usage_perc" in w for w in warned), warned
    strict = failing(matrix("vllm-legacy-metrics-strict"))
    assert set(strict) == {"test_required_metrics_are_exposed"}
    assert "renamed vllm:kv_cache_usage_perc in newer vLLM" in strict["test_required_metrics_are_exposed"]


# --- kaito/api depth (issue 18) ------------------------------------------------------------------------------


def test_healthy_variants_pass_every_check(matrix: Callable[[str], Verdicts]) -> None:
    """Two Workspaces (one in a namespace of its own, without an inference config), a custom served name,
    the sizing suite beside them (no false alarm on the Workspace KAITO sizes itself): nothing fails."""
    verdicts = matrix("healthy-variants")
    assert set(verdicts) >= KAITO_CHECKS | API_CHECKS
    assert {n: c["outcome"] for n, c in verdicts.items() if c["outcome"] != "passed"} == {}


TERMINAL = {
    # case: what every failing check's message says (the explaining check in full, the others as root cause)
    "config-unknown-flag": "is crash-looping (CrashLoopBackOff",
    "config-bf16-on-t4": "is crash-looping (CrashLoopBackOff",
    "gpu-device-plugin-missing": "advertises no allocatable nvidia.com/gpu",
    "image-pull-backoff": "cannot pull image 'mcr.microsoft.com/aks/kaito/kaito-base",
    "unschedulable-taint": "untolerated taint",
    "nodeclaim-launch-failed": "failed to launch: Launched=Unknown, reason SubscriptionQuotaReached",
}


@pytest.mark.parametrize("case", sorted(TERMINAL))
def test_a_workspace_in_a_terminal_state_fails_every_check_that_needs_it_with_the_reason(
    matrix: Callable[[str], Verdicts], case: str
) -> None:
    verdicts = matrix(case)
    failed = failing(verdicts)
    static = {"test_inference_config_is_valid"}
    if case == "config-unknown-flag":
        assert (
            "`max-num-sequences` is not a flag vLLM 0.7.2 knows; did you mean `max-num-seqs`?"
            in failed.pop("test_inference_config_is_valid")
        )
    elif case == "config-bf16-on-t4":
        assert "dtype bfloat16 on T4 (compute capability 7.5)" in failed.pop("test_inference_config_is_valid")
        explained = failed["test_workspace_is_ready"]
        assert "Bfloat16 is only supported on GPUs with compute capability of at least 8.0" in explained
    else:
        assert verdicts["test_inference_config_is_valid"]["outcome"] == "passed"
    assert set(failed) == (KAITO_CHECKS | API_CHECKS) - static, set(failed) ^ (
        (KAITO_CHECKS | API_CHECKS) - static
    )
    for name, message in failed.items():
        assert "will not become Ready" in message and TERMINAL[case] in message, (name, message)


def test_a_model_pod_restart_during_the_run_is_its_own_finding(matrix: Callable[[str], Verdicts]) -> None:
    failed = failing(matrix("vllm-engine-dies"))
    assert "test_model_pods_did_not_restart" in failed, failed
    assert (
        "restartCount 0 → 1); last termination: Error, exit code 1"
        in failed["test_model_pods_did_not_restart"]
    )
    for name, message in failed.items():
        assert "restarted" in message, (name, message)


def test_a_service_on_the_wrong_port_says_connection_refused_on_the_target_port(
    matrix: Callable[[str], Verdicts],
) -> None:
    failed = failing(matrix("service-wrong-port"))
    assert "expected http 80→5000" in failed.pop("test_services_expose_the_model")
    # The port-forward is refused on the target port, so there is no endpoint: every check that needs one (the
    # restart check too) fails naming the refused port; the service proxy would dial the same port.
    needs_the_server = API_CHECKS | {"test_served_name_matches_the_preset"}
    # the probe pod is refused as well (curl exit 7), by the Service's routing rather than the port-forward
    assert "got exit code 7" in failed.pop("test_model_answers_on_its_cluster_dns_name")
    needs_the_server.discard("test_model_answers_on_its_cluster_dns_name")
    assert set(failed) == needs_the_server, set(failed) ^ needs_the_server
    for name, message in failed.items():
        assert "connection refused on the target port 5001 of ready pod workspace-phi4-mini-0" in message, (
            name,
            message,
        )


def test_a_network_policy_that_cuts_clients_off_fails_the_network_checks_with_its_name(
    matrix: Callable[[str], Verdicts],
) -> None:
    """The port-forward bypasses the network, so the API checks pass; the two network-path checks fail."""
    failed = failing(matrix("networkpolicy-blocks-clients"))
    assert set(failed) == {
        "test_network_policies_admit_the_clients",
        "test_model_answers_on_its_cluster_dns_name",
    }
    assert (
        "NetworkPolicy allow-monitoring, default-deny-ingress in inference selects pod workspace-phi4-mini-0 and "
        "admits no pod of namespace 'inference'" in failed["test_network_policies_admit_the_clients"]
    )
    assert "got exit code 28" in failed["test_model_answers_on_its_cluster_dns_name"]
    assert (
        "Connection timed out after 10001 milliseconds"
        in failed["test_model_answers_on_its_cluster_dns_name"]
    )
    # The namespace the policy admits, named as the client namespace, passes both.
    assert failing(matrix("networkpolicy-admits-named-clients")) == {}
