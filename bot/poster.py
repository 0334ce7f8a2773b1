"""A rate-limit-aware poster over slack_sdk's AsyncWebClient.

Slack allows about one message per second per channel sustained (short bursts are fine) and
answers 429 with a Retry-After header beyond that. Three things keep budo inside the limits:

* a token bucket per channel that paces chat.postMessage and chat.update calls;
* coalesced updates: ``update_later`` keeps only the latest state of a message and sends it
  at most once per ``update_interval`` (the root message's live status), ``update_now`` sends
  the final state without waiting;
* slack_sdk's ``AsyncRateLimitErrorRetryHandler``, which sleeps Retry-After and retries a 429.

Slack failures come out as ``budo.errors.SlackError`` (one line, the API error on __cause__).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from budo.config import Settings
from budo.errors import SlackError

log = logging.getLogger("budo.bot.poster")

Blocks = list[dict[str, Any]] | None


def make_web_client(settings: Settings, timeout: int = 30) -> AsyncWebClient:
    """The one AsyncWebClient the bot uses: SLACK_API_URL as base, 429s retried per
    Retry-After, connection resets and 500/503 retried once."""
    return AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_base_url,
        timeout=timeout,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=4),
            AsyncServerErrorRetryHandler(max_retry_count=1),
        ],
    )


class _Bucket:
    """Token bucket: ``burst`` calls at once, then ``rate`` per second. Calls to one channel
    go one at a time, in order, and refill is counted from when the previous call *finished*:
    Slack counts arrivals, and this way network jitter can never make two arrive too close."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.capacity = rate, float(burst)
        self.tokens = float(burst)
        self.updated = time.monotonic()
        self.lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self.lock:  # FIFO per channel: messages land in the order they were sent
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            if self.tokens < 1:
                await asyncio.sleep((1 - self.tokens) / self.rate)
                self.tokens = 1.0
            self.tokens -= 1
            try:
                yield
            finally:
                self.updated = time.monotonic()


class _PendingUpdate:
    """The latest wanted state of one message and the task that will send it."""

    def __init__(self) -> None:
        self.payload: tuple[str, Blocks] | None = None
        self.last_sent = 0.0
        self.hurry = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class SlackPoster:
    def __init__(self, client: AsyncWebClient, *, rate_per_channel: float = 1.0,
                 burst: int = 3, update_interval: float = 2.0) -> None:
        self.client = client
        self.rate_per_channel = rate_per_channel
        self.burst = burst
        self.update_interval = update_interval
        self._buckets: dict[str, _Bucket] = {}
        self._updates: dict[tuple[str, str], _PendingUpdate] = {}

    # --- sending ------------------------------------------------------------------------

    async def post(self, channel: str, text: str, blocks: Blocks = None,
                   thread_ts: str | None = None) -> str:
        """chat.postMessage, paced per channel; returns the new message's ts."""
        async with self._bucket(channel).slot():
            response = await self._call("chat_postMessage", channel=channel, text=text,
                                        blocks=blocks, thread_ts=thread_ts, unfurl_links=False,
                                        unfurl_media=False)
        return str(response["ts"])

    async def update(self, channel: str, ts: str, text: str, blocks: Blocks = None) -> None:
        """chat.update now (paced); drops any coalesced state still waiting for this message."""
        await self.update_now(channel, ts, text, blocks)

    def update_later(self, channel: str, ts: str, text: str, blocks: Blocks = None) -> None:
        """Ask for this state of the message; sent within ``update_interval``, latest wins."""
        pending = self._updates.setdefault((channel, ts), _PendingUpdate())
        pending.payload = (text, blocks)
        if pending.task is None or pending.task.done():
            pending.task = asyncio.create_task(self._send_pending(channel, ts, pending))

    async def update_now(self, channel: str, ts: str, text: str, blocks: Blocks = None) -> None:
        """Send this state now, after any update in flight: the final word on the message."""
        pending = self._updates.setdefault((channel, ts), _PendingUpdate())
        pending.payload = (text, blocks)
        pending.hurry.set()
        if pending.task is None or pending.task.done():
            pending.task = asyncio.create_task(self._send_pending(channel, ts, pending))
        task = pending.task
        try:
            await asyncio.shield(task)
        finally:
            if task.done() and self._updates.get((channel, ts)) is pending:
                self._updates.pop((channel, ts), None)
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]

    async def ephemeral(self, channel: str, user: str, text: str,
                        thread_ts: str | None = None, blocks: Blocks = None) -> None:
        await self._call("chat_postEphemeral", channel=channel, user=user, text=text,
                         thread_ts=thread_ts, blocks=blocks)

    async def tell(self, channel: str, user: str, text: str | None,
                   thread_ts: str | None = None) -> None:
        """A private answer to one user that never raises: the click or command it answers
        has already been acked, so a Slack failure here can only be logged."""
        if not text:
            return
        try:
            await self.ephemeral(channel, user, text, thread_ts=thread_ts)
        except SlackError as exc:
            log.warning("could not answer %s in %s: %s", user, channel, exc)

    async def upload(self, channel: str, thread_ts: str | None,
                     files: list[dict[str, Any]], comment: str | None = None) -> None:
        """files_upload_v2: getUploadURLExternal, POST the bytes, completeUploadExternal."""
        await self._call("files_upload_v2", channel=channel, thread_ts=thread_ts,
                         file_uploads=files, initial_comment=comment)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Any other Web API method (auth.test, usergroups.users.list …), errors translated."""
        return await self._call(method, **params)

    async def aclose(self) -> None:
        """Send what is still waiting to be sent, then stop."""
        tasks = [p.task for p in self._updates.values() if p.task and not p.task.done()]
        for pending in self._updates.values():
            pending.hurry.set()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._updates.clear()

    # --- internals ----------------------------------------------------------------------

    def _bucket(self, channel: str) -> _Bucket:
        bucket = self._buckets.get(channel)
        if bucket is None:
            bucket = self._buckets[channel] = _Bucket(self.rate_per_channel, self.burst)
        return bucket

    async def _send_pending(self, channel: str, ts: str, pending: _PendingUpdate) -> None:
        # Loop: a new state may arrive while the previous one is on the wire.
        while pending.payload is not None:
            wait = pending.last_sent + self.update_interval - time.monotonic()
            if wait > 0 and not pending.hurry.is_set():
                try:
                    await asyncio.wait_for(pending.hurry.wait(), wait)
                except TimeoutError:
                    pass
            text, blocks = pending.payload
            pending.payload = None
            pending.last_sent = time.monotonic()
            try:
                async with self._bucket(channel).slot():
                    await self._call("chat_update", channel=channel, ts=ts, text=text,
                                     blocks=blocks)
            except SlackError as exc:
                if pending.hurry.is_set():
                    raise
                log.warning("could not update message %s in %s: %s", ts, channel, exc)

    async def _call(self, method: str, **params: Any) -> dict[str, Any]:
        params = {key: value for key, value in params.items() if value is not None}
        try:
            if hasattr(self.client, method):
                response = await getattr(self.client, method)(**params)
            else:
                response = await self.client.api_call(method, params=params)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            raise SlackError(f"Slack {method.replace('_', '.')} failed: {error or exc}") from exc
        except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise SlackError(f"Slack {method.replace('_', '.')} failed: "
                             f"{type(exc).__name__}: {exc}") from exc
        return dict(response.data) if isinstance(response.data, dict) else {}
