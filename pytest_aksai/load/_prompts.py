"""Prompts of a given token length, built from a prompt set kept as data in top-level `fixtures/prompts/`."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_aksai._data import fixture_path
from pytest_aksai._errors import AksaiError

DEFAULT_PROMPT_SET = fixture_path("prompts/support-chat.jsonl")
TOKENS_PER_WORD = (
    1.3  # English prose on Llama/Phi/Mistral tokenizers; only the first guess, the server calibrates it
)


def load_passages(path: Path = DEFAULT_PROMPT_SET) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        passages = [str(json.loads(line)["text"]) for line in lines if line.strip()]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AksaiError(f"The prompt set {path} cannot be read", expected='one JSON object with a "text" field per line',
                         observed=f"{type(exc).__name__}: {exc}", fix="Point the load run at a JSONL prompt set.") from exc  # fmt: skip
    if not passages:
        raise AksaiError(
            f"The prompt set {path} is empty", expected="at least one passage", fix="Add passages."
        )
    return passages


class PromptBuilder:
    """Prompts of `words` words, each variant starting at a different passage so no two share a long prefix."""

    def __init__(self, passages: list[str], seed: int = 0) -> None:
        self._words = " ".join(passages).split()
        self._seed = seed
        self._starts = [0]
        for passage in passages[:-1]:
            self._starts.append(self._starts[-1] + len(passage.split()))

    def text(self, words: int, variant: int) -> str:
        start = self._starts[(self._seed + variant) % len(self._starts)]
        total = len(self._words)
        return " ".join(self._words[(start + i) % total] for i in range(max(words, 1)))


def first_guess_words(tokens: int) -> int:
    return max(1, round(tokens / TOKENS_PER_WORD))


def rescale_words(words: int, target_tokens: int, measured_tokens: int) -> int:
    """The word count that lands on `target_tokens`, given that `words` words counted `measured_tokens`
    on the server (which includes the chat template's fixed overhead, hence the offset form)."""
    per_word = measured_tokens / words if words else TOKENS_PER_WORD
    return max(1, words + round((target_tokens - measured_tokens) / max(per_word, 0.1)))
