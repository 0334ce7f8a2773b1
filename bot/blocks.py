"""Block Kit builders, and the Slack size limits they respect.

Every builder returns ``(text, blocks)``: ``text`` is the notification/fallback line Slack
shows where blocks cannot render, ``blocks`` is valid Block Kit within the documented limits
(50 blocks, 3000 chars per section, 150 per header, 75 per button label, 2000 per value).
Anything user- or model-supplied is escaped (``&<>``) and trimmed, never trusted to fit.
"""

from __future__ import annotations

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


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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
    asker = f" — asked by <@{requester}>" if requester else ""
    title = f"🔍 Investigating: {escape(trim(question, 2500))}{asker} · run {run_id}"
    blocks: Blocks = [section(title), context(status)]
    if running:
        blocks.append({"type": "actions", "elements": [
            button("Cancel", CANCEL_ACTION, run_id, style="danger")]})
    return trim(f"{title}\n{status}", MESSAGE_TEXT_LIMIT), blocks


def status_line(step: int, elapsed_s: float, tokens: int, doing: str = "") -> str:
    doing = f" · {doing}" if doing else ""
    return f"⏳ step {step} · {format_duration(elapsed_s)} · {tokens:,} tokens{doing}"


# --- the evidence trail -------------------------------------------------------------------


def reasoning_message(text: str) -> tuple[str, Blocks]:
    body = trim(text.strip(), SECTION_TEXT_LIMIT - 20)
    return trim(f"💭 {body}", MESSAGE_TEXT_LIMIT), [context(f"💭 {escape(body)}")]


def tool_started(tool: str, args: dict[str, Any]) -> tuple[str, Blocks]:
    line = f"🔧 `{tool}` {escape(format_args(args))}"
    return trim(f"🔧 {tool} {format_args(args)} — running", MESSAGE_TEXT_LIMIT), [
        section(line), context("⏳ running…")]


def tool_finished(tool: str, args: dict[str, Any], ok: bool, duration_s: float,
                  output: str, error: str | None) -> tuple[str, Blocks]:
    icon = "✅" if ok else "❌"
    line = f"{icon} `{tool}` {escape(format_args(args))}"
    outcome = "ok" if ok else f"error: {error or 'failed'}"
    preview = code_block(output if ok else (error or output or "failed"))
    summary = f"{trim(escape(outcome), 300)} · {format_duration(duration_s)}"
    blocks = [section(line), context(summary), section(preview)]
    return trim(f"{icon} {tool} {format_args(args)} — {outcome}", MESSAGE_TEXT_LIMIT), blocks


# --- approvals ----------------------------------------------------------------------------


def approval_card(approval_id: str, summary: str, reason: str, approvers: str,
                  expires_at: float, requester: str | None) -> tuple[str, Blocks]:
    """The on-call prompt: what will happen, why, who may decide, until when; two buttons."""
    why = escape(trim(reason.strip(), 1500)) if reason.strip() else "_the model gave no reason_"
    blocks: Blocks = [
        section(f"⚠️ *Approval needed:* {escape(summary)}"),
        section(f"*Why the model asked:* {why}"),
        context(f"Who may approve: {approvers}"
                + (f" (not the requester <@{requester}>)" if requester else ""),
                f"Expires at {utc_clock(expires_at)} — no answer means denied"),
        {"type": "actions", "elements": [
            button("Approve", APPROVE_ACTION, approval_id, style="primary"),
            button("Deny", DENY_ACTION, approval_id, style="danger"),
        ]},
    ]
    return trim(f"⚠️ Approval needed: {summary}", MESSAGE_TEXT_LIMIT), blocks


def approval_resolved(summary: str, outcome: str) -> tuple[str, Blocks]:
    """The card after a decision: same summary, the outcome line, no buttons."""
    return trim(f"{outcome}: {summary}", MESSAGE_TEXT_LIMIT), [
        section(f"*Approval:* {escape(summary)}"), context(outcome)]


# --- verdict and failures -----------------------------------------------------------------


def totals_line(run_id: str, turns: int, tokens: int, elapsed_s: float) -> str:
    return (f"run {run_id} · {turns} turns · {tokens:,} tokens · "
            f"{format_duration(elapsed_s)}")


def verdict_message(question: str, verdict: dict[str, Any], evidence_links: Sequence[str | None],
                    run_id: str, turns: int, tokens: int, elapsed_s: float,
                    thread_link: str | None, truncated: bool = False) -> tuple[str, Blocks]:
    """The verdict, posted at the channel's top level: ROOT CAUSE, EVIDENCE (each item linked
    to the tool call it came from, when one matches), FIX, confidence and totals."""
    root_cause = str(verdict.get("root_cause") or "").strip() or "(the model named no root cause)"
    fix = str(verdict.get("fix") or "").strip() or "(no fix proposed)"
    confidence = str(verdict.get("confidence") or "unknown")
    evidence = [str(item) for item in verdict.get("evidence") or []]
    title = "⚠️ Partial verdict (turn budget hit)" if truncated else "🧭 Verdict"
    blocks: Blocks = [
        header(f"{title}: {trim(question, 100)}"),
        section(f"*ROOT CAUSE*\n{escape(trim(root_cause, 2800))}"),
    ]
    if evidence:
        lines = []
        for index, item in enumerate(evidence):
            link = evidence_links[index] if index < len(evidence_links) else None
            text = escape(trim(item, 600))
            lines.append(f"• {text} <{link}|↗ tool call>" if link else f"• {text}")
        blocks.extend(section(f"*EVIDENCE*\n{chunk}") for chunk in
                      split_text("\n".join(lines), SECTION_TEXT_LIMIT - 20))
    blocks.append(section(f"*FIX*\n{escape(trim(fix, 2800))}"))
    if not verdict.get("structured", True) and verdict.get("raw"):
        blocks.append(context("The model did not answer in the expected format; "
                              "this is its raw answer, best effort."))
    extra = [f"confidence: *{escape(confidence)}*", totals_line(run_id, turns, tokens, elapsed_s)]
    if thread_link:
        extra.append(f"<{thread_link}|evidence thread>")
    blocks.append(context(*extra))
    text = f"{title} (run {run_id}): {root_cause}\nFix: {fix}"
    return trim(text, MESSAGE_TEXT_LIMIT), capped(blocks)


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
        extra.append(f"<{thread_link}|thread>")
    blocks: Blocks = [
        header(f"{title}: {trim(question, 100)}"),
        section(f"*Reason:* {escape(trim(reason or 'no reason given', 2800))}"),
        context(*extra),
    ]
    return trim(f"{title} (run {run_id}): {reason}", MESSAGE_TEXT_LIMIT), blocks


def outcome_status(kind: str, reason: str, turns: int, tokens: int, elapsed_s: float) -> str:
    """The root message's last status line."""
    done = {"succeeded": "✅ verdict posted", "failed": "❌ failed", "cancelled": "🛑 cancelled",
            "interrupted": "⚠️ interrupted", "crashed": "💥 internal error"}.get(kind, kind)
    tail = f": {trim(reason, 300)}" if reason and kind != "succeeded" else ""
    return (f"{done}{tail} · {turns} turns · {tokens:,} tokens · "
            f"{format_duration(elapsed_s)}")
