"""Guards on what reaches the model: a context budget per tool result, and delimiters that mark
tool output as untrusted data.

Redaction happens earlier, inside the toolbox (agent/redact.py), so a secret never leaves a tool;
these guards run in the loop, after the full (redacted) output has been recorded for the audit.
"""

from __future__ import annotations

import re
import unicodedata
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

    The data cannot close the block or open a new turn from inside: zero-width and other
    invisible format characters are dropped, any line that *reads* like one of our markers
    once case, spacing, punctuation, compatibility forms and look-alike letters are
    normalised is defanged, and chat-template control tokens (``<|im_start|>``,
    ``<|eot_id|>``, ``[INST]``, ``<tool_call>`` …) are written out as plain words.
    """
    return f"{UNTRUSTED_BEGIN.format(tool=tool)}\n{neutralise(text)}\n{UNTRUSTED_END}"


# Invisible characters a marker could be split with (Unicode category Cf: ZWSP, ZWJ, BOM,
# bidi controls, soft hyphen…), removed outright: they carry nothing a reader can see.
_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
                        "\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f"
                        "\ufeff\uffa0\U000e0000-\U000e0fff]")
# Latin look-alikes NFKC does not fold (Cyrillic, Greek, a few symbols), for matching only.
_CONFUSABLES = str.maketrans({
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԍ": "g", "һ": "h",
    "ո": "n", "ս": "u", "ɡ": "g", "ı": "i", "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i",
    "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ℓ": "l",
    "0": "o", "1": "l", "3": "e", "5": "s", "7": "t", "|": "l", "!": "i", "$": "s", "@": "a",
})
_DASHES = re.compile(r"[-‐‑‒–—―−_=~*#]+")
_MARKER_WORDS = re.compile(r"(?:begin|end|start|stop|close)untrusted|untrustedtool|"
                           r"toolout(?:put)?(?:end|begin)")
_TEMPLATE_TOKENS = re.compile(
    r"(?i)<\|[ \t]*[\w.-]{1,40}[ \t]*\|>"                          # <|im_start|>, <|eot_id|>
    r"|\[[ \t]*/?[ \t]*(?:inst|sys|tool_calls|tool_results|available_tools|args|"
    r"system_prompt)[ \t]*\]"                                         # [INST], [TOOL_CALLS]
    r"|<<[ \t]*/?[ \t]*sys[ \t]*>>"                                   # <<SYS>>
    r"|</?[ \t]*(?:tool_call|tool_response|tools|function_call|start_of_turn|end_of_turn|"
    r"im_start|im_end|system|assistant|user|think)[ \t]*>")          # <tool_call>, </tools>


def _skeleton(line: str) -> str:
    """Lower-case letters only, after compatibility folding and look-alike mapping."""
    folded = unicodedata.normalize("NFKC", line).casefold().translate(_CONFUSABLES)
    return "".join(ch for ch in folded if "a" <= ch <= "z")


def _token_words(m: re.Match[str]) -> str:
    word = re.sub(r"[^\w/]+", "", m.group(0)).strip("_") or "token"
    return f"(template token {word})"


def neutralise(text: str) -> str:
    """Untrusted text with invisible characters removed, marker look-alikes defanged and
    chat-template tokens spelled out; everything else unchanged. Linear in the text."""
    text = _INVISIBLE.sub("", text)
    out: list[str] = []
    for line in text.split("\n"):
        folded = unicodedata.normalize("NFKC", line) if not line.isascii() else line
        if _TEMPLATE_TOKENS.search(folded):
            line = _TEMPLATE_TOKENS.sub(_token_words, folded)
        if _MARKER_WORDS.search(_skeleton(line)):
            plain = _DASHES.sub(" ", unicodedata.normalize("NFKC", line)).strip()
            line = f"[data that imitates a delimiter: {plain}]"
        out.append(line)
    return "\n".join(out)
