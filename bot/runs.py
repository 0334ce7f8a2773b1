"""The run manager: starting investigations, one task per run, cancel, follow-ups, shutdown.

How a run ends is the loop's to say: it emits one terminal event (verdict, failed, cancelled
or interrupted — this module tells it which of the last two through ``stop_reason``), the
AuditSink turns that into the run's final status, and the Slack sink posts it. A run whose
process dies first is ended by the store's restart recovery.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent import (
    ChatModel,
    RunCancelled,
    RunFailed,
    RunInterrupted,
    Stop,
    ToolSpec,
    past_conversation,
    run_investigation,
)
from bot import blocks
from bot.approvals import ApprovalDesk
from bot.poster import SlackPoster
from bot.sink import RunThread, SlackEventSink
from budo import wiring
from budo.config import Settings
from budo.errors import BudoError, RunAlreadyActive, RunNotFound
from storage import AuditSink, RunRecord, Store

log = logging.getLogger("budo.bot.runs")

SHUTDOWN_REASON = "budo shut down while this was in progress"
HISTORY_KEPT = 200  # follow-up contexts kept in memory (older ones are rebuilt from the store)


@dataclass
class ActiveRun:
    thread: RunThread
    sink: SlackEventSink
    task: asyncio.Task[None] | None = None
    cancelled_by: str | None = None
    interrupting: bool = False
    began: bool = False  # the task's body ran (a task cancelled before its first step never does)

    @property
    def run_id(self) -> str:
        return self.thread.run_id

    def stop_reason(self) -> Stop:
        """What the loop says when this run's task is cancelled."""
        if self.interrupting:
            return Stop("interrupted", SHUTDOWN_REASON)
        if self.cancelled_by:
            return Stop("cancelled", f"cancelled by <@{self.cancelled_by}>", by=self.cancelled_by)
        return Stop()


