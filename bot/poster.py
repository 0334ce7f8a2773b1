"""A rate-limit-aware poster over slack_sdk's AsyncWebClient.

Slack allows about one message per second per channel sustained (short bursts are fine) and
answers 429 with a Retry-After header beyond that. Three things keep budo inside the limits:

* a token bucket per channel that paces chat.postMessage and chat.update calls;
* coalesced updates: ``update_later`` keeps only the latest state of a message and sends it
  at most once per ``update_interval`` (the root message's live status), ``update_now`` sends
  the final state without waiting;
* slack_sdk's ``AsyncRateLimitErrorRetryHandler``, which sleeps Retry-After and retries a 429.

Every Slack failure comes out as ``budo.errors.SlackError`` (one line, the original on
__cause__) whatever Slack answered: ``ok: false``, a 5xx with an HTML or plain-text body, a
reset connection, a timeout. ``response_url`` replies go through here too (slack_sdk's webhook
client returns 4xx/5xx instead of raising). All calls share one aiohttp session: slack_sdk
opens and closes a session per call unless given one, about half the CPU of a thread.

``deliver`` is for what must not be lost (a run's outcome): retried with backoff, then the
thread, then an ephemeral message to the requester; it says which one landed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.interval_calculator import RetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from budo.config import Settings
from budo.errors import SlackError

if TYPE_CHECKING:
    from bot.metrics import Metrics

log = logging.getLogger("budo.bot.poster")

Blocks = list[dict[str, Any]] | None

# Slack errors worth another try; anything else (not_in_channel, invalid_blocks …) fails the
# same way again. https://docs.slack.dev/reference/methods/chat.postMessage (Errors)
TRANSIENT = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                       "request_timeout", "team_added_to_org", "timeout"})


class _Backoff(RetryIntervalCalculator):
    """``factor * 2**attempt`` seconds, no jitter: tests pass factor 0 and never wait."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def calculate_sleep_duration(self, current_attempt: int) -> float:
        return float(self.factor * (2 ** current_attempt))


class _Observer(AsyncRetryHandler):
    """Sees every response before the real retry handlers and never retries: counts 429s by
    method (the rate-limit handler retries them out of sight)."""

    def __init__(self, metrics: Metrics | None) -> None:
        super().__init__(max_retry_count=1_000_000)
        self.metrics = metrics

    async def _can_retry_async(self, *, state: RetryState, request: HttpRequest,
                               response: HttpResponse | None = None,
                               error: Exception | None = None) -> bool:
        if response is not None and response.status_code == 429 and self.metrics is not None:
            self.metrics.slack_429(request.url.rstrip("/").rsplit("/", 1)[-1])
        return False


def make_web_client(settings: Settings, timeout: int = 30, *,
                    session: aiohttp.ClientSession | None = None, backoff: float = 0.5,
                    metrics: Metrics | None = None) -> AsyncWebClient:
    """The AsyncWebClient the bot uses: SLACK_API_URL as base, 429s retried per Retry-After,
    connection resets twice and 500/503 once (``backoff * 2**n`` s apart). Pass the bot's
    ``session`` so calls reuse connections instead of opening a session each."""
    interval = _Backoff(backoff)
    return AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_base_url,
        timeout=timeout,
        session=session,
        retry_handlers=[
            _Observer(metrics),
            AsyncConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=interval),
            AsyncRateLimitErrorRetryHandler(max_retry_count=4),
            AsyncServerErrorRetryHandler(max_retry_count=1, interval_calculator=interval),
        ],
    )


