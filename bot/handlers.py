"""The work behind each listener, run in a task after the ack. Never raises: bad input and
failures become a short private reply, never a traceback in the channel."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from slack_sdk.webhook.async_client import AsyncWebhookClient

from agent import cut
from bot import blocks
from bot.approvals import ApprovalDesk
from bot.commands import HELP_TEXT, Command, question_from_mention
from bot.poster import SlackPoster
from bot.runs import RunManager
from budo.errors import BudoError, RunNotFound
from storage import RunRecord, Store, export_jsonl, export_markdown

log = logging.getLogger("budo.bot.handlers")

STATUS_ICONS = {"running": "⏳", "succeeded": "✅", "failed": "❌", "cancelled": "🛑",
                "interrupted": "⚠️"}


class Handlers:
    def __init__(self, *, store: Store, poster: SlackPoster, runs: RunManager,
                 desk: ApprovalDesk) -> None:
        self.store = store
        self.poster = poster
        self.runs = runs
        self.desk = desk
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` after the ack; kept referenced until done (and awaited at shutdown)."""
        task = asyncio.create_task(self._guarded(work))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self, grace_s: float) -> None:
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=grace_s)

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception:  # the handlers answer their own errors; this is the last net
            log.exception("a Slack request handler failed")

    # --- /budo ----------------------------------------------------------------------------

    async def slash(self, command: Command, body: dict[str, Any]) -> None:
        channel, user = str(body.get("channel_id") or ""), str(body.get("user_id") or "")
        try:
            if command.kind == "investigate":
                _, note = await self.runs.start(command.argument, channel=channel, user=user)
            elif command.kind == "runs":
                note = await self.list_runs(channel)
            elif command.kind == "export":
                note = await self.export(channel, command.argument or None)
            else:
                note = HELP_TEXT
        except BudoError as exc:
            note = f"budo: {blocks.escape(str(exc))}"
        except Exception as exc:
            log.exception("/budo %s failed", command.kind)
            note = f"budo hit an internal error ({type(exc).__name__}); it is logged."
        if note:
            await self.reply(body, channel, user, note)

    async def reply(self, body: dict[str, Any], channel: str, user: str, text: str) -> None:
        """Privately: through the slash command's response_url (works even where the bot is
        not a member), else chat.postEphemeral."""
        text = cut(text, blocks.MESSAGE_TEXT_LIMIT)
        url = body.get("response_url")
        try:
            if url:
                webhook = AsyncWebhookClient(url)
                await webhook.send(text=text, response_type="ephemeral")
            else:
                await self.poster.ephemeral(channel, user, text)
        except (BudoError, OSError, ValueError) as exc:
            log.warning("could not answer %s in %s: %s", user, channel, exc)

    async def list_runs(self, channel: str, limit: int = 10) -> str:
        runs = await self.store.list_runs(limit=limit, channel=channel)
        if not runs:
            return "No investigations in this channel yet. Start one with `/budo investigate …`."
        lines = ["*Latest investigations in this channel*"]
        for run in runs:
            icon = STATUS_ICONS.get(run.status, "•")
            question = blocks.escape(cut(run.question, 80))
            if run.thread_ts:
                link = blocks.permalink(run.channel or channel, run.thread_ts,
                                        base=self.runs.link_base)
                question = f"<{link}|{question}>"
            headline = f" — {blocks.escape(cut(run.headline, 120))}" if run.headline else ""
            lines.append(f"{icon} `{run.id}` {run.status} · {blocks.utc_clock(run.started_at)} · "
                         f"{question}{headline}")
        return "\n".join(lines)

    async def export(self, channel: str, run_id: str | None) -> str:
        """Only a Slack run started in this very channel is uploaded, and only into it: the
        trail holds cluster data the channel's members were shown, nobody else's."""
        if run_id:
            try:
                run: RunRecord | None = await self.store.get_run(run_id)
            except RunNotFound:
                run = None
            if run is None or run.source != "slack" or run.channel != channel:
                # The same answer whether it exists elsewhere or not at all.
                return f"There is no run {run_id} in this channel."
        else:
            run = await self.store.latest_run(channel)
        if run is None or run.source != "slack" or run.channel != channel:
            return "No investigation in this channel yet, so nothing to export."
        events = await self.store.events(run.id)
        files = [
            {"content": export_markdown(run, events), "filename": f"budo-{run.id}.md",
             "title": f"budo {run.id} timeline"},
            {"content": export_jsonl(events) or "\n", "filename": f"budo-{run.id}.jsonl",
             "title": f"budo {run.id} audit trail"},
        ]
        target, thread = channel, run.thread_ts
        await self.poster.upload(target, thread, files,
                                 comment=f"📎 Export of run {run.id} ({run.status}, "
                                         f"{len(events)} events)")
        where = ""
        if thread:
            where = f": <{blocks.permalink(target, thread, base=self.runs.link_base)}|thread>"
        return f"Uploaded the timeline and the audit trail of run {run.id}{where}."

    # --- @budo ----------------------------------------------------------------------------

    async def mention(self, event: dict[str, Any]) -> None:
        channel, user = str(event.get("channel") or ""), str(event.get("user") or "")
        thread_ts = event.get("thread_ts") or None
        question = question_from_mention(event.get("text"))
        if not channel or not user:
            return
        try:
            if not question:
                note: str | None = HELP_TEXT
            else:
                _, note = await self.runs.start(question, channel=channel, user=user,
                                                thread_ts=thread_ts)
        except BudoError as exc:
            note = f"budo: {blocks.escape(str(exc))}"
        await self.poster.tell(channel, user, note, thread_ts)

    # --- buttons --------------------------------------------------------------------------

    async def decide(self, body: dict[str, Any], approved: bool) -> None:
        action, channel, user, thread_ts = _click(body)
        message_ts = str((body.get("container") or {}).get("message_ts") or
                         (body.get("message") or {}).get("ts") or "")
        await self.desk.on_click(str(action.get("value") or ""), approved, user, channel,
                                 thread_ts, message_ts=message_ts)

    async def cancel(self, body: dict[str, Any]) -> None:
        action, channel, user, thread_ts = _click(body)
        run_id = str(action.get("value") or "")
        active = self.runs.active.get(run_id)
        message_ts = str((body.get("container") or {}).get("message_ts") or
                         (body.get("message") or {}).get("ts") or "")
        if active is not None and (channel, message_ts) != (active.thread.channel,
                                                            active.thread.status_ts):
            # Like an approval, a Cancel counts only from the run's own message.
            await self.poster.tell(channel, user, "🙅 This Cancel button is not on that run's "
                                   "message. Nothing changed.", thread_ts)
            return
        try:
            note = await self.runs.cancel(run_id, user)
        except BudoError as exc:
            note = f"budo: {blocks.escape(str(exc))}"
        await self.poster.tell(channel, user, note, thread_ts)


def _click(body: dict[str, Any]) -> tuple[dict[str, Any], str, str, str | None]:
    """(the action, channel, user, thread) of a block_actions payload."""
    actions = body.get("actions") or [{}]
    channel = str((body.get("channel") or {}).get("id") or
                  (body.get("container") or {}).get("channel_id") or "")
    user = str((body.get("user") or {}).get("id") or "")
    message = body.get("message") or {}
    thread_ts = message.get("thread_ts") or (body.get("container") or {}).get("thread_ts")
    return actions[0], channel, user, thread_ts
