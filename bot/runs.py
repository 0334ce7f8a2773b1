"""The run manager: starting investigations, one task per run, cancel, follow-ups, shutdown.

How a run ends is the loop's to say: it emits one terminal event (verdict, failed, cancelled
or interrupted — this module tells it which of the last two through ``stop_reason``), the
AuditSink turns that into the run's final status, and the Slack sink posts it. A run whose
process dies first is ended by the store's restart recovery (and bot/restart.py fixes its
Slack messages when the next process starts).

At most ``BUDO_MAX_RUNS`` runs are driven at once; later requests wait in a FIFO queue (the
requester is told their place) and start in order as slots free. Shutdown has one deadline:
queued runs end ``interrupted`` at once (audit first, then their root message), in-flight runs
get the grace period, then are interrupted; Slack work that has not finished by the deadline
is dropped — the audit already holds every run's end.
"""

from __future__ import annotations

import asyncio
import logging
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
    run_investigation,
)
from bot import blocks
from bot.approvals import ApprovalDesk
from bot.followups import FollowUps
from bot.metrics import Metrics, MetricsSink
from bot.poster import Delivery, SlackPoster
from bot.sink import RunThread, SlackEventSink
from budo import logs, wiring
from budo.config import Settings
from budo.errors import BudoError, RunAlreadyActive, RunNotFound, SlackError
from storage import AuditSink, RunRecord, Store

log = logging.getLogger("budo.bot.runs")

SHUTDOWN_REASON = "budo shut down while this was in progress"
QUEUED_SHUTDOWN_REASON = "budo shut down before this started; ask again"
ENDING_S = 3.0  # after the grace period: posting "interrupted" and flushing Slack
UNSETTLED = "slack_unsettled"  # audit kind: the next process tells Slack (bot/restart.py)