class RunManager:
    def __init__(self, *, settings: Settings, store: Store, poster: SlackPoster,
                 desk: ApprovalDesk, model: ChatModel, tools: Sequence[ToolSpec],
                 link_base: str = "https://slack.com/") -> None:
        self.settings = settings
        self.store = store
        self.poster = poster
        self.desk = desk
        self.model = model
        self.tools = list(tools)
        self.link_base = link_base
        self.active: dict[str, ActiveRun] = {}
        # Runs whose root message is (being) posted but not yet active: run id -> who pressed
        # Cancel meanwhile (Slack shows the message, and its button, before it answers us).
        self.starting: dict[str, str | None] = {}
        self._endings: set[asyncio.Task[None]] = set()  # runs ended without their task
        self.histories: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    # --- starting -------------------------------------------------------------------------

    async def start(self, question: str, *, channel: str, user: str,
                    thread_ts: str | None = None) -> tuple[str | None, str | None]:
        """Start a run. Top level (``thread_ts`` None): a new root message in the channel.
        Inside a thread: a follow-up when the thread holds a finished run (its context is
        passed on), a pointer when one is running. Returns ``(run_id, note)``: ``note`` is
        what to tell the user privately (a pointer, an error), or None."""
        previous: RunRecord | None = None
        history: list[dict[str, Any]] | None = None
        namespace = self.settings.namespaces[0] if len(self.settings.namespaces) == 1 else None
        try:
            if thread_ts:
                previous = await self.store.run_for_thread(channel, thread_ts)
                if previous is not None and previous.status != "running":
                    history = self.history_for(previous)
            record = await self.store.start_run(
                source="slack", question=question, channel=channel, thread_ts=thread_ts,
                requester=user, namespace=namespace, model=self.settings.llm_model)
        except RunAlreadyActive as exc:
            return None, self._pointer(exc.run_id, channel, thread_ts)
        self.starting[record.id] = None
        try:
            line = blocks.status_line(0, 0.0, 0, "starting")
            text, body = blocks.root_message(question, user, record.id, line, running=True)
            status_ts = await self.poster.post(channel, text, body, thread_ts=thread_ts)
        except BudoError as exc:
            self.starting.pop(record.id, None)
            await self._never_started(record.id, f"could not start in Slack: {exc}", exc)
            return None, f"Could not start the investigation: {exc}"
        except BaseException:  # cancelled mid-post: restart recovery ends the run
            self.starting.pop(record.id, None)
            raise
        # Active from the moment we know its message: a Cancel pressed from here on finds it.
        thread = RunThread(record.id, channel, thread_ts or status_ts, status_ts, question, user,
                           self.link_base)
        active = ActiveRun(thread, SlackEventSink(self.poster, thread, self._audit_head),
                           cancelled_by=self.starting.pop(record.id, None))
        self.active[record.id] = active
        task = asyncio.create_task(self._drive(active, namespace, history),
                                   name=f"run-{record.id}")
        active.task = task
        task.add_done_callback(lambda _: self._ended(active))
        if active.cancelled_by is not None:
            task.cancel()  # pressed while the message was on its way: ended as cancelled
        try:
            if thread_ts is None:
                await self.store.set_thread(record.id, channel, status_ts)
            if previous is not None:
                await self.store.record(record.id, "follow_up", {"previous_run": previous.id},
                                        actor=user)
        except BudoError as exc:  # the run goes on; only its thread link or note is missing
            log.error("run %s: could not record its thread: %s", record.id, exc)
        return record.id, None

    def _pointer(self, run_id: str, channel: str, thread_ts: str | None) -> str:
        active = self.active.get(run_id)
        where = ""
        if active is not None:
            where = f" — <{active.thread.link(active.thread.status_ts)}|follow it here>"
        elif thread_ts:
            where = f" — <{blocks.permalink(channel, thread_ts, base=self.link_base)}|thread>"
        return (f"An investigation is already running in this thread: run {run_id}{where}. "
                "Wait for its verdict, or press Cancel on it.")

    def history_for(self, previous: RunRecord) -> list[dict[str, Any]]:
        """The earlier run's conversation; rebuilt from its question and verdict when it is no
        longer in memory (after a restart)."""
        kept = self.histories.get(previous.id)
        if kept is not None:
            return list(kept)
        answer = previous.headline or f"(that run ended {previous.status} without a verdict)"
        if previous.verdict:
            answer = str(previous.verdict.get("raw") or previous.verdict.get("root_cause")
                         or answer)
        return past_conversation(previous.question, previous.namespace, answer)

    # --- the run task ---------------------------------------------------------------------

    async def _drive(self, active: ActiveRun, namespace: str | None,
                     history: list[dict[str, Any]] | None) -> None:
        thread = active.thread
        active.began = True
        try:
            outcome = await run_investigation(
                thread.question, run_id=thread.run_id, model=self.model, tools=self.tools,
                sinks=[AuditSink(self.store), active.sink],
                approver=self.desk.approver(thread.channel, thread.thread_ts, thread.requester,
                                            before_post=active.sink.flush),
                budgets=wiring.budgets(self.settings), namespace=namespace,
                requester=thread.requester, history=history, stop_reason=active.stop_reason)
            self._remember(thread.run_id, outcome.messages)
            await active.sink.close()  # the outcome is in Slack before the run counts as done
        finally:
            self.active.pop(thread.run_id, None)

    def _ended(self, active: ActiveRun) -> None:
        """The run's task is done. One cancelled before its first step never ran its body, so
        neither the loop's terminal event nor ``_drive``'s cleanup happened: end the run here,
        as the loop would have (recorded, posted), instead of leaving it running until the
        next restart."""
        if active.began:
            return
        ending = asyncio.get_running_loop().create_task(self._end_unstarted(active),
                                                        name=f"end-{active.run_id}")
        self._endings.add(ending)
        ending.add_done_callback(self._endings.discard)

    async def _end_unstarted(self, active: ActiveRun) -> None:
        stop = active.stop_reason()
        ended: RunCancelled | RunInterrupted = (
            RunInterrupted(run_id=active.run_id, reason=stop.reason, turns=0, tokens=0)
            if stop.kind == "interrupted" else
            RunCancelled(run_id=active.run_id, reason=stop.reason, turns=0, tokens=0,
                         by=stop.by))
        for sink in (AuditSink(self.store, actor=stop.by or "budo"), active.sink):
            try:
                await sink.emit(ended)
            except BudoError as exc:
                log.error("run %s: could not record or post its end: %s", active.run_id, exc)
        try:
            await active.sink.close()
        except BudoError as exc:
            log.error("run %s: could not post its end: %s", active.run_id, exc)
        finally:
            self.active.pop(active.run_id, None)

    async def _audit_head(self, run_id: str) -> tuple[str, int, bool] | None:
        """(final hash, events, keyed) of the run's chain, for the thread (None if unknown)."""
        try:
            run = await self.store.get_run(run_id)
        except BudoError:
            return None
        return run.head_hash, run.event_count, self.store.audit_key is not None

    async def _never_started(self, run_id: str, reason: str, error: BudoError) -> None:
        """A run the loop never got to (Slack refused its first message): end it the same
        way the loop would, through the AuditSink."""
        try:
            await AuditSink(self.store, actor="budo").emit(RunFailed(
                run_id=run_id, reason=reason, error_type=type(error).__name__, turns=0,
                tokens=0))
        except BudoError as exc:
            log.error("run %s: could not record its end: %s", run_id, exc)

    def _remember(self, run_id: str, messages: list[dict[str, Any]]) -> None:
        self.histories[run_id] = messages
        while len(self.histories) > HISTORY_KEPT:
            self.histories.popitem(last=False)

    # --- cancel and shutdown --------------------------------------------------------------

    async def cancel(self, run_id: str, user: str) -> str | None:
        """The Cancel button: the requester or on-call may stop a run. Returns what to tell
        the user privately, or None when the run is being cancelled."""
        if run_id in self.starting:  # its message is visible, our record of it not yet
            return await self._cancel_starting(run_id, user)
        active = self.active.get(run_id)
        if active is None or active.task is None or active.task.done():
            try:
                record = await self.store.get_run(run_id)
            except RunNotFound:
                return f"There is no run {run_id}."
            return f"Run {run_id} is not running any more ({record.status}). Nothing changed."
        if user != active.thread.requester and user not in await self.desk.policy.members():
            return "Only the person who asked or on-call can cancel this investigation."
        if active.cancelled_by is None:
            active.cancelled_by = user
            await self.store.record(run_id, "cancel_requested", {"user": user}, actor=user)
            active.task.cancel()
        return None

    async def _cancel_starting(self, run_id: str, user: str) -> str | None:
        record = await self.store.get_run(run_id)
        if user != record.requester and user not in await self.desk.policy.members():
            return "Only the person who asked or on-call can cancel this investigation."
        if run_id in self.starting and self.starting[run_id] is None:
            self.starting[run_id] = user  # start() cancels the task as soon as it exists
            await self.store.record(run_id, "cancel_requested", {"user": user}, actor=user)
        elif run_id not in self.starting:  # it became active while we checked
            return await self.cancel(run_id, user)
        return None

    async def shutdown(self, grace: float) -> None:
        """Give in-flight runs ``grace`` seconds, then interrupt them (recorded and posted)."""
        tasks = [a.task for a in self.active.values() if a.task is not None]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for active in list(self.active.values()):
            if active.task is None or active.task.done():
                continue
            active.interrupting = True  # the loop records and posts it as interrupted
            active.task.cancel()
        if pending:
            # Time to post "interrupted" in each channel; then stop regardless.
            _, stuck = await asyncio.wait(pending, timeout=5.0)
            for task in stuck:
                task.cancel()
            if stuck:
                await asyncio.wait(stuck, timeout=1.0)
        if self._endings:  # runs cancelled before their first step, ended by _ended
            await asyncio.wait(list(self._endings), timeout=5.0)

    # --- after a restart ------------------------------------------------------------------

    async def announce_recovered(self, run_ids: Sequence[str]) -> None:
        """Runs the store marked interrupted at startup: say so where they lived, and close
        their approval cards."""
        for run_id in run_ids:
            try:
                record = await self.store.get_run(run_id)
                if not record.channel or not record.thread_ts:
                    continue
                elapsed = (record.ended_at or time.time()) - record.started_at
                link = blocks.permalink(record.channel, record.thread_ts, base=self.link_base)
                text, body = blocks.failure_message(
                    "interrupted", record.question, "budo restarted while this was in progress; "
                    "ask again to resume", run_id, record.turns, record.tokens, elapsed, link)
                await self.poster.post(record.channel, text, body)
                for approval in await self.store.approvals(run_id):
                    if approval.message_ts:
                        done_text, done_body = blocks.approval_resolved(
                            approval.tool, "⌛ Expired — denied (budo restarted)")
                        await self.poster.update_now(record.channel, approval.message_ts,
                                                     done_text, done_body)
            except BudoError as exc:
                log.warning("could not announce interrupted run %s: %s", run_id, exc)
