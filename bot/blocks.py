"""Block Kit builders, and the Slack size limits they respect.

Every builder returns ``(text, blocks)``: ``text`` is the notification/fallback line Slack
shows where blocks cannot render, ``blocks`` is valid Block Kit within the documented limits
(50 blocks, 3000 chars per section, 150 per header, 75 per button label, 2000 per value).
Anything from outside (the cluster, the model, the asker) is escaped (``&<>``) by ``escape``
in ``text`` and in blocks alike, and trimmed, never trusted to fit: Slack renders
``<!channel>``, ``<@U…>`` and ``<url|label>`` in the notification ``text`` too. The only
mentions and links in a message are the ones budo builds (``mention``, ``link``), marked
``Safe`` so that ``escape`` leaves them alone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from agent import cut as trim
from agent import format_args as args_text

# Slack's documented limits (https://api.slack.com/reference/block-kit/blocks).
MAX_BLOCKS = 50
SECTION_TEXT_LIMIT = 3000
HEADER_TEXT_LIMIT = 150
CONTEXT_TEXT_LIMIT = 2000
BUTTON_TEXT_LIMIT = 75
BUTTON_VALUE_LIMIT = 2000
# chat.postMessage truncates `text` at 40k; 4000 is the size Slack recommends and renders well.
MESSAGE_TEXT_LIMIT = 4000
# A tool result preview: enough to recognise the evidence, short enough to keep threads readable.
PREVIEW_CHARS = 1200
PREVIEW_LINES = 25

CANCEL_ACTION = "budo_cancel"
APPROVE_ACTION = "budo_approve"
DENY_ACTION = "budo_deny"

Blocks = list[dict[str, Any]]


# --- text helpers -------------------------------------------------------------------------


class Safe(str):
    """mrkdwn budo built itself (its own mentions and links, outside parts already escaped):
    ``escape`` returns it unchanged. Anything else is outside text."""


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters. The one
    function for every string from the cluster, the model or a user, in text and blocks."""
    if isinstance(text, Safe):
        return text
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_USER_ID = re.compile(r"[A-Z0-9][A-Za-z0-9_]{0,40}")


def mention(user: str | None) -> Safe:
    """``<@U…>`` for a Slack user id; anything that is not an id is shown escaped, inert."""
    if user and _USER_ID.fullmatch(user):
        return Safe(f"<@{user}>")
    return Safe(escape(user or "someone"))


def link(url: str, label: str) -> Safe:
    """A link budo builds (its own permalinks): the label escaped, the URL without ``|>``."""
    return Safe(f"<{url.replace('|', '%7C').replace('>', '%3E')}|{escape(label)}>")


def split_text(text: str, limit: int = MESSAGE_TEXT_LIMIT) -> list[str]:
    """Split long text into chunks of at most ``limit`` characters, preferring line breaks."""
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        if cut <= 0:
            cut = limit
        chunks.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    if rest or not chunks:
        chunks.append(rest)
    return chunks


def code_block(text: str, limit: int = PREVIEW_CHARS, max_lines: int = PREVIEW_LINES) -> str:
    """A fenced code block holding the head of ``text``; says how much was left out."""
    # A ``` inside the text would close the fence early; a look-alike keeps it readable.
    body = text.replace("```", "ˋˋˋ")
    lines = body.splitlines()
    omitted_lines = max(0, len(lines) - max_lines)
    body = "\n".join(lines[:max_lines])
    cut = len(body) > limit
    body = trim(body, limit, marker="")
    note = ""
    if cut or omitted_lines:
        note = f"\n… ({len(text)} chars in all; full output in the audit and `/budo export`)"
    return f"```\n{escape(body) or ' '}\n```{note}"


def format_args(args: dict[str, Any], limit: int = 300) -> str:
    """Tool arguments as one compact line: ``pod=x, namespace=y``."""
    return trim(args_text(args), limit) if args else "(no arguments)"


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def utc_clock(epoch: float | None = None) -> str:
    """``14:09 UTC``: how approval decisions and expiries are stamped."""
    moment = datetime.fromtimestamp(time.time() if epoch is None else epoch, tz=UTC)
    return moment.strftime("%H:%M UTC")


