"""One error base for every paragraph a user reads: configuration, connection, wait and check.

An `AksaiError` renders what happened, what was expected, what was observed, where to look and the fix, in
that order, as one paragraph (detail lines such as a timeline follow it, indented). A `Finding` is a
conformance finding about the cluster: pytest reports it as a test *failure*. Any other `AksaiError` means
the harness could not do its job (bad configuration, unreachable cluster): a usage error or a run that ends.
"""

from __future__ import annotations

from collections.abc import Sequence


class AksaiError(Exception):
    """A problem explained in one paragraph: what / expected / observed / where to look / fix."""

    __module__ = "pytest_aksai"

    def __init__(
        self,
        what: str,
        *,
        expected: str = "",
        observed: str = "",
        where: str = "",
        fix: str = "",
        details: Sequence[str] = (),
    ) -> None:
        self.what = what.rstrip()
        self.expected = expected
        self.observed = observed
        self.where = where
        self.fix = fix
        self.details = tuple(details)
        super().__init__(self.paragraph())

    def headline(self) -> str:
        """The first sentence alone: what dependent checks repeat as their root cause."""
        first = self.what.split("\n", 1)[0]
        return first.rstrip(".")

    def paragraph(self) -> str:
        parts = [_sentence(self.what)]
        if self.expected:
            parts.append(_sentence(f"Expected {self.expected}"))
        if self.observed:
            parts.append(_sentence(f"Observed {self.observed}"))
        if self.where:
            parts.append(_sentence(f"Look at {self.where}"))
        if self.fix:
            parts.append(_sentence(self.fix))
        text = " ".join(parts)
        if self.details:
            text += "\n" + "\n".join(f"  {line}" for line in self.details)
        return text

    def __str__(self) -> str:
        return self.paragraph()


class Finding(AksaiError, AssertionError):
    """A conformance finding: the cluster does not behave as designed. Reported as a test failure."""

    __module__ = "pytest_aksai"


class ConnectError(AksaiError):
    """The cluster cannot be used (configuration, credentials, network, permissions): the harness cannot run."""

    __module__ = "pytest_aksai"

    def __init__(self, message: str, *, configuration_problem: bool) -> None:
        self.configuration_problem = configuration_problem
        super().__init__(message)


class ReadOnlyRefusal(AksaiError):
    """A read-only run (`--aksai-readonly`) refused to send a request that would write; the check skips."""

    __module__ = "pytest_aksai"

    def __init__(self, action: str) -> None:
        self.action = action
        super().__init__(
            f"read-only run (--aksai-readonly or the profile's readonly key): this check would {action}; "
            "drop --aksai-readonly to run it"
        )


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?", ":")) else text + "."
