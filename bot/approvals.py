"""On-call approvals in Slack: the card, the policy, and the hand-back to the waiting loop.

The loop calls ``SlackApprover.request`` and waits on an ``asyncio.Future`` keyed by the
approval id. A button click goes through ``ApprovalDesk.on_click``: policy first (on-call
only; the requester not on their own run unless they are the only on-call), then the store's
single-use ``decide_approval`` — the database picks the one winner — and only the winner
updates the card and resolves the future. Expiry is a denial. Anything that cannot be
decided (a second click, too late, after a restart) gets an ephemeral answer and changes
nothing.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agent import ApprovalDecision, ApprovalRequest
from bot import blocks
from bot.poster import SlackPoster
from budo.errors import ApprovalNotFound, BudoError, SlackError
from storage import ApprovalRecord, Store

log = logging.getLogger("budo.bot.approvals")


class OnCallPolicy:
    """Who may decide: BUDO_ONCALL_USERS ∪ members of BUDO_ONCALL_USERGROUP (cached)."""

    def __init__(self, poster: SlackPoster, users: tuple[str, ...], usergroup: str | None,
                 cache_ttl: float = 60.0) -> None:
        self.poster = poster
        self.users = frozenset(users)
        self.usergroup = usergroup
        self.cache_ttl = cache_ttl
        self._group: frozenset[str] = frozenset()
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def members(self) -> frozenset[str]:
        if not self.usergroup:
            return self.users
        async with self._lock:  # one usergroups.users.list per minute, not one per click
            if time.monotonic() - self._fetched_at >= self.cache_ttl:
                try:
                    answer = await self.poster.call("usergroups_users_list",
                                                    usergroup=self.usergroup)
                    self._group = frozenset(answer.get("users") or [])
                    self._fetched_at = time.monotonic()
                except SlackError as exc:
                    # Keep the last known members: a Slack hiccup must not lock on-call out.
                    log.warning("could not list on-call usergroup %s: %s", self.usergroup, exc)
        return self.users | self._group

    async def refusal(self, user: str, requester: str | None) -> str | None:
        """None when ``user`` may decide; otherwise the one-line reason they may not."""
        members = await self.members()
        if user not in members:
            return f"only on-call may approve or deny ({self.describe()})"
        if requester and user == requester and members != {user}:
            return "you asked for this investigation, so another on-call must decide"
        return None

    def describe(self) -> str:
        names: list[str] = [blocks.mention(u) for u in sorted(self.users)]
        if self.usergroup and re.fullmatch(r"[A-Z0-9]+", self.usergroup):
            names.append(f"<!subteam^{self.usergroup}>")
        return blocks.Safe(", ".join(names) or "nobody is configured")


@dataclass
class _Waiting:
    future: asyncio.Future[ApprovalDecision]
    run_id: str
    channel: str
    summary: str
    requester: str | None
    message_ts: str | None = None
    changes: tuple[str, ...] = ()  # the dry run's diff, kept on the closed card


def _decided_line(record: ApprovalRecord) -> blocks.Safe:
    at = blocks.utc_clock(record.decided_at)
    if record.status == "approved":
        return blocks.Safe(f"✅ Approved by {blocks.mention(record.decided_by)} at {at}")
    if record.status == "denied":
        return blocks.Safe(f"🚫 Denied by {blocks.mention(record.decided_by)} at {at}")
    return blocks.Safe(f"⌛ Expired — denied ({at})")


class ApprovalDesk:
    """One per bot: the futures of every approval waiting in this process."""

    def __init__(self, store: Store, poster: SlackPoster, policy: OnCallPolicy,
                 ttl_s: float) -> None:
        self.store = store
        self.poster = poster
        self.policy = policy
        self.ttl_s = ttl_s
        self.waiting: dict[str, _Waiting] = {}

    def approver(self, channel: str, thread_ts: str, requester: str | None,
                 before_post: Callable[[], Awaitable[None]] | None = None) -> SlackApprover:
        return SlackApprover(self, channel, thread_ts, requester, before_post)

    async def on_click(self, approval_id: str, approved: bool, user: str, channel: str,
                       thread_ts: str | None, *, message_ts: str = "") -> None:
        """The Approve/Deny handler's work (after ack). Never raises. A click counts only
        from the channel and message of the approval's own card."""
        try:
            answer = await self._decide(approval_id, approved, user, channel, message_ts)
        except BudoError as exc:
            answer = f"Nothing changed: {blocks.escape(str(exc))}"
        await self.poster.tell(channel, user, answer, thread_ts)

    async def _decide(self, approval_id: str, approved: bool, user: str, channel: str,
                      message_ts: str) -> str | None:
        try:
            record = await self.store.get_approval(approval_id)
        except ApprovalNotFound:
            return "This approval does not exist (anymore). Nothing changed."
        waiting = self.waiting.get(approval_id)
        run = await self.store.get_run(record.run_id)
        card_ts = (waiting.message_ts if waiting else None) or record.message_ts
        card_channel = waiting.channel if waiting else run.channel
        if not card_ts or message_ts != card_ts or channel != card_channel:
            await self.store.record(record.run_id, "approval_refused", {
                "approval_id": approval_id, "tool": record.tool, "user": user,
                "wanted": "approve" if approved else "deny",
                "reason": "the click did not come from this approval's card",
                "channel": channel, "message_ts": message_ts}, actor=user)
            return ("🙅 This button is not on this approval's card; only the card budo posted "
                    "can approve or deny it. Nothing changed.")
        if record.status != "pending":
            return f"This approval is already closed: {_decided_line(record)}. Nothing changed."
        refusal = await self.policy.refusal(user, run.requester)
        if refusal:
            await self.store.record(record.run_id, "approval_refused", {
                "approval_id": approval_id, "tool": record.tool, "user": user,
                "wanted": "approve" if approved else "deny", "reason": refusal}, actor=user)
            return f"🙅 You cannot decide this: {refusal}. Nothing changed."
        if waiting is None or waiting.future.done():
            return ("Nobody is waiting for this approval any more (budo restarted or the run "
                    "ended). Nothing changed.")
        result = await self.store.decide_approval(approval_id, approved, user)
        if not result.won:
            return (f"Too late: {_decided_line(result.approval)}. Nothing changed.")
        decision = ApprovalDecision(approved, user, "approved" if approved else "denied")
        if not waiting.future.done():
            waiting.future.set_result(decision)
        await self._close_card(waiting, _decided_line(result.approval))
        return None

    async def _close_card(self, waiting: _Waiting, line: str) -> None:
        if not waiting.message_ts:
            return
        text, body = blocks.approval_resolved(waiting.summary, line, waiting.changes)
        try:
            await self.poster.update_now(waiting.channel, waiting.message_ts, text, body)
        except SlackError as exc:
            log.warning("could not update approval card %s: %s", waiting.message_ts, exc)


