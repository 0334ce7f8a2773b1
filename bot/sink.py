"""SlackEventSink: the agent's events as a live evidence trail in the run's thread.

``emit`` only queues (the loop never waits on Slack: a step costs microseconds, and Slack's
pacing cannot slow the investigation); one worker task per run turns the queue into Slack
calls in order. What the thread shows:

* one message per tool call, posted when it starts (tool, arguments) and updated when it ends
  (ok/error, duration, a short preview in a code block);
* the model's brief reasoning, when it gives any next to its tool calls;
* the run's status message (the root, or a follow-up's status reply) updated in place — step,
  elapsed, tokens, what it is doing — coalesced to one update per ~2 s, latest state wins.

Approval cards are the approver's (it calls ``flush`` first so the card lands after the call
it is about). The outcome is rendered from the loop's terminal event — verdict, failure,
cancellation or interruption, like the terminal sink — at the channel's top level, with a
pointer on the run's status message. The run task ``close``s the sink to drain it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agent import (
    ApprovalDecided,
    ApprovalRequested,
    Event,
    ModelReply,
    ModelRequest,
    Redacted,
    RunCancelled,
    RunFailed,
    RunInterrupted,
    Terminal,
    ToolFinished,
    ToolRequested,
    VerdictReached,
    VerificationStarted,
    Verified,
    context_notice,
)
from bot import blocks
from bot.evidence import ToolCallRecord, match_evidence
from bot.poster import SlackPoster
from budo.errors import SlackError

log = logging.getLogger("budo.bot.sink")

AuditHead = Callable[[str], Awaitable["tuple[str, int, bool] | None"]]


@dataclass(frozen=True)
class RunThread:
    """Where a run lives in Slack."""

    run_id: str
    channel: str
    thread_ts: str          # the thread the trail goes into
    status_ts: str          # the message whose status line is updated (root or follow-up reply)
    question: str
    requester: str | None
    link_base: str = "https://slack.com/"

    def link(self, ts: str | None = None) -> str:
        return blocks.permalink(self.channel, ts or self.thread_ts, self.thread_ts,
                                base=self.link_base)


class SlackEventSink:
    """Implements ``agent.protocols.EventSink`` for one run."""

    def __init__(self, poster: SlackPoster, thread: RunThread,
                 audit_head: AuditHead | None = None) -> None:
        self.poster = poster
        self.thread = thread
        self.audit_head = audit_head  # (final hash, events, keyed) of the run's audit chain
        self.calls: dict[str, ToolCallRecord] = {}
        self.redactions: dict[str, int] = {}
        self.step = 0
        self.tokens = 0
        self.started = time.monotonic()
        self.doing = "starting"
        self.outcome_ts: str | None = None  # the top-level outcome message, once posted
        self.actions: list[str] = []    # verified actions, for the verdict message
        self.posted = 0              # messages this sink posted (benchmarks check none is lost)
        self.failures = 0            # Slack calls that failed (logged, the run goes on)
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    # --- EventSink --------------------------------------------------------------------------

    async def emit(self, event: Event) -> None:
        self._queue.put_nowait(event)
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name=f"slack-sink-{event.run_id}")

    async def flush(self) -> None:
        """Return once everything emitted so far is in Slack (or failed trying)."""
        if self._worker is not None:
            await self._queue.join()

    async def close(self) -> None:
        await self.flush()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # --- the trail --------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._show(event)
            except SlackError as exc:
                self.failures += 1
                log.warning("run %s: could not show %s in Slack: %s", event.run_id, event.kind, exc)
            except Exception:  # never let one odd event stop the trail
                self.failures += 1
                log.exception("run %s: showing %s failed", event.run_id, event.kind)
            finally:
                self._queue.task_done()

    async def _show(self, event: Event) -> None:
        if isinstance(event, ModelRequest):
            self.step = event.turn
            self.doing = "thinking" if event.tools_offered else "writing the verdict"
            self._status()
        elif isinstance(event, ModelReply):
            self.tokens += event.prompt_tokens + event.completion_tokens
            if event.tool_calls and event.content.strip():
                text, body = blocks.reasoning_message(event.content)
                await self._post(text, body)
            self._status()
        elif isinstance(event, ToolRequested):
            call = ToolCallRecord(event.call_id, event.tool, dict(event.args))
            self.calls[event.call_id] = call
            self.doing = f"running {event.tool}"
            self._status()
            text, body = blocks.tool_started(event.tool, event.args)
            call.ts = await self._post(text, body)
        elif isinstance(event, Redacted):
            self.redactions[event.call_id] = event.count
        elif isinstance(event, ToolFinished):
            await self._tool_finished(event)
        elif isinstance(event, ApprovalRequested):
            self.doing = f"waiting for approval: {event.summary}"
            self._status()
        elif isinstance(event, ApprovalDecided):
            self.doing = "approved, running" if event.approved else "denied, carrying on"
            self._status()
        elif event.kind in ("context_compacted", "context_truncated"):
            line = context_notice(event)  # our own words and numbers, escaped all the same
            await self._post(line, [blocks.context(blocks.escape(line))])
        elif isinstance(event, VerdictReached | RunFailed | RunCancelled | RunInterrupted):
            await self._outcome(event)
        elif isinstance(event, VerificationStarted):
            self.doing = f"verifying the rollout (up to {event.timeout_s:g} s)"
            self._status()
        elif isinstance(event, Verified):
            icon = "✅" if event.ok else "❌"
            self.actions.append(f"{icon} {event.summary}: {event.outcome}")
            text, body = blocks.verification_message(event.summary, event.ok, event.outcome,
                                                     event.details)
            await self._post(text, body)

    async def _tool_finished(self, event: ToolFinished) -> None:
        call = self.calls.get(event.call_id)
        if call is None:
            call = self.calls[event.call_id] = ToolCallRecord(event.call_id, event.tool, {})
        call.ok = event.ok
        call.remember_output(event.output)
        text, body = blocks.tool_finished(event.tool, call.args, event.ok, event.duration_s,
                                          event.output, event.error)
        redacted = self.redactions.get(event.call_id)
        if redacted:
            body.insert(2, blocks.context(f"🔒 {redacted} secret value(s) redacted"))
        if call.ts:
            await self.poster.update_now(self.thread.channel, call.ts, text, body)
        else:  # the start message never made it: say it all in one
            call.ts = await self._post(text, body)
        self.doing = "thinking"

    async def _post(self, text: str, body: blocks.Blocks) -> str:
        ts = await self.poster.post(self.thread.channel, text, body,
                                    thread_ts=self.thread.thread_ts)
        self.posted += 1
        return ts

    def _status(self) -> None:
        line = blocks.status_line(self.step, self.elapsed, self.tokens, self.doing)
        text, body = blocks.root_message(self.thread.question, self.thread.requester,
                                         self.thread.run_id, line, running=True)
        self.poster.update_later(self.thread.channel, self.thread.status_ts, text, body)

    # --- the outcome ------------------------------------------------------------------------

    async def _outcome(self, event: Terminal) -> None:
        """Post the outcome at the channel's top level, a pointer in the thread, and the final
        status on the run's message."""
        elapsed = self.elapsed
        turns, tokens = event.turns, max(event.tokens, self.tokens)
        thread_link = self.thread.link()
        if isinstance(event, VerdictReached):
            kind, reason = "succeeded", ""
            items = [str(i) for i in event.verdict.get("evidence") or []]
            matches = match_evidence(items, list(self.calls.values()))
            links = [self.thread.link(m.ts) if m else None for m in matches]
            text, body = blocks.verdict_message(self.thread.question, event.verdict, links,
                                                self.thread.run_id, turns, tokens, elapsed,
                                                thread_link, truncated=event.truncated,
                                                actions=self.actions)
        else:
            kind, reason = event.kind, event.reason
            if isinstance(event, RunFailed) and event.internal:
                kind = "crashed"
            if isinstance(event, RunCancelled) and event.by:  # a mention budo builds itself
                reason = blocks.Safe(f"cancelled by {blocks.mention(event.by)}")
            text, body = blocks.failure_message(kind, self.thread.question, reason,
                                                self.thread.run_id, turns, tokens, elapsed,
                                                thread_link)
        try:
            self.outcome_ts = await self.poster.post(self.thread.channel, text, body)
            self.posted += 1
        except SlackError as exc:
            self.failures += 1
            log.error("run %s: could not post the outcome: %s", self.thread.run_id, exc)
        line = blocks.outcome_status(kind, reason, turns, tokens, elapsed)
        if self.outcome_ts:
            where = blocks.permalink(self.thread.channel, self.outcome_ts,
                                     base=self.thread.link_base)
            line = blocks.Safe(f"{line} · {blocks.link(where, 'outcome in the channel')}")
        status_text, status_body = blocks.root_message(
            self.thread.question, self.thread.requester, self.thread.run_id, line, running=False)
        try:
            await self.poster.update_now(self.thread.channel, self.thread.status_ts,
                                         status_text, status_body)
        except SlackError as exc:
            self.failures += 1
            log.error("run %s: could not update the status message: %s", self.thread.run_id, exc)
        if kind != "succeeded" and self.outcome_ts is None:
            # The channel refused the top-level post: the thread is the last place to say it.
            try:
                await self._post(text, body)
            except SlackError:
                self.failures += 1
        # The chain's final hash, outside the database (the AuditSink, first in line, has
        # committed the terminal event): a later rewrite of the trail cannot match it.
        head = await self.audit_head(self.thread.run_id) if self.audit_head else None
        if head is not None:
            head_text, head_body = blocks.audit_head(self.thread.run_id, *head)
            try:
                await self._post(head_text, head_body)
            except SlackError:
                self.failures += 1
