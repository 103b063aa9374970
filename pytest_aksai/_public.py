"""Public types report `pytest_aksai` as their module, where users import them from."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T", bound=type)


def public(cls: T) -> T:
    """Mark a class as part of the public API: `repr`, docs and tracebacks name it `pytest_aksai.<Name>`.

    Applied after the class is built, so pydantic and dataclasses resolve its annotations in its own module.
    """
    cls.__module__ = "pytest_aksai"
    return cls
