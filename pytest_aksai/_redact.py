"""Secrets never reach a terminal, a JUnit file or a report: every text the plugin writes passes `redact`."""

from __future__ import annotations

import re

REDACTED = "[redacted]"

_PATTERNS: tuple[re.Pattern[str], ...] = (
    # JSON Web Tokens (ServiceAccount tokens, Entra ID access tokens): three base64url segments.
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    # Authorization headers and bearer tokens.
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    # key=value and "key": "value" pairs whose key names a secret.
    re.compile(
        r"(?i)((?:password|passwd|secret|token|api[_-]?key|client[_-]?secret|sharedaccesskey|accountkey)"
        r"\w*[\"']?\s*[:=]\s*[\"']?)[^\s\"';,&]{4,}"
    ),
)


def redact(text: str) -> str:
    """`text` with every token, bearer credential and secret-named value replaced by `[redacted]`."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    return text
