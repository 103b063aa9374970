"""Names people type, and the one paragraph every refused input gets."""

from __future__ import annotations

import pytest

from pytest_aksai.sizing import default_catalog
from pytest_aksai.sizing._resolve import RefusedInput, model_named, one_sku, skus_named


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        (
            "T4",
            [
                "Standard_NC4as_T4_v3",
                "Standard_NC8as_T4_v3",
                "Standard_NC16as_T4_v3",
                "Standard_NC64as_T4_v3",
            ],
        ),
        (
            "A100 80GB",
            [
                "Standard_NC24ads_A100_v4",
                "Standard_NC48ads_A100_v4",
                "Standard_NC96ads_A100_v4",
                "Standard_ND96amsr_A100_v4",
            ],
        ),
        (
            "a100 80 GB",
            [
                "Standard_NC24ads_A100_v4",
                "Standard_NC48ads_A100_v4",
                "Standard_NC96ads_A100_v4",
                "Standard_ND96amsr_A100_v4",
            ],
        ),
        ("A10", ["Standard_NV36ads_A10_v5", "Standard_NV36adms_A10_v5", "Standard_NV72ads_A10_v5"]),
        ("NC24ads_A100_v4", ["Standard_NC24ads_A100_v4"]),
        ("standard_nd96asr_v4", ["Standard_ND96asr_v4"]),
    ],
)
def test_gpu_names_resolve_to_the_skus_carrying_them(typed: str, expected: list[str]) -> None:
    assert [s.name for s in skus_named(default_catalog(), typed)] == expected


def test_a100_without_memory_size_names_every_a100_sku() -> None:
    names = {s.name for s in skus_named(default_catalog(), "A100")}
    assert names == {
        "Standard_NC24ads_A100_v4",
        "Standard_NC48ads_A100_v4",
        "Standard_NC96ads_A100_v4",
        "Standard_ND96asr_v4",
        "Standard_ND96amsr_A100_v4",
    }


def test_an_ambiguous_gpu_lists_the_skus_with_count_and_price() -> None:
    with pytest.raises(RefusedInput) as exc:
        one_sku(default_catalog(), "A100 80GB")
    text = str(exc.value)
    assert text.startswith("--gpu 'A100 80GB': is carried by 4 VM sizes: ")
    assert "Standard_NC48ads_A100_v4 (2 × A100-80GB-PCIe, $7.346/hour)" in text
    assert "Valid values: Standard_NC24ads_A100_v4, " in text
    assert "Fix: pass one VM size, e.g. --gpu Standard_NC24ads_A100_v4." in text


def test_an_unknown_gpu_gets_a_did_you_mean() -> None:
    with pytest.raises(RefusedInput) as exc:
        skus_named(default_catalog(), "Standard_NC24ads_A100_v5")
    text = str(exc.value)
    assert "names no Azure VM size or GPU model in the sizing catalog" in text
    assert "did you mean Standard_NC24ads_A100_v4" in text
    assert "Valid values: a VM size such as" in text


@pytest.mark.parametrize(
    ("typed", "name"),
    [
        ("mistral-7b", "mistral-7b-instruct"),
        ("llama-3.1-8b", "llama-3.1-8b-instruct"),
        ("mistralai/Mistral-7B-Instruct-v0.3", "mistral-7b-instruct"),
        ("Mistral-7B-Instruct-v0.3", "mistral-7b-instruct"),
        ("meta-llama/Llama-3.3-70B", "llama-3.3-70b-instruct"),
        ("phi-4-mini", "phi-4-mini-instruct"),
    ],
)
def test_model_names_people_type(typed: str, name: str) -> None:
    assert model_named(default_catalog(), typed).name == name


def test_an_ambiguous_model_prefix_lists_the_models() -> None:
    with pytest.raises(RefusedInput) as exc:
        model_named(default_catalog(), "qwen2.5")
    text = str(exc.value)
    assert text.startswith("--model 'qwen2.5': is the start of ")
    assert "qwen2.5-7b-instruct" in text
    assert "Fix: did you mean " in text


def test_a_misspelt_model_gets_a_did_you_mean() -> None:
    with pytest.raises(RefusedInput) as exc:
        model_named(default_catalog(), "mistral-7b-instuct")
    text = str(exc.value)
    assert "--model 'mistral-7b-instuct': is not in the sizing catalog." in text
    assert "did you mean mistral-7b-instruct" in text
    assert "Valid values: a served name, KAITO preset or Hugging Face id of: phi-3-mini-4k-instruct" in text
