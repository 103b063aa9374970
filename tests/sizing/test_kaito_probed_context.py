"""A Workspace without an explicit max-model-len is judged by what KAITO really runs, not the model's context.

KAITO passes `--max-model-len=auto` and vLLM serves the longest context its KV cache holds; on a live cluster
the engine's own `max_model_len` (`/v1/models`) is read instead. An explicit max-model-len is judged as set.
"""

from __future__ import annotations

from typing import Any

from pytest_aksai.sizing import analyze_objects

T4 = "Standard_NC4as_T4_v3"


def _workspace(annotations: dict[str, str] | None = None, config: str | None = None) -> dict[str, Any]:
    inference: dict[str, Any] = {"preset": {"name": "phi-4-mini-instruct"}}
    if config:
        inference["config"] = config
    return {
        "apiVersion": "kaito.sh/v1beta1",
        "kind": "Workspace",
        "metadata": {"name": "ws", "namespace": "inference", "annotations": annotations or {}},
        "resource": {"instanceType": T4},
        "inference": inference,
    }


def _config(vllm: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "inference"},
        "data": {"inference_config.yaml": f"vllm:\n{vllm}"},
    }


def _kv(objs: list[dict[str, Any]]) -> Any:
    findings = analyze_objects([("test", o) for o in objs])
    return next(f for f in findings if f.invariant == "kv-one-sequence")


def test_a_workspace_without_config_is_not_judged_at_the_full_context() -> None:
    finding = _kv([_workspace()])
    assert finding.status == "pass", finding.message


def test_the_engines_reported_context_is_judged_when_the_cluster_is_live() -> None:
    fits = _kv([_workspace({"aksai.dev/observed-max-model-len": "4096"})])
    assert fits.status == "pass" and "max-model-len 4096" in fits.message, fits.message
    too_long = _kv([_workspace({"aksai.dev/observed-max-model-len": "131072"})])
    assert too_long.status == "fail", too_long.message


def test_an_explicit_max_model_len_is_judged_as_written() -> None:
    finding = _kv([_workspace(config="cfg"), _config("  max-model-len: 131072\n")])
    assert finding.status == "fail" and "max-model-len 131072" in finding.message, finding.message
