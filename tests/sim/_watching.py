"""Watch-based waits for the simulated cluster's tests: objects from the official client, typed or dicts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubernetes import watch


def _rv(obj: Any) -> str:
    return str(obj["metadata"]["resourceVersion"] if isinstance(obj, dict) else obj.metadata.resource_version)


def wait_for(
    list_fn: Callable[..., Any],
    predicate: Callable[[Any], bool],
    what: str,
    *,
    timeout: float = 10.0,
    **kwargs: Any,
) -> Any:
    """The first listed or watched object satisfying `predicate`, within `timeout` wall seconds."""
    deadline = time.monotonic() + timeout
    listing = list_fn(**kwargs)
    items = listing["items"] if isinstance(listing, dict) else listing.items
    last: Any = None
    for obj in items:
        last = obj
        if predicate(obj):
            return obj
    version = (
        listing["metadata"]["resourceVersion"]
        if isinstance(listing, dict)
        else listing.metadata.resource_version
    )
    while (remaining := deadline - time.monotonic()) > 0:
        stream = watch.Watch()
        for event in stream.stream(
            list_fn, resource_version=version, timeout_seconds=max(1, int(remaining)), **kwargs
        ):
            obj = event["object"]
            version = _rv(obj)
            last = obj
            if event["type"] != "DELETED" and predicate(obj):
                stream.stop()
                return obj
            if time.monotonic() > deadline:
                stream.stop()
                break
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last}")


def wait_gone(list_fn: Callable[..., Any], what: str, *, timeout: float = 10.0, **kwargs: Any) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listing = list_fn(**kwargs)
        items = listing["items"] if isinstance(listing, dict) else listing.items
        if not items:
            return
        stream = watch.Watch()
        version = (
            listing["metadata"]["resourceVersion"]
            if isinstance(listing, dict)
            else listing.metadata.resource_version
        )
        for event in stream.stream(
            list_fn,
            resource_version=version,
            timeout_seconds=max(1, int(deadline - time.monotonic())),
            **kwargs,
        ):
            if event["type"] == "DELETED":
                stream.stop()
                break
    raise AssertionError(f"timed out after {timeout}s waiting for {what} to be deleted")
