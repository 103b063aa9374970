"""The one retry policy of every request the plugin sends to an API server.

A throttled (429) or briefly failing (500/502/503/504, connection reset) API server must not change a verdict.
The policy is a urllib3 `Retry` installed on the official client's connection pool (`configuration.retries`),
so typed calls (`CoreV1Api`), the plain-dict calls of `_rest` and the first response of each watch all get
it; nothing else in the kube layer sleeps and tries again. It follows client-go's rules (`rest/with_retry.go`:
a 429 or 5xx carrying `Retry-After` is retried after that many seconds, for any verb) and adds what
client-go leaves to its callers: the other 5xx and resets, with capped, fully jittered exponential back-off.

Every verb is retried because every write the plugin sends is idempotent by construction: creates carry a
fixed name and `_rest.create` answers a 409 AlreadyExists (the first attempt did land) with the existing
object; patches are JSON merge patches (the same patch twice gives the same object); deletes tolerate 404;
TokenRequests and SelfSubject…Reviews persist nothing.

A watch's stream that breaks after its first response is not the pool's to retry: the watching loops
(`_wait.wait_for`, `Informer`) resume from the last resourceVersion and list again after 410 Gone.
"""

from __future__ import annotations

import random
from typing import Any

from urllib3.exceptions import ProtocolError, ReadTimeoutError
from urllib3.util.retry import Retry

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRIES = 6
"""Retries after the first attempt: at 10 % failed requests, seven failures in a row are one in ten million."""
MAX_CONNECT_RETRIES = 3
"""A server that refuses or drops new connections (restarting, behind a flapping load balancer)."""
BACKOFF_BASE = 0.25
"""Seconds; retry n sleeps a uniformly random time in [0, min(BACKOFF_CAP, BACKOFF_BASE * 2**n)]."""
BACKOFF_CAP = 8.0
RETRY_AFTER_CAP = 30.0
"""An API server's Retry-After (kube-apiserver sends 1) is honoured up to this many seconds."""
RETRIED_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "POST"})


class ClusterClock:
    """Cluster seconds per wall second, shared by a client's policy and every copy urllib3 makes of it: the
    numbers above are cluster seconds, so a time-compressed simulated cluster sees the client back off for
    as long, in its time, as a live one would (set once the cluster advertises its scale)."""

    def __init__(self, time_scale: float = 1.0) -> None:
        self.time_scale = time_scale


class ApiRetry(Retry):
    """urllib3's `Retry` with full-jitter back-off (its own grows without jitter and does not wait before the
    second attempt: many clients throttled together would come back together), a cap on Retry-After, and
    both in cluster seconds (`clock`)."""

    clock = ClusterClock()

    def new(self, **kw: Any) -> ApiRetry:
        retry = super().new(**kw)
        retry.clock = self.clock
        return retry

    def get_backoff_time(self) -> float:
        return backoff(len(self.history)) / self.clock.time_scale

    def parse_retry_after(self, retry_after: str) -> float:
        return min(RETRY_AFTER_CAP, super().parse_retry_after(retry_after)) / self.clock.time_scale


def backoff(attempt: int) -> float:
    """Seconds to wait before retry `attempt` (1, 2, …): full jitter under an exponential, capped bound."""
    if attempt <= 0:
        return 0.0
    return random.uniform(0.0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))


STREAM_ERRORS: tuple[type[BaseException], ...] = (
    ProtocolError,
    ReadTimeoutError,
    ConnectionError,
)
"""A watch stream that broke after its first response (reset, truncated chunk, silent server)."""


def api_retry(**overrides: Any) -> ApiRetry:
    """The policy; `overrides` narrow it for one purpose (e.g. `connect=0` for a reachability probe)."""
    settings: dict[str, Any] = {
        "total": MAX_RETRIES,
        "connect": MAX_CONNECT_RETRIES,
        "read": MAX_RETRIES,
        "status": MAX_RETRIES,
        "other": 0,
        "redirect": 0,
        "allowed_methods": RETRIED_METHODS,
        "status_forcelist": RETRIED_STATUSES,
        "respect_retry_after_header": True,
        "raise_on_status": False,  # the last answer becomes the ApiException, with the server's message
        "raise_on_redirect": False,
    }
    settings.update(overrides)
    policy = ApiRetry(**settings)
    policy.clock = ClusterClock()
    return policy


def clock_of(retries: object) -> ClusterClock | None:
    """The clock of a client's policy (`configuration.retries`), if it is ours."""
    return retries.clock if isinstance(retries, ApiRetry) else None
