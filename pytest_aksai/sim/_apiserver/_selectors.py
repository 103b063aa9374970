"""Label selectors (equality- and set-based) and field selectors, parsed as kube-apiserver parses them."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ._errors import ApiError

Matcher = Callable[[Mapping[str, str]], bool]

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=|>|<)\s*([A-Za-z0-9_.-]*)\s*$")


def _split_terms(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    terms.append("".join(current))
    return [t for t in terms if t.strip()]


def _term(text: str) -> Matcher:
    m = _EQ_RE.match(text)
    if m:
        key, op, value = m.groups()
        if op in ("=", "=="):
            return lambda labels: labels.get(key) == value
        if op == "!=":
            return lambda labels: labels.get(key) != value
        try:
            bound = int(value)
        except ValueError:
            raise ApiError(
                400,
                f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an "
                f"integer: {value!r}",
            ) from None

        def _cmp(labels: Mapping[str, str]) -> bool:
            try:
                got = int(labels.get(key, ""))
            except ValueError:
                return False
            return got > bound if op == ">" else got < bound

        return _cmp
    m = _SET_RE.match(text)
    if m:
        negated, key, op, values_text = m.groups()
        if op:
            if negated:
                raise ApiError(400, f"unable to parse requirement: found '!', but expected key before {op!r}")
            values = {v.strip() for v in values_text.split(",") if v.strip()}
            if op == "in":
                return lambda labels: labels.get(key) in values
            return lambda labels: labels.get(key) not in values
        if negated:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise ApiError(400, f"unable to parse requirement: invalid label selector: {text!r}")


def parse_label_selector(text: str | None) -> Matcher | None:
    """`None` when the selector selects everything."""
    if not text or not text.strip():
        return None
    matchers = [_term(t) for t in _split_terms(text)]
    return lambda labels: all(m(labels) for m in matchers)


def label_selector_from_dict(selector: Mapping[str, Any] | None) -> Matcher | None:
    """A `metav1.LabelSelector` (matchLabels + matchExpressions) as a matcher; an empty one matches everything."""
    if not selector:
        return None
    equal = dict(selector.get("matchLabels") or {})
    expressions = [
        (str(e.get("key", "")), str(e.get("operator", "")), set(e.get("values") or []))
        for e in selector.get("matchExpressions") or []
    ]

    def _match(labels: Mapping[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in equal.items()):
            return False
        for key, op, values in expressions:
            if (
                (op == "In" and labels.get(key) not in values)
                or (op == "NotIn" and labels.get(key) in values)
                or (op == "Exists" and key not in labels)
                or (op == "DoesNotExist" and key in labels)
            ):
                return False
        return True

    return _match


def selector_to_string(selector: Mapping[str, Any] | None) -> str:
    """The string form `kubectl` and the scale subresource's `status.selector` use."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), sorted(expr.get("values") or [])
        if op in ("In", "NotIn"):
            parts.append(f"{key} {op.lower()} ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


FieldMatcher = Callable[[Mapping[str, Any]], bool]


def parse_field_selector(text: str | None, supported: frozenset[str], kind_desc: str) -> FieldMatcher | None:
    if not text or not text.strip():
        return None
    terms: list[tuple[str, bool, str]] = []
    for term in _split_terms(text):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not m:
            raise ApiError(400, f"invalid selector: '{text}'; can't understand '{term}'")
        key, op, value = m.groups()
        if key not in supported and key not in ("metadata.name", "metadata.namespace"):
            raise ApiError(400, f"field label not supported: {key}")
        terms.append((key, op != "!=", value))

    def _match(obj: Mapping[str, Any]) -> bool:
        return all((field_value(obj, key) == value) == equal for key, equal, value in terms)

    return _match