@dataclass(frozen=True)
class Delivery:
    """Where a must-not-be-lost message landed: ``channel`` (top level, as asked), ``thread``,
    ``ephemeral`` (only the requester sees it) or ``none``; ``errors`` are the failures met."""

    via: str
    ts: str | None = None
    errors: tuple[str, ...] = ()

    @property
    def landed(self) -> bool:
        return self.via != "none"


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
                 burst: int = 3, update_interval: float = 2.0,
                 retry_delays: Sequence[float] = (1.0, 2.0, 4.0),
                 metrics: Metrics | None = None) -> None:
        self.client = client
        self.retry_delays = tuple(retry_delays)
        self.metrics = metrics
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

    async def respond(self, response_url: str, text: str, *,
                      response_type: str = "ephemeral") -> None:
        """POST to a slash command's or a click's ``response_url`` (over the shared session);
        a non-2xx answer raises SlackError like any other Slack failure."""
        session = getattr(self.client, "session", None)
        webhook = AsyncWebhookClient(response_url, session=session, timeout=self.client.timeout)
        try:
            response = await webhook.send(text=text, response_type=response_type)
        except Exception as exc:
            raise self._error("response_url", exc) from exc
        if not 200 <= response.status_code < 300:
            body = _one_line(response.body)
            self._count("response_url", f"http_{response.status_code}")
            raise SlackError(f"Slack response_url failed: HTTP {response.status_code}"
                             f"{': ' + body if body else ''}",
                             code=f"http_{response.status_code}", status=response.status_code)

    async def deliver(self, channel: str, text: str, blocks: Blocks = None, *,
                      thread_ts: str | None, user: str | None) -> Delivery:
        """Post a message that must not be lost at the channel's top level: retried after
        each of ``retry_delays`` while the failure is transient, then in ``thread_ts``, then
        as an ephemeral message to ``user``. Never raises SlackError; says where it landed."""
        errors: list[str] = []
        for delay in (0.0, *self.retry_delays):
            if delay:
                await asyncio.sleep(delay)
            try:
                return Delivery("channel", await self.post(channel, text, blocks), tuple(errors))
            except SlackError as exc:
                errors.append(str(exc))
                if exc.code not in TRANSIENT and not exc.code.startswith("http_"):
                    break  # not_in_channel, invalid_blocks …: trying again cannot help
        if thread_ts:
            try:
                ts = await self.post(channel, text, blocks, thread_ts=thread_ts)
                return Delivery("thread", ts, tuple(errors))
            except SlackError as exc:
                errors.append(str(exc))
        if user:
            try:
                await self.ephemeral(channel, user, text, thread_ts=thread_ts, blocks=blocks)
                return Delivery("ephemeral", None, tuple(errors))
            except SlackError as exc:
                errors.append(str(exc))
        return Delivery("none", None, tuple(errors))

    async def update_final(self, channel: str, ts: str, text: str,
                           blocks: Blocks = None) -> None:
        """The last state of a message that must not keep saying "running" (a run's root):
        ``update_now``, retried after each of ``retry_delays`` while the failure is
        transient. Raises SlackError when it still fails."""
        for delay in self.retry_delays:
            try:
                await self.update_now(channel, ts, text, blocks)
                return
            except SlackError as exc:
                if exc.code not in TRANSIENT and not exc.code.startswith("http_"):
                    raise
            await asyncio.sleep(delay)
        await self.update_now(channel, ts, text, blocks)

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
        except Exception as exc:  # whatever slack_sdk or aiohttp raised: one SlackError
            raise self._error(method, exc) from exc
        return dict(response.data) if isinstance(response.data, dict) else {}

    def _error(self, method: str, exc: Exception) -> SlackError:
        """One line for any failure. A SlackApiError's response may hold Slack's JSON (``ok:
        false`` + ``error``), nothing (an HTML 5xx: aiohttp's ContentTypeError leaves data
        empty) or a ``str`` (a text/plain body): never assume the first."""
        name = method.replace("_", ".")
        status: int | None = None
        if isinstance(exc, SlackApiError):
            response = exc.response
            data = getattr(response, "data", None)
            status = getattr(response, "status_code", None)
            error = data.get("error") if isinstance(data, dict) else None
            if error:
                code, detail = str(error), str(error)
            else:
                code = f"http_{status}"
                body = _one_line(data if isinstance(data, str) else "")
                detail = f"HTTP {status} with a non-JSON body" + (f": {body}" if body else "")
        else:
            code = type(exc).__name__
            detail = f"{code}: {_one_line(str(exc)) or 'no detail'}"
        self._count(name, code)
        return SlackError(f"Slack {name} failed: {detail}", code=code, status=status)

    def _count(self, method: str, code: str) -> None:
        if self.metrics is not None:
            self.metrics.slack_error(method, code)


def _one_line(text: str, limit: int = 120) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
