"""The terminal rendering of a run, shaped like the Slack thread: a root line, one threaded line
per tool call with a short preview, the approval card, and the verdict.

``TerminalSink`` is an EventSink; ``budo investigate`` and ``budo demo`` both use it, so what
the demo shows is what the loop actually emitted.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import fields, replace
from typing import Any, TextIO

from agent import (
    ApprovalDecided,
    ApprovalRequested,
    Event,
    ModelReply,
    Redacted,
    RunCancelled,
    RunFailed,
    RunInterrupted,
    RunStarted,
    ToolFinished,
    ToolRequested,
    Truncated,
    VerdictReached,
    VerificationStarted,
    Verified,
    context_notice,
    cut_middle,
    format_args,
    terminal_safe,
)

PREVIEW_LINES = 4
PREVIEW_WIDTH = 110

# Event fields printed line by line; in every other field a newline is shown, not obeyed.
_MULTILINE_FIELDS = frozenset({"output", "error", "content", "verdict"})


def _safe(value: Any, newlines: bool) -> Any:
    if isinstance(value, str):
        return terminal_safe(value, newlines=newlines)
    if isinstance(value, dict):
        return {_safe(k, False): _safe(v, newlines) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_safe(v, newlines) for v in value)
    return value


def safe_event(event: Event) -> Event:
    """A copy of ``event`` with every string in it passed through terminal_safe: everything an
    event carries came from the cluster, the model or a user."""
    changed = {f.name: _safe(getattr(event, f.name), f.name in _MULTILINE_FIELDS)
               for f in fields(event) if f.init and f.name not in ("run_id", "at")}
    return replace(event, **changed)


def preview(text: str, lines: int = PREVIEW_LINES, width: int = PREVIEW_WIDTH) -> list[str]:
    """The first lines of a result plus its FINDINGS (they are the point of the call)."""
    all_lines = [line for line in text.splitlines() if line.strip()]
    findings = [line for line in all_lines if line.startswith("FINDINGS:")]
    body = [line for line in all_lines if not line.startswith("FINDINGS:")]
    shown = [cut_middle(readable(line), width) for line in body[:lines]]
    if len(body) > lines:
        shown.append(f"… {len(body) - lines} more lines (full output in the audit trail)")
    return shown + [line[:width * 2] for line in findings]


def readable(line: str) -> str:
    """A structured (logrus/pino JSON) log line as `severity message: error` for human eyes;
    anything else unchanged. The model still gets the raw line."""
    start = line.find("{")
    if start < 0 or not line.rstrip().endswith("}"):
        return line
    try:
        record = json.loads(line[start:])
    except ValueError:
        return line
    if not isinstance(record, dict) or not ("message" in record or "msg" in record):
        return line
    severity = record.get("severity") or record.get("level") or ""
    text = f"{line[:start]}{severity} {record.get('message') or record.get('msg')}".strip()
    error = record.get("error") or record.get("err")
    return f"{text}: {error}" if error else text


class TerminalSink:
    """Prints each event as it happens. ``color`` adds ANSI dim/bold where the output is a TTY."""

    def __init__(self, out: TextIO | None = None, *, color: bool | None = None,
                 requester: str = "you") -> None:
        self.out = out or sys.stdout
        self.color = self.out.isatty() if color is None else color
        self.requester = requester
        self.started = time.monotonic()
        self.actions: list[str] = []   # verified actions, repeated under the verdict

    def _style(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def _print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    async def emit(self, event: Event) -> None:
        event = safe_event(event)  # before any of budo's own styling is added
        p = self._print
        if isinstance(event, RunStarted):
            self.started = time.monotonic()
            p(self._style(f"🔍 Investigating: {event.question}", "1")
              + f" — asked by {event.requester or self.requester} · run {event.run_id}")
            p(self._style(f"   model {event.model} · up to {event.max_turns} turns", "2"))
        elif isinstance(event, ModelReply):
            if event.content.strip() and event.tool_calls:
                thought = " ".join(event.content.split())[:200]
                p(f"  │ 💭 {self._style(thought, '3')}")
            if event.recovered_from_text:
                p(self._style("  │    (tool call recovered from the model's text)", "2"))
        elif isinstance(event, ToolRequested):
            mark = "🛠️ " if event.mutating else "🔧"
            p(f"  ├─ {mark} {event.tool}({format_args(event.args)})")
        elif isinstance(event, ToolFinished):
            status = "✓" if event.ok else "✗"
            head = f"  │    {status} {event.duration_s:.2f}s"
            if event.sent_chars < len(event.output):
                head += f" · {len(event.output)} chars, {event.sent_chars} sent to the model"
            p(self._style(head, "2"))
            for line in preview(event.output):
                style = "33" if line.startswith("FINDINGS:") else "2"
                p("  │      " + self._style(line, style))
        elif event.kind in ("context_compacted", "context_truncated"):
            p(self._style(f"  │    {context_notice(event)}", "2"))
        elif event.kind == "model_nudged":
            p(self._style(f"  │    ↻ asked the model again ({getattr(event, 'reason', '')})",
                          "2"))
        elif isinstance(event, Truncated):
            p(self._style(f"  │    ✂ output clipped: {event.omitted_lines} lines omitted", "2"))
        elif isinstance(event, Redacted):
            p(self._style(f"  │    🔒 {event.count} secret(s) redacted "
                          f"({', '.join(event.kinds)})", "2"))
        elif isinstance(event, ApprovalRequested):
            p("  │  ┌─ ⚠️  " + self._style("Approval needed", "1;33"))
            p(f"  │  │  {event.summary}")
            for change in event.changes:
                p("  │  │    " + self._style(change, "1"))
            if event.current:
                p(self._style(f"  │  │  now: {event.current}", "2"))
            if event.reason:
                p(f"  │  │  why: {' '.join(event.reason.split())[:200]}")
            p("  │  └─ [ Approve ]  [ Deny ]")
        elif isinstance(event, ApprovalDecided):
            who = f" by {event.decided_by}" if event.decided_by else ""
            text = f"✅ Approved{who}" if event.approved else f"🚫 Denied{who} ({event.reason})"
            p(f"  │     {text}")
        elif isinstance(event, VerificationStarted):
            p(self._style(f"  │     ⏳ watching the rollout (up to {event.timeout_s:g} s)", "2"))
        elif isinstance(event, Verified):
            line = f"{'✅' if event.ok else '❌'} {event.outcome}"
            self.actions.append(f"{line} — {event.summary}")
            p(f"  │     {line}")
            for detail in event.details[:5]:
                p("  │       " + self._style(detail[:PREVIEW_WIDTH * 2], "33"))
        elif isinstance(event, VerdictReached):
            self._verdict(event)
        elif isinstance(event, RunFailed):
            # The reason is the caller's last line (budo investigate's stderr line, the demo's
            # "✗ no verdict"), which survives a redirected stdout: said once, there.
            p(f"  └─ ❌ {self._style('Investigation failed', '1;31')}")
            p(self._style(f"     {event.turns} turns · {event.tokens} tokens · "
                          f"{time.monotonic() - self.started:.1f}s", "2"))
        elif isinstance(event, RunCancelled):
            p(f"  └─ ⏹️  Investigation cancelled ({event.reason})")
        elif isinstance(event, RunInterrupted):
            p(f"  └─ ⚠️  Investigation interrupted ({event.reason})")

    def _verdict(self, event: VerdictReached) -> None:
        v, p = event.verdict, self._print
        p("  └─ done")
        p()
        title = "VERDICT" + (" (turn budget reached — partial)" if event.truncated else "")
        p(self._style(f"━━ {title} " + "━" * max(0, 60 - len(title)), "1"))
        p(self._style("ROOT CAUSE", "1") + f"  {v['root_cause']}")
        if v.get("evidence"):
            p(self._style("EVIDENCE", "1"))
            for item in v["evidence"]:
                p(f"  • {item}")
        if v.get("fix"):
            p(self._style("FIX", "1") + f"  {v['fix']}")
        for action in self.actions:
            p(self._style("ACTION", "1") + f"  {action}")
        extra = "" if v.get("structured", True) else " · (unstructured answer kept as is)"
        if v.get("cut_off"):
            extra += " · (cut off at the model's length limit)"
        p(self._style(f"confidence {v.get('confidence', 'unknown')} · run {event.run_id} · "
                      f"{event.turns} turns · {event.tokens} tokens · "
                      f"{time.monotonic() - self.started:.1f}s{extra}", "2"))
