"""After a restart: put right in Slack what the previous process could not.

Two kinds of run need it. Runs the store's recovery marked ``interrupted`` (the process died
with them running): their root message still says "⏳ running" with a live Cancel button.
Runs a shutdown ended in the audit but could not show in Slack before the process exited
(``slack_unsettled``, recorded by ``RunManager.shutdown``). Each gets its status message closed
(no Cancel button), a note in its thread, and its unanswered approval cards closed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from bot import blocks
from bot.poster import SlackPoster
from bot.runs import UNSETTLED
from budo.errors import BudoError
from storage import Store

log = logging.getLogger("budo.bot.restart")

SETTLED = "slack_settled"
RESTART_NOTE = "budo restarted while this was in progress; ask again to resume"
SHUTDOWN_NOTE = "budo shut down before it could say so here; ask again to resume"
UNSETTLED_SCAN = 200  # recent runs looked at for unsettled ones at startup


async def announce_recovered(store: Store, poster: SlackPoster, run_ids: Sequence[str],
                             note: str = RESTART_NOTE, *, settle: bool = False) -> None:
    """Close each run's status message, note it in its thread, close its expired cards;
    ``settle`` records that it was done (so an unsettled run is told only once)."""
    for run_id in run_ids:
        try:
            record = await store.get_run(run_id)
            if not record.channel or not record.thread_ts:
                continue
            elapsed = (record.ended_at or time.time()) - record.started_at
            events = await store.events(run_id)
            reason = next((str(e.payload.get("reason")) for e in reversed(events)
                           if e.kind == record.status and e.payload.get("reason")), note)
            if not any(e.kind == "follow_up" for e in events):
                # A top-level run's thread root is its status message; a follow-up's status
                # reply is not recorded, so it gets the thread note only.
                line = blocks.outcome_status(record.status, reason, record.turns,
                                             record.tokens, elapsed)
                if record.status == "succeeded":  # its verdict may never have been posted
                    line = blocks.Safe(f"{line.replace('verdict posted', 'verdict reached')}"
                                       f" · the verdict is in `budo export {run_id}`")
                text, body = blocks.root_message(record.question, record.requester, run_id,
                                                 line, running=False)
                await poster.update(record.channel, record.thread_ts, text, body)
            await poster.post(record.channel, f"⚠️ {note} (run {run_id}).", None,
                              thread_ts=record.thread_ts)
            for approval in await store.approvals(run_id):
                if approval.message_ts and approval.status == "expired":
                    done_text, done_body = blocks.approval_resolved(
                        approval.tool, "⌛ Expired — denied (budo restarted)")
                    await poster.update(record.channel, approval.message_ts, done_text,
                                        done_body)
            if settle:
                await store.record(run_id, SETTLED, {}, actor="budo")
        except BudoError as exc:
            log.warning("could not announce interrupted run %s: %s", run_id, exc)


async def announce_unsettled(store: Store, poster: SlackPoster) -> None:
    """Runs a previous process ended at shutdown without showing it in Slack: show it now."""
    try:
        recent = await store.list_runs(limit=UNSETTLED_SCAN)
        unsettled = []
        for run in recent:
            if run.status != "running":
                events = await store.events(run.id)
                if events and events[-1].kind == UNSETTLED:
                    unsettled.append(run.id)
    except BudoError as exc:
        log.warning("could not look for runs left unsettled in Slack: %s", exc)
        return
    await announce_recovered(store, poster, unsettled, SHUTDOWN_NOTE, settle=True)
