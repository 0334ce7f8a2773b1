"""Matching the verdict's evidence items to the tool calls they came from.

The model writes evidence as prose ("checkoutservice-7d9f logs: dial tcp: lookup
paymentservice.shop.svc…"); the thread has one message per tool call. An item links to the
call whose tool name, argument values or distinctive output tokens (pod names, error strings)
it mentions most. No match, no link: a wrong link is worse than none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Kubernetes-style names (checkoutservice-7d9f8-abcde, payment.shop.svc) and other tokens
# with a digit or a dash: distinctive enough that a shared one means a shared source.
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*[A-Za-z0-9]")
_COMMON = frozenset({"the", "and", "pod", "pods", "error", "errors", "logs", "log", "namespace",
                     "container", "service", "deployment", "status", "running", "events"})


@dataclass
class ToolCallRecord:
    """One tool call as the thread shows it."""

    call_id: str
    tool: str
    args: dict[str, Any]
    ts: str | None = None         # the thread message for this call
    ok: bool | None = None
    output: str = ""
    tokens: set[str] = field(default_factory=set)

    def remember_output(self, output: str) -> None:
        self.output = output
        self.tokens = {t.lower() for t in _TOKEN.findall(output[:20_000]) if _distinctive(t)}


def _distinctive(token: str) -> bool:
    lowered = token.lower()
    if len(token) < 5 or lowered in _COMMON:
        return False
    return any(c.isdigit() for c in token) or "-" in token or "." in token


def _tokens(text: str) -> set[str]:
    return {t.lower() for t in _TOKEN.findall(text)}


def score(item: str, call: ToolCallRecord) -> int:
    """How strongly ``item`` points at ``call``: its tool named (3), a word of the tool's
    name such as "logs" (1), an argument value as a whole token (2; a namespace, shared by
    most calls, 1), each distinctive token of the call's output (2, at most 3 counted)."""
    text = item.lower()
    words = _tokens(item)
    points = 0
    if call.tool.lower() in text or call.tool.replace("_", " ").lower() in text:
        points += 3
    elif any(part in words for part in call.tool.lower().split("_")[1:] if len(part) > 3):
        points += 1
    for key, value in call.args.items():
        if isinstance(value, str) and value.lower() in words:
            points += 1 if key == "namespace" else 2
    shared = {t for t in words if _distinctive(t)} & call.tokens
    points += 2 * min(3, len(shared))
    return points


def match_evidence(items: list[str], calls: list[ToolCallRecord]) -> list[ToolCallRecord | None]:
    """For each item, the best-matching call that has a thread message, or None."""
    candidates = [c for c in calls if c.ts]
    matched: list[ToolCallRecord | None] = []
    for item in items:
        best: ToolCallRecord | None = None
        best_points = 0
        for call in candidates:
            points = score(item, call)
            # Ties go to the successful call (failed calls rarely carry the evidence), then to
            # the later one: a namespace overview states facts the targeted read repeats.
            if points > best_points or (points == best_points and points and call.ok
                                        and best is not None):
                best, best_points = call, points
        matched.append(best if best_points >= 2 else None)
    return matched