class SlackApprover:
    """Implements ``agent.protocols.Approver`` for one run: never raises, timeout = denied."""

    def __init__(self, desk: ApprovalDesk, channel: str, thread_ts: str, requester: str | None,
                 before_post: Callable[[], Awaitable[None]] | None) -> None:
        self.desk = desk
        self.channel = channel
        self.thread_ts = thread_ts
        self.requester = requester
        self.before_post = before_post

    async def request(self, req: ApprovalRequest) -> ApprovalDecision:
        desk = self.desk
        try:
            if self.before_post is not None:
                await self.before_post()  # the card lands after the call it is about
            record = await desk.store.create_approval(req.run_id, req.tool, req.args, desk.ttl_s)
        except BudoError as exc:
            return ApprovalDecision(False, None, f"could not ask on-call ({exc}): denied")
        preview = req.preview
        waiting = _Waiting(asyncio.get_running_loop().create_future(), req.run_id, self.channel,
                           req.summary, self.requester,
                           changes=tuple(preview.changes) if preview else ())
        # Registered before the card exists, so even the fastest click finds its future.
        desk.waiting[record.id] = waiting
        try:
            text, body = blocks.approval_card(record.id, req.summary, req.reason,
                                              desk.policy.describe(), record.expires_at,
                                              self.requester, args=req.args,
                                              changes=waiting.changes,
                                              current=preview.current if preview else "")
            try:
                waiting.message_ts = await desk.poster.post(self.channel, text, body,
                                                            thread_ts=self.thread_ts)
                await desk.store.set_approval_message(record.id, waiting.message_ts)
            except BudoError as exc:
                await desk.store.expire_approval(record.id)
                return ApprovalDecision(False, None, f"could not ask on-call ({exc}): denied")
            timeout = max(0.0, record.expires_at - time.time())
            try:
                return await asyncio.wait_for(asyncio.shield(waiting.future), timeout)
            except TimeoutError:
                return await self._expire(record.id, waiting)
        except asyncio.CancelledError:
            await self._abandon(record.id, waiting)
            raise
        except BudoError as exc:
            return ApprovalDecision(False, None, f"approval failed ({exc}): denied")
        finally:
            desk.waiting.pop(record.id, None)

    async def _expire(self, approval_id: str, waiting: _Waiting) -> ApprovalDecision:
        record = await self.desk.store.expire_approval(approval_id)
        if record.status in ("approved", "denied"):  # a click won the race by a hair
            if waiting.future.done():
                return waiting.future.result()
            return ApprovalDecision(record.status == "approved", record.decided_by, record.status)
        await self.desk._close_card(waiting, _decided_line(record))
        return ApprovalDecision(False, None, "expired")

    async def _abandon(self, approval_id: str, waiting: _Waiting) -> None:
        """The run was cancelled while waiting: close the approval and the card."""
        try:
            record = await self.desk.store.expire_approval(approval_id)
            if record.status == "expired":
                await self.desk._close_card(waiting, "🛑 Run stopped before a decision — "
                                                     "not performed")
        except BudoError as exc:
            log.warning("could not close approval %s: %s", approval_id, exc)
