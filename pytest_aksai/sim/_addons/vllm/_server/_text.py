"""The simulated server's tokenizer, chat template and deterministic text generator.

Tokenizer: a pre-tokenizing regex in the spirit of BPE tokenizers, with no vocabulary file.
- a chat special token such as `<|user|>` is one token;
- a run of letters/digits/underscores, with the whitespace before it, is one token per started
  6 characters (" the" → 1, " tokenizer" → 2);
- each punctuation or symbol character, with the whitespace before it, is one token;
- leftover whitespace (before a special token, or trailing) is one token.
This gives about 1.3 tokens per English word (1.3 to 1.4 on ordinary prose), close to the
Llama/Phi/Mistral tokenizers. Token ids are a stable hash of the token text modulo the vocabulary size.
The same tokenizer serves /tokenize, `usage` and the max-model-len check, so the three always agree.
"""

from __future__ import annotations

import hashlib
import random
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

_SPECIAL = r"<\|[A-Za-z0-9_]+\|>"
_PIECE = re.compile(rf"{_SPECIAL}|\s+(?={_SPECIAL})|\s*\w+|\s*[^\w\s]|\s+")
_WORD_CHUNK = 6


def tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    for match in _PIECE.finditer(text):
        piece = match.group()
        stripped = piece.lstrip()
        if stripped and (stripped[0].isalnum() or stripped[0] == "_"):
            lead = len(piece) - len(stripped)
            first = lead + _WORD_CHUNK
            tokens.append(piece[:first])
            tokens.extend(piece[i : i + _WORD_CHUNK] for i in range(first, len(piece), _WORD_CHUNK))
        else:
            tokens.append(piece)
    return tokens


def token_ids(tokens: Sequence[str], vocab_size: int) -> list[int]:
    return [zlib.crc32(token.encode()) % vocab_size for token in tokens]


def render_chat(messages: Sequence[dict[str, str]], *, add_generation_prompt: bool = True) -> str:
    """A Phi/ChatML-style template: `<|role|>\\ncontent<|end|>\\n` per message, then `<|assistant|>\\n`."""
    parts = [f"<|{m['role']}|>\n{m['content']}<|end|>\n" for m in messages]
    if add_generation_prompt:
        parts.append("<|assistant|>\n")
    return "".join(parts)


# Short words only, so that the generated text re-tokenizes into exactly the generated tokens.
_PROSE = (
    "the model serves tokens from a GPU node and the cluster scales it with demand while each request "
    "waits in a queue until the engine has room in its batch then prefill reads the prompt and decode "
    "writes one token per step so time to first token grows with prompt size and the inter token gap "
    "grows with the batch memory bandwidth sets the pace weights stream from HBM every step KV blocks "
    "hold the context of every running sequence when blocks run out new work waits this is a simulated "
    "answer with honest counts it is stable for the same prompt and seed you can check usage against "
    "tokenize and see metrics move as load rises or falls"
)
_WORDS = tuple(sorted({word for word in _PROSE.split() if len(word) <= _WORD_CHUNK}))


@dataclass(frozen=True)
class Completion:
    tokens: tuple[str, ...]
    """The tokens the model "wants" to write before its end-of-sequence token."""


def generate(prompt: str, *, seed: int | None, served_name: str) -> Completion:
    """Deterministic text for a prompt: same prompt (and seed) → same tokens, every time, on every server."""
    digest = hashlib.sha256(f"{served_name}\0{seed}\0{prompt}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    length = rng.randint(24, 120)
    tokens: list[str] = []
    sentence = 0
    while len(tokens) < length:
        word = _WORDS[rng.randrange(len(_WORDS))]
        if sentence == 0:
            word = word.capitalize()
        tokens.append(word if not tokens else " " + word)
        sentence += 1
        if sentence >= 4 and rng.random() < 0.18:
            tokens.append(".")
            sentence = 0
        elif sentence >= 3 and rng.random() < 0.08:
            tokens.append(",")
    if tokens[-1] not in (".", ","):
        tokens.append(".")
    elif tokens[-1] == ",":
        tokens[-1] = "."
    return Completion(tuple(tokens))
