"""Guards on what reaches the model: a context budget per tool result, and delimiters that mark
tool output as untrusted data.

Redaction happens earlier, inside the toolbox (agent/redact.py), so a secret never leaves a tool;
these guards run in the loop, after the full (redacted) output has been recorded for the audit.
"""

from __future__ import annotations

from dataclasses import dataclass

UNTRUSTED_BEGIN = "--- BEGIN UNTRUSTED TOOL OUTPUT: {tool} ---"
UNTRUSTED_END = "--- END UNTRUSTED TOOL OUTPUT ---"


@dataclass(frozen=True)
class Clipped:
    text: str
    original_chars: int
    omitted_lines: int

    @property
    def truncated(self) -> bool:
        return self.omitted_lines > 0 or len(self.text) < self.original_chars


def clip(text: str, budget: int) -> Clipped:
    """Keep the head and the tail of ``text`` within about ``budget`` characters.

    Whole lines are kept (a half line of JSON confuses models more than a missing one), the head
    gets 60 % because the first lines of a table carry its header, and the marker says how to
    narrow the next call instead of just that something is missing. FINDINGS lines are appended
    by tools at the end, so the tail keeps them.
    """
    if len(text) <= budget:
        return Clipped(text, len(text), 0)
    lines = text.splitlines()
    head_budget, tail_budget = int(budget * 0.6), int(budget * 0.4)
    head: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > head_budget:
            break
        head.append(line)
        used += len(line) + 1
    tail: list[str] = []
    used = 0
    for line in reversed(lines[len(head):]):
        if used + len(line) + 1 > tail_budget:
            break
        tail.append(line)
        used += len(line) + 1
    tail.reverse()
    omitted = len(lines) - len(head) - len(tail)
    if not head and not tail:  # one enormous line: cut it by characters
        marker = f"[... {len(text) - budget} characters omitted ...]"
        kept = text[:head_budget] + "\n" + marker + "\n" + text[-tail_budget:]
        return Clipped(kept, len(text), 1)
    marker = f"[... {omitted} lines omitted — narrow with grep/since/tail ...]"
    return Clipped("\n".join([*head, marker, *tail]), len(text), omitted)


def wrap_untrusted(tool: str, text: str) -> str:
    """Delimit tool output so the system prompt can tell the model it is data, not instructions.

    A log line could contain our own END marker to 'close' the block early; neutralise any
    occurrence inside the data so the only real END is ours.
    """
    safe = text.replace("--- END UNTRUSTED", "--- END_UNTRUSTED").replace(
        "--- BEGIN UNTRUSTED", "--- BEGIN_UNTRUSTED"
    )
    return f"{UNTRUSTED_BEGIN.format(tool=tool)}\n{safe}\n{UNTRUSTED_END}"