def permalink(channel: str, ts: str, thread_ts: str | None = None,
              base: str = "https://slack.com/") -> str:
    """A message permalink built locally (no chat.getPermalink round trip per evidence item)."""
    link = f"{base.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
    if thread_ts and thread_ts != ts:
        link += f"?thread_ts={thread_ts}&cid={channel}"
    return link


# --- block helpers ------------------------------------------------------------------------


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": trim(text, SECTION_TEXT_LIMIT)}}


def header(text: str) -> dict[str, Any]:
    return {"type": "header",
            "text": {"type": "plain_text", "text": trim(text, HEADER_TEXT_LIMIT), "emoji": True}}


def context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [
        {"type": "mrkdwn", "text": trim(t, CONTEXT_TEXT_LIMIT)} for t in texts[:10]]}


def button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": trim(text, BUTTON_TEXT_LIMIT), "emoji": True},
        "action_id": action_id,
        "value": trim(value, BUTTON_VALUE_LIMIT, marker=""),
    }
    if style:
        element["style"] = style
    return element


def capped(blocks: Blocks) -> Blocks:
    """At most MAX_BLOCKS blocks; the last one says what was left out."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    kept = blocks[: MAX_BLOCKS - 1]
    kept.append(context(f"… {len(blocks) - len(kept)} more items in the thread and the export"))
    return kept


# --- the run's root message ---------------------------------------------------------------


def root_message(question: str, requester: str | None, run_id: str, status: str,
                 running: bool) -> tuple[str, Blocks]:
    """The message a run lives under: the question, who asked, the run id, a live status line
    and (while running) the Cancel button."""
    asker = f" — asked by {mention(requester)}" if requester else ""
    title = f"🔍 Investigating: {escape(trim(question, 2500))}{asker} · run {escape(run_id)}"
    status = escape(status)
    blocks: Blocks = [section(title), context(status)]
    if running:
        blocks.append({"type": "actions", "elements": [
            button("Cancel", CANCEL_ACTION, run_id, style="danger")]})
    return trim(f"{title}\n{status}", MESSAGE_TEXT_LIMIT), blocks


def status_line(step: int, elapsed_s: float, tokens: int, doing: str = "") -> Safe:
    doing = f" · {escape(trim(doing, 300))}" if doing else ""
    return Safe(f"⏳ step {step} · {format_duration(elapsed_s)} · {tokens:,} tokens{doing}")


# --- the evidence trail -------------------------------------------------------------------


def reasoning_message(text: str) -> tuple[str, Blocks]:
    body = escape(trim(text.strip(), SECTION_TEXT_LIMIT - 20))
    return trim(f"💭 {body}", MESSAGE_TEXT_LIMIT), [context(f"💭 {body}")]


def tool_started(tool: str, args: dict[str, Any]) -> tuple[str, Blocks]:
    name, shown = escape(trim(tool, 100)), escape(format_args(args))
    return trim(f"🔧 {name} {shown} — running", MESSAGE_TEXT_LIMIT), [
        section(f"🔧 `{name}` {shown}"), context("⏳ running…")]


def tool_finished(tool: str, args: dict[str, Any], ok: bool, duration_s: float,
                  output: str, error: str | None) -> tuple[str, Blocks]:
    icon = "✅" if ok else "❌"
    name, shown = escape(trim(tool, 100)), escape(format_args(args))
    outcome = escape("ok" if ok else f"error: {error or 'failed'}")
    preview = code_block(output if ok else (error or output or "failed"))
    summary = f"{trim(outcome, 300)} · {format_duration(duration_s)}"
    blocks = [section(f"{icon} `{name}` {shown}"), context(summary), section(preview)]
    return trim(f"{icon} {name} {shown} — {outcome}", MESSAGE_TEXT_LIMIT), blocks


# --- approvals ----------------------------------------------------------------------------


def change_lines(changes: Sequence[str], current: str = "") -> Blocks:
    """The dry run's diff (one change a line) and the object's state now, escaped."""
    blocks: Blocks = []
    if changes:
        body = "\n".join(f"• {escape(trim(c, 400))}" for c in changes[:20])
        more = f"\n… and {len(changes) - 20} more" if len(changes) > 20 else ""
        blocks.append(section(f"*Change (server-side dry run):*\n{body}{more}"))
    if current:
        blocks.append(context(f"Now: {escape(trim(current, 600))}"))
    return blocks


def approval_card(approval_id: str, summary: str, reason: str, approvers: str,
                  expires_at: float, requester: str | None,
                  args: dict[str, Any] | None = None, changes: Sequence[str] = (),
                  current: str = "") -> tuple[str, Blocks]:
    """The on-call prompt: what will happen (with every argument of the call and the dry run's
    diff), why, who may decide, until when; two buttons. ``approvers`` is budo's own mention
    list."""
    why = escape(trim(reason.strip(), 1500)) if reason.strip() else "_the model gave no reason_"
    what = escape(trim(summary, 1000))
    blocks: Blocks = [section(f"⚠️ *Approval needed:* {what}")]
    if args is not None:
        blocks.append(section(f"*Exact call:* `{escape(format_args(args, 2000))}`"))
    blocks += [
        *change_lines(changes, current),
        section(f"*Why the model asked:* {why}"),
        context(f"Who may approve: {approvers}"
                + (f" (not the requester {mention(requester)})" if requester else ""),
                f"Expires at {utc_clock(expires_at)} — no answer means denied"),
        {"type": "actions", "elements": [
            button("Approve", APPROVE_ACTION, approval_id, style="primary"),
            button("Deny", DENY_ACTION, approval_id, style="danger"),
        ]},
    ]
    diff = escape("".join(f"\n{c}" for c in changes))
    return trim(f"⚠️ Approval needed: {what}{diff}", MESSAGE_TEXT_LIMIT), blocks


def approval_resolved(summary: str, outcome: str,
                      changes: Sequence[str] = ()) -> tuple[str, Blocks]:
    """The card after a decision: same summary and diff, the outcome line (budo's, may be
    ``Safe``), no buttons."""
    what, outcome = escape(trim(summary, 1000)), escape(outcome)
    return trim(f"{outcome}: {what}", MESSAGE_TEXT_LIMIT), [
        section(f"*Approval:* {what}"), *change_lines(changes), context(outcome)]


def verification_message(summary: str, ok: bool, outcome: str,
                         details: Sequence[str]) -> tuple[str, Blocks]:
    """What the watched rollout did: ✅ rolled out … / ❌ not ready after … with findings."""
    icon = "✅" if ok else "❌"
    what, said = escape(trim(summary, 1000)), escape(trim(outcome, 300))
    blocks: Blocks = [section(f"{icon} *{said}* — {what}")]
    if details:
        blocks.append(section("\n".join(f"• {escape(trim(d, 400))}" for d in details[:10])))
    return trim(f"{icon} {said} — {what}", MESSAGE_TEXT_LIMIT), blocks


# --- verdict and failures -----------------------------------------------------------------


def totals_line(run_id: str, turns: int, tokens: int, elapsed_s: float) -> str:
    return (f"run {run_id} · {turns} turns · {tokens:,} tokens · "
            f"{format_duration(elapsed_s)}")


def verdict_message(question: str, verdict: dict[str, Any], evidence_links: Sequence[str | None],
                    run_id: str, turns: int, tokens: int, elapsed_s: float,
                    thread_link: str | None, truncated: bool = False,
                    actions: Sequence[str] = ()) -> tuple[str, Blocks]:
    """The verdict, posted at the channel's top level: ROOT CAUSE, EVIDENCE (each item linked
    to the tool call it came from, when one matches), FIX, confidence and totals."""
    root_cause = str(verdict.get("root_cause") or "").strip() or "(the model named no root cause)"
    fix = str(verdict.get("fix") or "").strip() or "(no fix proposed)"
    confidence = str(verdict.get("confidence") or "unknown")
    evidence = [str(item) for item in verdict.get("evidence") or []]
    title = "⚠️ Partial verdict (turn budget hit)" if truncated else "🧭 Verdict"
    blocks: Blocks = [
        header(f"{title}: {escape(trim(question, 100))}"),
        section(f"*ROOT CAUSE*\n{escape(trim(root_cause, 2800))}"),
    ]
    if evidence:
        lines = []
        for index, item in enumerate(evidence):
            url = evidence_links[index] if index < len(evidence_links) else None
            text = escape(trim(item, 600))
            lines.append(f"• {text} {link(url, '↗ tool call')}" if url else f"• {text}")
        blocks.extend(section(f"*EVIDENCE*\n{chunk}") for chunk in
                      split_text("\n".join(lines), SECTION_TEXT_LIMIT - 20))
    blocks.append(section(f"*FIX*\n{escape(trim(fix, 2800))}"))
    if actions:  # what budo did about it, with the verified outcome
        blocks.append(section("*ACTION*\n" + "\n".join(f"• {escape(trim(a, 600))}"
                                                         for a in actions[:10])))
    if not verdict.get("structured", True) and verdict.get("raw"):
        blocks.append(context("The model did not answer in the expected format; "
                              "this is its raw answer, best effort."))
    if verdict.get("cut_off"):
        blocks.append(context("The answer was cut off at the model's length limit."))
    extra = [f"confidence: *{escape(confidence)}*", totals_line(run_id, turns, tokens, elapsed_s)]
    if thread_link:
        extra.append(link(thread_link, "evidence thread"))
    blocks.append(context(*extra))
    text = f"{title} (run {run_id}): {escape(root_cause)}\nFix: {escape(fix)}"
    return trim(text, MESSAGE_TEXT_LIMIT), capped(blocks)


def audit_head(run_id: str, head_hash: str, events: int, keyed: bool) -> tuple[str, Blocks]:
    """The run's final audit hash, posted in its thread when it ends."""
    how = "HMAC-SHA256 keyed" if keyed else "unkeyed (set BUDO_AUDIT_KEY to key it)"
    text = (f"🔏 Audit trail of run {run_id}: {events} events, final hash `{head_hash}` "
            f"({how}). Check it any time: `budo audit verify {run_id} --expect {head_hash}`")
    return trim(text, MESSAGE_TEXT_LIMIT), [context(text)]


