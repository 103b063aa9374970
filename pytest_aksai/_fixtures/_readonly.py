"""Read-only runs (`--aksai-readonly`): a check whose next request would write skips, naming the knob.

The kube layer's client refuses the write before it is sent (`kube._connect._ApiClient`, raising
`ReadOnlyRefusal`); here, in setup (fixtures that create namespaces, probe pods, Jobs, tokens) and in the
check itself, that refusal — also when a fixture wrapped it in a finding — becomes a skip with its reason.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from pytest_aksai._errors import ReadOnlyRefusal


def refusal_in(exc: BaseException) -> ReadOnlyRefusal | None:
    """The ReadOnlyRefusal behind `exc` (itself, or in its chain of causes), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ReadOnlyRefusal):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _skip_refused() -> Generator[None, object, object]:
    try:
        return (yield)
    except Exception as exc:
        refusal = refusal_in(exc)
        if refusal is None:
            raise
        pytest.skip(str(refusal))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _skip_refused())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _skip_refused())