@dataclass
class ActiveRun:
    thread: RunThread
    sink: SlackEventSink
    task: asyncio.Task[None] | None = None
    cancelled_by: str | None = None
    interrupting: bool = False
    namespace: str | None = None
    history: list[dict[str, Any]] | None = None
    began: bool = False  # its task's body runs (a task cancelled before that never would)

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
                 link_base: str = "https://slack.com/", metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.store = store
        self.poster = poster
        self.desk = desk
        self.model = model
        self.tools = list(tools)
        self.link_base = link_base
        self.active: dict[str, ActiveRun] = {}
        self.followups = FollowUps()
        self.max_runs = max(1, settings.max_runs)
        self.queue: OrderedDict[str, ActiveRun] = OrderedDict()  # FIFO: oldest first
        self.starting: set[str] = set()  # recorded, root message still being posted
        # Cancel pressed on a starting run (Slack shows the message and its button before it
        # answers our post): run id -> who; honoured the moment the run exists.
        self.cancel_on_start: dict[str, str] = {}
        # From shutdown on: runs whose end is in the audit but not yet shown in Slack.
        self.unsettled: dict[str, ActiveRun] = {}
        self.closing = False     # shutdown has begun: nothing new starts
        self.metrics = metrics
        if metrics is not None:  # read at scrape time: never out of step
            metrics.active_runs.set_function(lambda: len(self.active))
            metrics.queued_runs.set_function(lambda: self.queued_count)

    @property
    def queued_count(self) -> int:
        """Runs waiting for a slot (BUDO_MAX_RUNS)."""
        return len(self.queue)

    def _full(self) -> bool:
        return len(self.active) >= self.max_runs or bool(self.queue)

    # --- starting -------------------------------------------------------------------------

    async def start(self, question: str, *, channel: str, user: str,
                    thread_ts: str | None = None) -> tuple[str | None, str | None]:
        """Start a run. Top level (``thread_ts`` None): a new root message in the channel.
        Inside a thread: a follow-up when the thread holds a finished run (its context is
        passed on), a pointer when one is running. Returns ``(run_id, note)``: ``note`` is
        what to tell the user privately (a pointer, an error), or None."""
        if self.closing:
            return None, "budo is shutting down; ask again in a minute."
        previous: RunRecord | None = None
        history: list[dict[str, Any]] | None = None
        namespace = self.settings.namespaces[0] if len(self.settings.namespaces) == 1 else None
        try:
            if thread_ts:
                previous = await self.store.run_for_thread(channel, thread_ts)
                if previous is not None and previous.status != "running":
                    history = self.followups.history_for(previous)
            record = await self.store.start_run(
                source="slack", question=question, channel=channel, thread_ts=thread_ts,
                requester=user, namespace=namespace, model=self.settings.llm_model)
        except RunAlreadyActive as exc:
            return None, self._pointer(exc.run_id, channel, thread_ts)
        self.starting.add(record.id)  # in the store, not yet in the queue or running
        try:
            doing = (f"queued behind {len(self.queue) + 1} other run(s)" if self._full()
                     else "starting")
            line = blocks.status_line(0, 0.0, 0, doing)
            text, body = blocks.root_message(question, user, record.id, line, running=True)
            status_ts = await self.poster.post(channel, text, body, thread_ts=thread_ts)
            if thread_ts is None:
                await self.store.set_thread(record.id, channel, status_ts)
            if previous is not None:
                await self.store.record(record.id, "follow_up", {"previous_run": previous.id},
                                        actor=user)
        except BudoError as exc:
            self.cancel_on_start.pop(record.id, None)
            if self._claim(record.id):
                await self._never_started(record.id, f"could not start in Slack: {exc}", exc)
            return None, f"Could not start the investigation: {exc}"
        if not self._claim(record.id):  # shutdown ended it (in the audit) while we posted
            return None, "budo is shutting down; ask again in a minute."
        thread = RunThread(record.id, channel, thread_ts or status_ts, status_ts, question, user,
                           self.link_base)
        active = ActiveRun(thread, SlackEventSink(self.poster, thread, self._audit_head,
                                                   self._record_delivery),
                           namespace=namespace, history=history)
        active.cancelled_by = self.cancel_on_start.pop(record.id, None)
        if self.closing:  # shutdown began while the root message was being posted
            await self._end_unstarted([active], "interrupted", QUEUED_SHUTDOWN_REASON)
            return None, "budo is shutting down; ask again in a minute."
        if active.cancelled_by is not None or not self._full():  # (a cancelled one ends at once)
            self._launch(active)
            return record.id, None
        self.queue[record.id] = active
        position = len(self.queue)
        try:
            await self.store.record(record.id, "queued", {"position": position,
                                                          "max_runs": self.max_runs},
                                    actor="budo")
        except BudoError as exc:
            log.error("run %s: could not record its place in the queue: %s", record.id, exc)
        return record.id, (f"budo is already running {self.max_runs} investigations (its "
                           f"limit, BUDO_MAX_RUNS). Yours is number {position} in the queue "
                           "and starts as soon as one finishes.")

    def _claim(self, run_id: str) -> bool:
        """Take a starting run back from the shutdown's reach; False if shutdown ended it."""
        if run_id not in self.starting:
            return False
        self.starting.discard(run_id)
        return True

    def _launch(self, active: ActiveRun) -> None:
        self.active[active.run_id] = active
        active.task = asyncio.create_task(self._drive(active), name=f"run-{active.run_id}")

    def _start_next(self) -> None:
        """Fill free slots from the queue, oldest first (never once shutdown has begun)."""
        while self.queue and not self.closing and len(self.active) < self.max_runs:
            _, active = self.queue.popitem(last=False)
            self._launch(active)

    def _pointer(self, run_id: str, channel: str, thread_ts: str | None) -> str:
        active = self.active.get(run_id) or self.queue.get(run_id)
        where = ""
        if active is not None:
            where = f" — <{active.thread.link(active.thread.status_ts)}|follow it here>"
        elif thread_ts:
            where = f" — <{blocks.permalink(channel, thread_ts, base=self.link_base)}|thread>"
        return (f"An investigation is already running in this thread: run {run_id}{where}. "
                "Wait for its verdict, or press Cancel on it.")

    # --- the run task ---------------------------------------------------------------------

    async def _drive(self, active: ActiveRun) -> None:
        thread, namespace, history = active.thread, active.namespace, active.history
        logs.run_id_var.set(thread.run_id)  # every log line of this task names the run
        active.began = True
        task = asyncio.current_task()
        if active.cancelled_by is not None and task is not None:  # pressed before it started:
            task.cancel()  # the loop's first step ends it as cancelled, recorded and posted
        metrics = [MetricsSink(self.metrics)] if self.metrics is not None else []
        try:
            outcome = await run_investigation(
                thread.question, run_id=thread.run_id, model=self.model, tools=self.tools,
                sinks=[AuditSink(self.store), active.sink, *metrics],
                approver=self.desk.approver(thread.channel, thread.thread_ts, thread.requester,
                                            before_post=active.sink.flush),
                budgets=wiring.budgets(self.settings), namespace=namespace,
                requester=thread.requester, history=history, stop_reason=active.stop_reason)
            self.followups.remember(thread.run_id, outcome.messages)
            await active.sink.close()  # the outcome is in Slack before the run counts as done
            if active.sink.root_closed:
                self.unsettled.pop(thread.run_id, None)
            if self.metrics is not None:
                self.metrics.run_ended(outcome.status, active.sink.elapsed)
        finally:
            self.active.pop(thread.run_id, None)
            self._start_next()

    async def _record_delivery(self, run_id: str, delivery: Delivery) -> None:
        """The audit says where the outcome landed (channel, thread, ephemeral or none)."""
        if self.metrics is not None:
            self.metrics.verdict_delivery.labels(delivery.via).inc()
        try:
            await self.store.record(run_id, "outcome_delivered",
                                    {"via": delivery.via, "ts": delivery.ts,
                                     "errors": list(delivery.errors)}, actor="budo")
        except BudoError as exc:
            log.error("run %s: could not record where the outcome landed: %s", run_id, exc)

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
        if self.metrics is not None:
            self.metrics.run_ended("failed", 0.0)
        try:
            await AuditSink(self.store, actor="budo").emit(RunFailed(
                run_id=run_id, reason=reason, error_type=type(error).__name__, turns=0,
                tokens=0))
        except BudoError as exc:
            log.error("run %s: could not record its end: %s", run_id, exc)

    # --- cancel and shutdown --------------------------------------------------------------

    async def cancel(self, run_id: str, user: str) -> str | None:
        """The Cancel button: the requester or on-call may stop a run. Returns what to tell
        the user privately, or None when the run is being cancelled."""
        if run_id in self.starting:  # its message is visible before Slack answered our post
            record = await self.store.get_run(run_id)
            if user != record.requester and user not in await self.desk.policy.members():
                return "Only the person who asked or on-call can cancel this investigation."
            if run_id in self.starting:  # (still starting after the on-call check)
                if run_id not in self.cancel_on_start:
                    self.cancel_on_start[run_id] = user
                    await self.store.record(run_id, "cancel_requested", {"user": user},
                                            actor=user)
                return None
        queued = self.queue.get(run_id)
        if queued is not None:
            if user != queued.thread.requester and user not in await self.desk.policy.members():
                return "Only the person who asked or on-call can cancel this investigation."
            if self.queue.pop(run_id, None) is not None:  # (not started meanwhile)
                await self.store.record(run_id, "cancel_requested", {"user": user}, actor=user)
                await self._end_unstarted([queued], "cancelled", f"cancelled by <@{user}>",
                                          by=user)
                return None
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
            if active.began:  # else its first step sees cancelled_by: a task cancelled before
                active.task.cancel()  # its body runs would end without a terminal event
        return None

    async def shutdown(self, grace: float) -> None:
        """Stop starting runs; end queued runs as interrupted now; give in-flight runs
        ``grace`` seconds, then interrupt them. Returns within ``grace + ENDING_S``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace + ENDING_S
        self.closing = True
        queued = list(self.queue.values())
        self.queue.clear()
        self.unsettled = {a.run_id: a for a in (*queued, *self.active.values())}
        notices: asyncio.Task[None] | None = None
        if queued:  # their ends are in the audit before this returns; Slack is best effort
            notices = asyncio.create_task(self._end_unstarted(queued, "interrupted",
                                                              QUEUED_SHUTDOWN_REASON))
        tasks = [a.task for a in self.active.values() if a.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for active in list(self.active.values()):
            if active.task is None or active.task.done():
                continue
            active.interrupting = True  # the loop records and posts it as interrupted
            active.task.cancel()
        left = [t for t in tasks if not t.done()]
        if notices is not None:
            left.append(notices)
        if left:  # time to post "interrupted" in each thread; then stop regardless
            _, stuck = await asyncio.wait(left, timeout=max(0.1, deadline - loop.time()))
            for task in stuck:
                task.cancel()
            if stuck:
                await asyncio.wait(stuck, timeout=0.5)
        # Runs whose root message is still on its way to Slack: ended in the audit here (the
        # process is about to exit); start() sees it and does not start them.
        orphans, self.starting = list(self.starting), set()
        audit = AuditSink(self.store, actor="budo")
        for run_id in orphans:
            try:
                await asyncio.shield(audit.emit(RunInterrupted(
                    run_id=run_id, reason=QUEUED_SHUTDOWN_REASON, turns=0, tokens=0)))
            except BudoError as exc:
                log.error("run %s: could not record its end: %s", run_id, exc)
        # What Slack was not told in time, the next process tells (bot/restart.py).
        for run_id in [*self.unsettled, *orphans]:
            try:
                await asyncio.shield(self.store.record(run_id, UNSETTLED, {
                    "reason": "budo exited before Slack showed how this run ended"},
                    actor="budo"))
            except BudoError as exc:
                log.error("run %s: could not record it for the next start: %s", run_id, exc)
        self.unsettled = {}

    async def _end_unstarted(self, runs: Sequence[ActiveRun], kind: str, reason: str,
                             by: str | None = None) -> None:
        """End runs the loop never drove (queued ones): the terminal event through the
        AuditSink for all of them first, then each root message says so, without its Cancel
        button. Shielded: a shutdown that stops waiting cannot cut the audit writes short."""
        audit = AuditSink(self.store, actor="budo")
        for active in runs:
            event: RunCancelled | RunInterrupted = (
                RunCancelled(run_id=active.run_id, reason=reason, turns=0, tokens=0, by=by)
                if kind == "cancelled" else
                RunInterrupted(run_id=active.run_id, reason=reason, turns=0, tokens=0))
            try:
                await asyncio.shield(audit.emit(event))
            except BudoError as exc:
                log.error("run %s: could not record its end: %s", active.run_id, exc)
            if self.metrics is not None:
                self.metrics.run_ended(kind, active.sink.elapsed)
        await asyncio.gather(*(self._close_root(a, kind, reason) for a in runs))

    async def _close_root(self, active: ActiveRun, kind: str, reason: str) -> None:
        thread = active.thread
        shown = blocks.Safe(reason) if reason.startswith("cancelled by <@") else reason
        line = blocks.outcome_status(kind, shown, 0, 0, active.sink.elapsed)
        text, body = blocks.root_message(thread.question, thread.requester, thread.run_id, line,
                                         running=False)
        try:
            await self.poster.update_final(thread.channel, thread.status_ts, text, body)
            self.unsettled.pop(thread.run_id, None)
        except SlackError as exc:
            log.warning("run %s: could not update its message: %s", thread.run_id, exc)