FAILURE_TITLES = {
    "failed": "❌ Investigation failed",
    "cancelled": "🛑 Investigation cancelled",
    "interrupted": "⚠️ Investigation interrupted",
    "crashed": "💥 Investigation stopped by an internal error",
}


def failure_message(kind: str, question: str, reason: str, run_id: str, turns: int,
                    tokens: int, elapsed_s: float,
                    thread_link: str | None) -> tuple[str, Blocks]:
    title = FAILURE_TITLES.get(kind, FAILURE_TITLES["failed"])
    extra = [totals_line(run_id, turns, tokens, elapsed_s)]
    if thread_link:
        extra.append(link(thread_link, "thread"))
    why = escape(reason if isinstance(reason, Safe) else trim(reason or "no reason given", 2800))
    blocks: Blocks = [
        header(f"{title}: {escape(trim(question, 100))}"),
        section(f"*Reason:* {why}"),
        context(*extra),
    ]
    return trim(f"{title} (run {escape(run_id)}): {why}", MESSAGE_TEXT_LIMIT), blocks


def outcome_status(kind: str, reason: str, turns: int, tokens: int, elapsed_s: float) -> Safe:
    """The root message's last status line."""
    done = {"succeeded": "✅ verdict posted", "failed": "❌ failed", "cancelled": "🛑 cancelled",
            "interrupted": "⚠️ interrupted", "crashed": "💥 internal error"}.get(kind, kind)
    shown = reason if isinstance(reason, Safe) else trim(reason, 300)
    tail = f": {escape(shown)}" if reason and kind != "succeeded" else ""
    return Safe(f"{escape(done)}{tail} · {turns} turns · {tokens:,} tokens · "
                f"{format_duration(elapsed_s)}")
