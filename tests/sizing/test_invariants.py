"""Every sizing invariant with a passing and a failing manifest; failing messages quote the numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_aksai.sizing import Finding, analyze_objects, load_manifests

UPSTREAM = Path(__file__).resolve().parents[2] / ".." / "shared" / "upstream" / "aks-ai-lab-manifests"


def _workspace(name: str, preset: str, instance_type: str, vllm: dict[str, Any] | None = None) -> str:
    cm = ""
    ref = ""
    if vllm is not None:
        ref = f"  config: {name}-cfg\n"
        body = yaml.safe_dump({"vllm": vllm}).replace("\n", "\n      ")
        cm = (
            f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}-cfg, namespace: ml}}\n"
            f"data:\n  inference_config.yaml: |\n      {body}\n"
        )
    return (
        f"apiVersion: kaito.sh/v1beta1\nkind: Workspace\nmetadata: {{name: {name}, namespace: ml}}\n"
        f"resource: {{instanceType: {instance_type}}}\ninference:\n  preset: {{name: {preset}}}\n{ref}{cm}"
    )


def _vllm(name: str, args: list[str], sku: str | None = "Standard_NC24ads_A100_v4", gpus: int = 1) -> str:
    selector = f"      nodeSelector: {{node.kubernetes.io/instance-type: {sku}}}\n" if sku else ""
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: ml}}\nspec:\n"
        f"  template:\n    spec:\n{selector}      containers:\n      - name: vllm\n"
        f"        image: vllm/vllm-openai:v0.8.5\n        args: {args!r}\n"
        f"        resources: {{limits: {{nvidia.com/gpu: {gpus}}}}}\n"
    )


def _nodepool(name: str, family: str | None, skus: list[str], gpu_limit: int | None = 4) -> str:
    reqs = [{"key": "karpenter.azure.com/sku-name", "operator": "In", "values": skus}]
    if family is not None:
        reqs.insert(0, {"key": "karpenter.azure.com/sku-family", "operator": "In", "values": [family]})
    spec: dict[str, Any] = {
        "template": {
            "spec": {"requirements": reqs, "taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]}
        }
    }
    if gpu_limit is not None:
        spec["limits"] = {"nvidia.com/gpu": str(gpu_limit)}
    return yaml.safe_dump(
        {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": name}, "spec": spec}
    )


def _scaled(name: str, target: str, max_replicas: int, kind: str | None = None) -> str:
    ref: dict[str, Any] = {"name": target}
    if kind:
        ref.update(kind=kind, apiVersion="apps/v1")
    return yaml.safe_dump(
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": name, "namespace": "ml"},
            "spec": {
                "scaleTargetRef": ref,
                "maxReplicaCount": max_replicas,
                "triggers": [{"type": "cpu", "metadata": {"value": "50"}}],
            },
        }
    )


def run(*docs: str) -> list[Finding]:
    objs = [("m.yaml", d) for doc in docs for d in yaml.safe_load_all(doc) if d]
    return analyze_objects(objs)


def one(findings: list[Finding], invariant: str, name: str | None = None) -> Finding:
    hits = [f for f in findings if f.invariant == invariant and (name is None or f.name == name)]
    assert len(hits) == 1, [f.test_id for f in findings]
    return hits[0]


def test_weights_fit() -> None:
    ok = one(run(_workspace("p", "phi-4-mini-instruct", "Standard_NC4as_T4_v3")), "weights-fit")
    assert ok.status == "pass"
    bad = one(
        run(
            _workspace("m", "mistral-7b-instruct", "Standard_NC16as_T4_v3", {"gpu-memory-utilization": 0.92})
        ),
        "weights-fit",
    )
    assert bad.status == "fail"
    assert "13.50 GiB × 1.3 = 17.55 GiB" in bad.message
    assert "14.72 GiB" in bad.message
    assert bad.test_id == "m.yaml::Workspace/m::weights-fit"


def test_kv_one_sequence() -> None:
    ok = one(
        run(_vllm("a", ["--model", "meta-llama/Llama-3.1-8B-Instruct", "--max-model-len", "32768"])),
        "kv-one-sequence",
    )
    assert ok.status == "pass"
    # Phi-3-mini keeps 32 KV heads: 384 KiB per token; 6.28 GiB of KV budget on a T4 holds 17,155 tokens.
    bad = one(
        run(_workspace("p3", "phi-3-mini-128k-instruct", "Standard_NC8as_T4_v3", {"max-model-len": 32768})),
        "kv-one-sequence",
    )
    assert bad.status == "fail"
    assert "17155 tokens at 393216 B/token" in bad.message
    assert "max-model-len 32768" in bad.message


def test_kv_concurrency_is_a_warning() -> None:
    ok = one(
        run(
            _workspace(
                "p",
                "phi-4-mini-instruct",
                "Standard_NC4as_T4_v3",
                {"max-model-len": 4096, "max-num-seqs": 12},
            )
        ),
        "kv-concurrency",
    )
    assert ok.status == "pass"
    warn = one(
        run(
            _workspace(
                "p",
                "phi-4-mini-instruct",
                "Standard_NC4as_T4_v3",
                {"max-model-len": 4096, "max-num-seqs": 64},
            )
        ),
        "kv-concurrency",
    )
    assert warn.status == "warn"
    assert warn.ok
    assert "max-num-seqs 64 > 12 sequences" in warn.message
    assert "--max-num-seqs 12" in warn.message


def test_context_limit() -> None:
    ok = one(
        run(_vllm("a", ["--model", "mistralai/Mistral-7B-Instruct-v0.3", "--max-model-len=32768"])),
        "context-limit",
    )
    assert ok.status == "pass"
    bad = one(
        run(_vllm("a", ["--model", "mistralai/Mistral-7B-Instruct-v0.3", "--max-model-len=65536"])),
        "context-limit",
    )
    assert bad.status == "fail"
    assert "65536 > mistral-7b-instruct context limit 32768" in bad.message


def test_dtype_supported() -> None:
    ok = one(
        run(_vllm("a", ["vllm", "serve", "microsoft/Phi-4-mini-instruct", "--dtype", "bfloat16"])),
        "dtype-supported",
    )
    assert ok.status == "pass"
    bad = one(
        run(
            _vllm(
                "a",
                ["vllm", "serve", "microsoft/Phi-4-mini-instruct", "--dtype", "bfloat16"],
                sku="Standard_NC4as_T4_v3",
            )
        ),
        "dtype-supported",
    )
    assert bad.status == "fail"
    assert "compute capability ≥ 8.0" in bad.message
    assert "has 7.5" in bad.message


def test_tensor_parallel() -> None:
    ok = one(
        run(
            _vllm(
                "a",
                ["--model", "Qwen/Qwen2.5-72B-Instruct", "--tensor-parallel-size", "4"],
                sku="Standard_NC96ads_A100_v4",
                gpus=4,
            )
        ),
        "tensor-parallel",
    )
    assert ok.status == "pass"
    bad = one(
        run(
            _vllm(
                "a",
                ["--model", "Qwen/Qwen2.5-72B-Instruct", "--tensor-parallel-size", "3"],
                sku="Standard_NC96ads_A100_v4",
                gpus=4,
            )
        ),
        "tensor-parallel",
    )
    assert bad.status == "fail"
    assert "does not divide the 4 GPU(s)" in bad.message
    assert "valid values here: 1, 2, 4" in bad.message
    heads = one(
        run(
            _vllm(
                "a",
                ["--model", "Qwen/Qwen2.5-7B-Instruct", "--tensor-parallel-size", "8"],
                sku="Standard_ND96asr_v4",
                gpus=8,
            )
        ),
        "tensor-parallel",
    )
    assert heads.status == "fail"
    assert "28 attention heads" in heads.message


def test_keda_target_kind() -> None:
    ws = _workspace("p", "phi-4-mini-instruct", "Standard_NC4as_T4_v3")
    ok = one(run(ws, _scaled("s", "p", 2, kind="StatefulSet")), "keda-target-kind")
    assert ok.status == "pass"
    bad = one(run(ws, _scaled("s", "p", 2)), "keda-target-kind")
    assert bad.status == "fail"
    assert "empty kind means Deployment" in bad.message
    assert "KAITO runs Workspace p as a StatefulSet" in bad.message
    missing = one(run(_scaled("s", "nothing", 2)), "keda-target-kind")
    assert missing.status == "unknown"


def test_keda_gpu_limit() -> None:
    ws = _workspace("p", "phi-4-mini-instruct", "Standard_NC4as_T4_v3")
    pools = (
        _nodepool("a", "N", ["Standard_NC4as_T4_v3"], 3),
        _nodepool("b", None, ["Standard_NC4as_T4_v3"], 3),
    )
    ok = one(run(ws, *pools, _scaled("s", "p", 6, kind="StatefulSet")), "keda-gpu-limit")
    assert ok.status == "pass"
    assert "6 × 1 GPU(s) = 6 ≤ nvidia.com/gpu limit 6 (a 3 + b 3)" in ok.message
    bad = one(run(ws, *pools, _scaled("s", "p", 8, kind="StatefulSet")), "keda-gpu-limit")
    assert bad.status == "fail"
    assert "8 × 1 GPU(s) = 8 > nvidia.com/gpu limit 6" in bad.message
    assert "Lower maxReplicaCount to 6" in bad.message
    # a pool that cannot create the Workspace's instance type does not count
    other = one(
        run(ws, _nodepool("c", "N", ["Standard_NC24ads_A100_v4"], 8), _scaled("s", "p", 2, "StatefulSet")),
        "keda-gpu-limit",
    )
    assert other.status == "fail"
    assert "no NodePool can create a node" in other.message


def test_nodepool_sku_match() -> None:
    ok = one(
        run(_nodepool("a", "N", ["Standard_NC4as_T4_v3", "Standard_NC24ads_A100_v4"])), "nodepool-sku-match"
    )
    assert ok.status == "pass"
    assert "match 2 known GPU SKU(s)" in ok.message
    bad = one(run(_nodepool("a", "NC", ["Standard_NC4as_T4_v3"])), "nodepool-sku-match")
    assert bad.status == "fail"
    assert "karpenter.azure.com/sku-family In ['NC'] matches no GPU SKU" in bad.message
    assert "use values [N]" in bad.message
    by_gpu = yaml.safe_dump(
        {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": "g"},
            "spec": {
                "template": {
                    "spec": {
                        "requirements": [
                            {"key": "karpenter.azure.com/sku-gpu-name", "operator": "In", "values": ["A100"]},
                            {"key": "karpenter.azure.com/sku-gpu-count", "operator": "Gt", "values": ["1"]},
                        ]
                    }
                }
            },
        }
    )
    multi = one(run(by_gpu), "nodepool-sku-match")
    assert multi.status == "pass"
    assert (
        "match 4 known GPU SKU(s): Standard_NC48ads_A100_v4, Standard_NC96ads_A100_v4, Standard_ND96asr_v4, "
        "Standard_ND96amsr_A100_v4" in multi.message
    )
    unknown = one(run(_nodepool("a", None, ["Standard_NC999_vX"])), "nodepool-sku-match")
    assert unknown.status == "unknown"


def test_nodepool_fits_model() -> None:
    dep = _vllm("big", ["--model", "meta-llama/Llama-3.1-8B-Instruct", "--max-model-len", "8192"], sku=None)
    ok = one(
        run(dep, _nodepool("a", "N", ["Standard_NC4as_T4_v3", "Standard_NC24ads_A100_v4"])),
        "nodepool-fits-model[Deployment/big]",
    )
    assert ok.status == "pass"
    assert "Standard_NC24ads_A100_v4" in ok.message
    bad = one(
        run(dep, _nodepool("a", "N", ["Standard_NC4as_T4_v3", "Standard_NC6s_v3"])),
        "nodepool-fits-model[Deployment/big]",
    )
    assert bad.status == "fail"
    assert "Standard_NC4as_T4_v3, Standard_NC6s_v3" in bad.message


def test_unknown_model_or_sku_is_reported_not_passed() -> None:
    f = run(_vllm("a", ["--model", "acme/secret-model"]))
    assert [x.invariant for x in f] == ["catalog"]
    assert f[0].status == "unknown"
    assert "unknown model 'acme/secret-model'" in f[0].message
    g = run(_workspace("w", "phi-4-mini-instruct", "Standard_X1"))
    assert g[0].status == "unknown"
    assert "unknown gpu 'Standard_X1'" in g[0].message
    h = run(_vllm("a", ["--model", "microsoft/phi-4", "--quantization", "exl2"]))
    assert h[0].invariant == "config"
    assert "exl2" in h[0].message


def test_non_inference_objects_are_ignored() -> None:
    cpu = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n"
        "      containers: [{name: web, image: nginx}]\n"
    )
    assert run(cpu, "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n") == []


def test_vllm_args_in_a_shell_script_are_parsed() -> None:
    dep = _vllm("a", ["sh", "-c", "vllm serve microsoft/phi-4 --max-model-len 65536 --dtype half"])
    f = one(run(dep), "context-limit")
    assert f.status == "fail"
    assert "65536 > phi-4 context limit 16384" in f.message


def test_load_manifests_walks_folders_and_documents(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.yaml").write_text("kind: A\n---\n---\nkind: List\nitems: [{kind: B}, {kind: C}]\n")
    (tmp_path / "y.yml").write_text("kind: D\n")
    (tmp_path / "notes.txt").write_text("kind: E\n")
    got = load_manifests([tmp_path])
    assert [(s, o["kind"]) for s, o in got] == [
        ("a/x.yaml", "A"),
        ("a/x.yaml", "B"),
        ("a/x.yaml", "C"),
        ("y.yml", "D"),
    ]


@pytest.mark.skipif(not UPSTREAM.is_dir(), reason=f"the real lab's manifests are not at {UPSTREAM}")
def test_real_lab_manifests() -> None:
    findings = analyze_objects(load_manifests([UPSTREAM]))
    by_id = {f.test_id: f for f in findings}
    assert (
        by_id["kaito/workspace-mistral-7b.yaml::Workspace/workspace-mistral-7b::weights-fit"].status == "fail"
    )
    assert (
        by_id["kaito/workspace-llama3-8b.yaml::Workspace/workspace-llama3-8b::weights-fit"].status == "fail"
    )
    assert (
        by_id["kaito/workspace-phi4-mini.yaml::Workspace/workspace-phi4-mini::weights-fit"].status == "pass"
    )
    assert (
        by_id["kaito/workspace-phi4-mini.yaml::Workspace/workspace-phi4-mini::kv-concurrency"].status
        == "warn"
    )
    assert by_id["nap/gpu-nodepool.yaml::NodePool/gpu-inference::nodepool-sku-match"].status == "fail"
    assert (
        by_id["ingress/4-inference-extension.yaml::ScaledObject/phi4-pool-scaler::keda-target-kind"].status
        == "fail"
    )
    assert (
        by_id[
            "keda/2-servicebus-scaledobject.yaml::ScaledObject/inference-sb-scaler::keda-target-kind"
        ].status
        == "pass"
    )


def test_one_catalog_the_sims_nodes_come_from_the_sizing_catalog() -> None:
    """Every GPU SKU sizing knows is a VM size the simulated cluster can run, with the same GPUs."""
    from pytest_aksai.sim._scenarios._vmsizes import VM_SIZES
    from pytest_aksai.sizing import default_catalog, vm_sizes

    for sku in default_catalog().skus:
        node = VM_SIZES[sku.name]
        assert (node.vcpus, node.gpu_count) == (sku.vcpu, sku.gpu_count), sku.name
        assert node.gpu is not None and node.gpu.key == sku.gpu_model, sku.name
    system = {name for name, size in vm_sizes().items() if size.gpu is None}
    assert {"Standard_D2ds_v5", "Standard_D4ds_v5", "Standard_D8ds_v5", "Standard_D16ds_v5"} <= system
    assert all(VM_SIZES[name].gpu is None for name in system)
