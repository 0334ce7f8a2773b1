"""Exports, as pure functions of a run and its events.

JSONL is the complete trail: one stored event per line, hash included, nothing trimmed.
Markdown is for a human writing the postmortem: a header, a timeline (UTC time, elapsed,
what happened), the verdict, totals, and the chain's final hash to check it against.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from storage.chain import GENESIS, canonical_json
from storage.records import RunRecord, StoredEvent

MAX_OUTPUT_LINES = 30
OUTPUT_HEAD_LINES = 10
MAX_LINE_CHARS = 240
MAX_REASONING_LINES = 6


def export_jsonl(events: Sequence[StoredEvent]) -> str:
    """One canonical JSON object per line (run_id, seq, at, kind, actor, payload,
    prev_hash, hash): enough to re-verify the chain offline."""
    return "".join(canonical_json(e.to_dict()) + "\n" for e in events)


def export_markdown(run: RunRecord, events: Sequence[StoredEvent]) -> str:
    finished = {e.payload.get("call_id") for e in events if e.kind == "tool_finished"}
    requested = {e.payload.get("call_id"): e.payload for e in events
                 if e.kind == "tool_requested"}
    lines = [f"# Investigation {run.id}", "", *_header(run), "", "## Timeline", ""]
    for event in events:
        if event.kind == "tool_requested" and event.payload.get("call_id") in finished:
            continue  # shown with its result
        body = _describe(event, requested)
        if body is None:
            continue
        stamp = f"**{_clock(event.at)}** (+{_elapsed(event.at - run.started_at)})"
        first, *rest = body
        lines.append(f"- {stamp} — {first}")
        lines.extend(f"  {line}" if line else "" for line in rest)
    lines += ["", "## Verdict", "", *_verdict(run), "", "## Totals", ""]
    duration = _duration(run.duration_s) if run.duration_s is not None else "still running"
    lines += [f"- Turns: {run.turns}", f"- Tokens: {run.tokens:,}",
              f"- Duration: {duration}", f"- Events: {len(events)}"]
    head = events[-1].hash if events else GENESIS
    lines += ["", "---", "",
              f"Audit chain: {len(events)} events, final hash `{head}`. "
              f"Verify with `budo audit verify {run.id} --expect {head}`.", ""]
    return "\n".join(lines)


def _header(run: RunRecord) -> list[str]:
    rows = [
        ("Question", run.question), ("Requester", run.requester or "—"),
        ("Model", run.model or "—"), ("Namespace", run.namespace or "all allowed"),
        ("Status", run.status), ("Started", _stamp(run.started_at)),
        ("Ended", _stamp(run.ended_at) if run.ended_at else "—"),
    ]
    if run.channel:
        rows.append(("Slack", f"channel {run.channel}, thread {run.thread_ts or '—'}"))
    else:
        rows.append(("Source", run.source))
    table = ["| | |", "|---|---|"]
    table += [f"| {name} | {_cell(value)} |" for name, value in rows]
    return table


def _describe(event: StoredEvent, requested: dict[Any, dict[str, Any]]) -> list[str] | None:
    p = event.payload
    kind = event.kind
    if kind == "run_started":
        who = p.get("requester") or event.actor or "someone"
        return [f"run started by {who}: {_quote_inline(p.get('question', ''))} "
                f"(model {p.get('model')}, {len(p.get('tools') or [])} tools, "
                f"max {p.get('max_turns')} turns)"]
    if kind == "model_request":
        return None  # the reply line says everything a reader needs about the turn
    if kind == "model_reply":
        tokens = int(p.get("prompt_tokens", 0)) + int(p.get("completion_tokens", 0))
        estimated = " (estimated)" if p.get("tokens_estimated") else ""
        calls = [_call(c.get("name", "?"), c.get("arguments")) for c in p.get("tool_calls") or []]
        what = f"asked for {', '.join(calls)}" if calls else "answered"
        recovered = " (tool call recovered from text)" if p.get("recovered_from_text") else ""
        out = [f"model turn {p.get('turn')}: {tokens:,} tokens{estimated}, "
               f"{float(p.get('duration_s', 0)):.1f} s; {what}{recovered}"]
        if calls and str(p.get("content", "")).strip():
            out += [f"> {line}" for line in _trim_lines(p["content"], MAX_REASONING_LINES)[0]]
        return out
    if kind == "tool_finished":
        args = requested.get(p.get("call_id"), {}).get("args")
        status = "ok" if p.get("ok") else f"error: {p.get('error')}"
        out = [f"tool call {_call(p.get('tool', '?'), args)} -> {status}, "
               f"{float(p.get('duration_s', 0)):.2f} s"]
        if p.get("output"):
            out += _fenced(str(p["output"]))
        out += [f"- finding: {f}" for f in p.get("findings") or []]
        return out
    if kind == "tool_requested":
        return [f"tool call {_call(p.get('tool', '?'), p.get('args'))} requested "
                "(no result recorded)"]
    if kind == "approval_requested":
        out = [f"approval requested for {_call(p.get('tool', '?'), p.get('args'))}: "
               f"{p.get('summary', '')}"]
        out += [f"- change: {c}" for c in p.get("changes") or []]
        if p.get("current"):
            out.append(f"- now: {p['current']}")
        if p.get("reason"):
            out.append(f"> {_one_line(p['reason'])}")
        return out
    if kind == "verified":
        mark = "verified" if p.get("ok") else "**verification failed**"
        return [f"{mark}: {p.get('summary')}: {p.get('outcome')}",
                *(f"- {d}" for d in p.get("details") or [])]
    if kind == "approval_decided":
        by = p.get("decided_by")
        verb = "approved" if p.get("approved") else "denied"
        if by:
            return [f"**{verb}** by {by}: `{p.get('tool')}` ({p.get('reason')})"]
        return [f"**{verb}**, nobody decided: `{p.get('tool')}` ({p.get('reason')})"]
    if kind == "truncated":
        return [f"output of `{p.get('tool')}` trimmed for the model: kept "
                f"{int(p.get('kept_chars', 0)):,} of {int(p.get('original_chars', 0)):,} "
                f"chars ({int(p.get('omitted_lines', 0)):,} lines omitted)"]
    if kind == "redacted":
        kinds = ", ".join(p.get("kinds") or []) or "secrets"
        return [f"redacted {p.get('count')} value(s) in `{p.get('tool')}` output ({kinds})"]
    if kind == "verdict":
        note = " — max turns hit: what the model had, not a conclusion" \
            if p.get("truncated") else ""
        return [f"**verdict** after {p.get('turns')} turns, {int(p.get('tokens', 0)):,} "
                f"tokens{note}"]
    if kind == "failed":
        return [f"**run failed**: {p.get('reason')} ({p.get('error_type')})"]
    if kind == "cancelled":
        return [f"**cancelled**: {p.get('reason')}"]
    detail = ", ".join(f"{k}={_short(v)}" for k, v in sorted(p.items()))
    by = f" by {event.actor}" if event.actor else ""
    return [f"{kind.replace('_', ' ')}{by}" + (f": {detail}" if detail else "")]


def _verdict(run: RunRecord) -> list[str]:
    v = run.verdict
    if not v:
        reasons = {"failed": "the run failed", "cancelled": "the run was cancelled",
                   "interrupted": "budo restarted during the run", "running": "still running"}
        return [f"No verdict: {reasons.get(run.status, run.status)}."]
    out = [f"**Root cause:** {v.get('root_cause') or '—'}", ""]
    evidence = v.get("evidence") or []
    if evidence:
        out += ["**Evidence:**", *[f"- {item}" for item in evidence], ""]
    fix = str(v.get("fix") or "").strip()
    if "\n" in fix:
        out += ["**Fix:**", *_fenced(fix), ""]
    else:
        out += [f"**Fix:** {fix or '—'}", ""]
    out.append(f"**Confidence:** {v.get('confidence', 'unknown')}")
    if v.get("structured") is False:
        out.append("")
        out.append("_The model did not follow the verdict format; its whole answer is "
                   "kept as the root cause._")
    return out


# --- formatting helpers -------------------------------------------------------------------


def _call(name: str, args: Any) -> str:
    if not isinstance(args, dict):
        return f"`{name}()`"
    parts = []
    for key, value in args.items():
        shown = value if isinstance(value, str) and re.fullmatch(r"[\w.:/@-]+", value) \
            else json.dumps(value, ensure_ascii=False)
        parts.append(f"{key}={shown}")
    return f"`{name}({', '.join(parts)})`"


def _trim_lines(text: str, limit: int) -> tuple[list[str], int]:
    lines = text.rstrip("\n").splitlines() or [""]
    kept = [ln if len(ln) <= MAX_LINE_CHARS else ln[:MAX_LINE_CHARS] + " …" for ln in
            lines[:limit]]
    return kept, max(0, len(lines) - limit)


def _fenced(text: str) -> list[str]:
    """Head and tail of a long output: errors tend to be at the end of logs."""
    lines = text.rstrip("\n").splitlines() or [""]
    if len(lines) > MAX_OUTPUT_LINES:
        head, tail = OUTPUT_HEAD_LINES, MAX_OUTPUT_LINES - OUTPUT_HEAD_LINES
        omitted = len(lines) - head - tail
        lines = [*lines[:head], f"… {omitted:,} lines omitted (whole output in the JSONL "
                 "export) …", *lines[-tail:]]
    kept = [ln if len(ln) <= MAX_LINE_CHARS else ln[:MAX_LINE_CHARS] + " …" for ln in lines]
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)  # a fence the output cannot close early
    return [fence, *kept, fence]


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit] + " …"


def _quote_inline(text: str) -> str:
    return f"“{_one_line(text)}”"


def _short(value: Any) -> str:
    return _one_line(value if isinstance(value, str) else json.dumps(value), 120)


def _cell(value: str) -> str:
    return _one_line(value).replace("|", "\\|")


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S")


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _elapsed(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s"
