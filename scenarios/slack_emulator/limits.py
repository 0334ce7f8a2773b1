"""Rate limits and injected failures: scripted ones, and Slack's per-channel posting limit.

Slack allows about one message per second per channel with short bursts
(https://docs.slack.dev/apis/web-api/rate-limits); beyond that chat.postMessage answers 429.
Off by default so tests that do not care are not slowed; `limit_post_rate` turns it on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class _Scripted:
    left: int
    value: str | int
    when: Callable[[dict[str, Any]], bool] | None = None


@dataclass
class _Bucket:
    tokens: float
    updated: float


class Limits:
    """Decides, per call, whether the emulator answers 429 or an injected error instead."""

    def __init__(self) -> None:
        self._rate_limited: dict[str, _Scripted] = {}
        self._failures: dict[str, _Scripted] = {}
        self._http_failures: dict[str, tuple[_Scripted, int, str, Callable[..., bool]]] = {}
        self._post_rate: float | None = None
        self._post_burst = 1.0
        self._post_methods: frozenset[str] = frozenset()
        self._buckets: dict[str, _Bucket] = {}
        self.rejected_by_post_rate: list[tuple[str, str, float]] = []  # method, channel, at

    def rate_limit(self, method: str, times: int, retry_after: int) -> None:
        self._rate_limited[method] = _Scripted(times, retry_after)

    def fail(self, method: str, error: str, times: int,
             when: Callable[[dict[str, Any]], bool] | None = None) -> None:
        self._failures[method] = _Scripted(times, error, when)

    def fail_http(self, method: str, status: int, body: str, content_type: str,
                  times: int, when: Callable[[dict[str, Any]], bool] | None = None) -> None:
        self._http_failures[method] = (_Scripted(times, body), status, content_type,
                                       when or (lambda _params: True))

    def injected_http_failure(self, method: str, params: dict[str, Any] | None = None
                              ) -> tuple[int, str, str] | None:
        """(status, body, content type) when this call is to fail at the HTTP level."""
        scripted = self._http_failures.get(method)
        if scripted and scripted[0].left > 0 and scripted[3](params or {}):
            scripted[0].left -= 1
            return scripted[1], str(scripted[0].value), scripted[2]
        return None

    def limit_post_rate(self, per_second: float, burst: int,
                        methods: tuple[str, ...]) -> None:
        self._post_rate, self._post_burst = per_second, float(burst)
        self._post_methods = frozenset(methods)
        self._buckets.clear()

    def retry_after(self, method: str, channel: str | None) -> int | None:
        """Seconds for a Retry-After header if this call is to be rate limited, else None."""
        scripted = self._rate_limited.get(method)
        if scripted and scripted.left > 0:
            scripted.left -= 1
            return int(scripted.value)
        if self._post_rate is None or method not in self._post_methods or not channel:
            return None
        now = time.monotonic()
        bucket = self._buckets.setdefault(channel, _Bucket(self._post_burst, now))
        bucket.tokens = min(self._post_burst,
                            bucket.tokens + (now - bucket.updated) * self._post_rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        self.rejected_by_post_rate.append((method, channel, now))
        return max(1, round((1 - bucket.tokens) / self._post_rate))

    def injected_error(self, method: str, params: dict[str, Any] | None = None) -> str | None:
        scripted = self._failures.get(method)
        if scripted and scripted.left > 0 and (scripted.when is None
                                               or scripted.when(params or {})):
            scripted.left -= 1
            return str(scripted.value)
        return None
