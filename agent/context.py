"""The context budget: how many tokens a request will take, and compaction when it would not fit.

Why this exists: Ollama's OpenAI endpoint silently drops the oldest non-system messages once a
conversation exceeds ``num_ctx`` (ollama server/prompt.go ``chatPrompt``), which loses the
user's question first; vLLM, llama.cpp, OpenAI and LM Studio refuse with a 400 instead. Either
way a run that has done all its tool work ends wrong. So before every request the loop asks
``ContextBudget.fit`` to make the conversation fit ``window - reply_reserve``.

Estimating tokens: chars/4 undercounts tool output about 2x (a 200-line JSON log is ~2.1 chars
per token with the Qwen tokenizer: digits are one token each, punctuation rarely merges, ids
split into many pieces) while English prose is ~4.2. So the estimate follows the text's make-up
rather than its length: a token per run of letters (more for long words), per digit, most
punctuation and some whitespace, plus a few tokens of chat-template framing per message. On
budo's own outputs it lands within 0.8-1.15x of a Qwen-like count; ``calibrate`` then scales it
by what the server reports in ``usage.prompt_tokens``, turn by turn.

Compacting: oldest tool results first become their FINDINGS lines, their first lines and a note
that the whole output is in the audit trail. Never dropped: the system prompt, every user
message (the question above all) and the results of the latest turn. Harder levels shrink
older results to the FINDINGS alone and shorten old reasoning, and the last resort clips the
latest results to head + tail; a conversation that still does not fit is reported as such and
the loop asks for the answer without tools.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from agent.guards import UNTRUSTED_BEGIN, UNTRUSTED_END, clip, wrap_untrusted

DEFAULT_CONTEXT_TOKENS = 32768
CHARS_PER_TOKEN_DATA = 2.2    # for turning a token allowance back into characters to keep
_LETTERS = re.compile(r"[A-Za-z]+")
_DIGIT = re.compile(r"\d")
_PUNCT = re.compile(r"[^\sA-Za-z\d]")
_SPACE = re.compile(r"\s+")
MESSAGE_OVERHEAD = 6           # <|im_start|>role\n ... <|im_end|>\n and friends
REPLY_RESERVE_MAX = 2048       # room kept for the answer (and any reasoning before it)
SAFETY_MARGIN = 0.04           # the calibrated estimate is within ~6% of the server's count
REPLY_RESERVE_SHARE = 8        # ... at most 1/8 of the window: answers are a few hundred tokens
HEAD_LINES = 3                 # first lines kept of a compacted result
REASONING_KEEP = 200           # characters of old assistant text kept at the hardest level
# A reported prompt this far below our estimate means the server cut the conversation.
TRUNCATION_RATIO = 0.7
WINDOW_MARGIN = 1.05           # our calibrated estimate is within a few percent of the truth
COMPACTED_MARK = "[compacted by budo:"
INFERRED = "inferred from a prompt the server truncated"
_BEGIN_PREFIX = UNTRUSTED_BEGIN.split("{tool}")[0]


@functools.lru_cache(maxsize=1024)
def text_tokens(text: str) -> float:
    """Tokens in ``text`` by its make-up (see the module docstring); cached, because compaction
    re-estimates the same messages many times."""
    words = sum(max(1.0, len(run) / 6) for run in _LETTERS.findall(text))
    return (words + len(_DIGIT.findall(text)) + 0.6 * len(_PUNCT.findall(text))
            + 0.3 * len(_SPACE.findall(text)))


def raw_tokens(message: dict[str, Any]) -> float:
    """An uncalibrated estimate for one message."""
    content = message.get("content") or ""
    if not isinstance(content, str):
        content = json.dumps(content)
    tokens = text_tokens(content) + MESSAGE_OVERHEAD
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        arguments = function.get("arguments")
        text = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
        tokens += text_tokens(str(function.get("name") or "") + text) + 8
    return tokens


def raw_tools_tokens(tools: list[dict[str, Any]] | None) -> float:
    return text_tokens(json.dumps(tools)) if tools else 0.0


@dataclass
class Compaction:
    """What one ``fit`` did: for the typed event and the tests."""

    before: int
    after: int
    level: int
    compacted_calls: list[str] = field(default_factory=list)
    fits: bool = True


@dataclass
class ContextBudget:
    window: int
    source: str = "BUDO_CONTEXT_TOKENS"
    scale: float = 1.0            # calibrated: reported prompt tokens / our raw estimate
    reply_reserve: int = 0
    calibrated: bool = False      # scale has been learnt from at least one server count
    counts_ignored: bool = False  # the server's counts proved not to be whole prompts

    def __post_init__(self) -> None:
        if not self.reply_reserve:
            self.reply_reserve = min(REPLY_RESERVE_MAX, self.window // REPLY_RESERVE_SHARE)

    @property
    def limit(self) -> int:
        """Tokens the prompt may take: the window minus room for the reply and a margin for
        the estimate's error (a few percent once calibrated)."""
        return max(256, int(self.window * (1 - SAFETY_MARGIN)) - self.reply_reserve)

    def raw(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> float:
        return sum(raw_tokens(m) for m in messages) + raw_tools_tokens(tools)

    def estimate(self, messages: list[dict[str, Any]],
                 tools: list[dict[str, Any]] | None = None) -> int:
        return math.ceil(self.raw(messages, tools) * self.scale)

    def truncated_by_server(self, estimate: int, reported: int) -> bool:
        """The server counted fewer tokens than we sent: it dropped part of the prompt. Either
        far fewer, or (once calibrated) a count at or under a power-of-two window that our
        estimate clearly exceeds: Ollama cutting just the oldest messages, the question first,
        to fit a num_ctx of 2048/4096/8192 leaves exactly that trace."""
        if estimate <= 512 or reported <= 0:
            return False
        if reported < estimate * TRUNCATION_RATIO:
            return True
        window = 2 ** math.ceil(math.log2(reported))
        return self.calibrated and reported <= window < estimate / WINDOW_MARGIN

    def read_count(self, raw: float, reported: int, *, floor: int) -> int | None:
        """Read the server's prompt count for this request (``raw`` our uncalibrated estimate,
        ``floor`` our estimate of what any truncation keeps: system prompt, tools, latest
        message). Returns the window the server evidently has when it truncated, else None
        (and calibrates on a whole count). Counts that cannot be whole prompts (below the
        floor and not a cut to a window, or short again once we fitted the window we inferred)
        leave something out, a prompt cache: from then on they are ignored."""
        if self.counts_ignored:
            return None
        estimate = math.ceil(raw * self.scale)
        if not self.truncated_by_server(estimate, reported):
            self.calibrate(raw, reported)
            return None
        window: int = 2 ** math.ceil(math.log2(max(reported, 2048)))
        capped = reported == window  # Ollama's runner cuts the prompt to exactly num_ctx
        if (reported < floor * TRUNCATION_RATIO and not capped) or (
                self.source == INFERRED and window >= self.window):
            self.counts_ignored = True
            return None
        return min(window, self.window)

    def calibrate(self, raw: float, reported: int) -> None:
        """Learn the tokenizer's ratio from ``usage.prompt_tokens`` (never from a truncated
        reply; the caller checks ``truncated_by_server`` first)."""
        if raw > 0 and reported > 0:
            self.scale = min(3.0, max(0.5, reported / raw))
            self.calibrated = True

    def shrink_to(self, tokens: int, source: str) -> None:
        """The server told us (or showed us) its real window."""
        if 0 < tokens < self.window:
            self.window, self.source = tokens, source
            self.reply_reserve = min(self.reply_reserve, max(256, tokens // REPLY_RESERVE_SHARE))

    # --- compaction -------------------------------------------------------------------------

    def fit(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
            *, hardest: int = 3) -> Compaction | None:
        """Compact ``messages`` in place until they fit ``limit``; None when nothing was needed.
        ``hardest`` bounds the levels tried (3 also clips the latest results)."""
        before = self.estimate(messages, tools)
        if before <= self.limit:
            return None
        protected = _protected(messages)
        done: list[str] = []
        level = 0
        for level in range(1, hardest + 1):
            for i, message in enumerate(messages):
                total = self.estimate(messages, tools)
                if total <= self.limit:
                    break
                if level < 3 and i in protected:
                    continue
                if self._shrink(message, level, messages, tools) and message.get("tool_call_id"):
                    call_id = str(message["tool_call_id"])
                    if call_id not in done:
                        done.append(call_id)
            if self.estimate(messages, tools) <= self.limit:
                break
        after = self.estimate(messages, tools)
        return Compaction(before, after, level, done, fits=after <= self.limit)


    def _shrink(self, message: dict[str, Any], level: int, messages: list[dict[str, Any]],
                tools: list[dict[str, Any]] | None) -> bool:
        """One message compacted for ``level``. Level 3 clips a result to what the rest of the
        conversation leaves free; the chars-per-token guess behind that can miss, so it
        clips again, tighter, while the whole still does not fit."""
        changed = False
        for attempt in range(3 if level == 3 else 1):
            total = self.estimate(messages, tools)
            if attempt and total <= self.limit:
                break
            room = self.limit - (total - math.ceil(raw_tokens(message) * self.scale))
            room_chars = int(max(0, room) * CHARS_PER_TOKEN_DATA / self.scale * (0.9 - attempt / 5))
            if not _compact(message, level, room_chars):
                break
            changed = True
        return changed


def _protected(messages: list[dict[str, Any]]) -> set[int]:
    """System prompt, every user message, and everything after the last assistant message (the
    latest results)."""
    keep = {i for i, m in enumerate(messages) if m.get("role") in ("system", "user")}
    last_assistant = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"),
                         default=-1)
    keep.update(range(last_assistant + 1, len(messages)))
    return keep


def _compact(message: dict[str, Any], level: int, room_chars: int) -> bool:
    """Shrink one message for ``level`` (3: to about ``room_chars``); True when it changed."""
    role = message.get("role")
    content = message.get("content") or ""
    if not isinstance(content, str):
        return False
    if role == "tool":
        tool = str(message.get("name") or "tool")
        if level == 3:  # the latest result itself: keep head and tail within a share of limit
            inner, wrapped = _unwrap(content)
            budget = max(400, room_chars - 200)  # the delimiters and the marker take ~200
            if len(inner) <= budget:
                return False
            clipped = clip(inner, budget).text
            message["content"] = wrap_untrusted(tool, clipped) if wrapped else clipped
            return True
        if level == 1 and content.startswith(COMPACTED_MARK):
            return False  # already compacted: newer results go first before this shrinks more
        new = compacted_result(content, tool, head_lines=HEAD_LINES if level == 1 else 0)
        if len(new) >= len(content):
            return False
        message["content"] = new
        return True
    if role == "assistant" and level >= 2 and len(content) > REASONING_KEEP:
        message["content"] = content[:REASONING_KEEP] + " …"
        return True
    return False


def compacted_result(content: str, tool: str, *, head_lines: int = HEAD_LINES) -> str:
    """A tool result reduced to its FINDINGS and first lines, with a note saying where the rest
    is. The kept data stays inside the untrusted delimiters; our note is outside them."""
    inner, wrapped = _unwrap(content)
    if inner.startswith(COMPACTED_MARK):  # already compacted once: keep only the FINDINGS now
        inner = "\n".join(line for line in inner.splitlines()[1:] if line.startswith("FINDINGS"))
    lines = inner.splitlines()
    findings = [line for line in lines if line.startswith("FINDINGS")]
    head = [line[:300] for line in lines[:head_lines] if not line.startswith("FINDINGS")]
    note = (f"{COMPACTED_MARK} this {tool} result ({len(lines)} lines) was shortened to fit the "
            f"model's context; the full output is in the audit trail. Call the tool again, "
            f"narrower, if you need more of it.]")
    kept = "\n".join([*head, *findings]) or "(no FINDINGS lines)"
    data = wrap_untrusted(tool, kept) if wrapped else kept
    return f"{note}\n{data}"


def _unwrap(content: str) -> tuple[str, bool]:
    """The data inside our untrusted delimiters (skipping a compaction note before them)."""
    start = content.find(_BEGIN_PREFIX)
    end = content.rfind(UNTRUSTED_END)
    if start < 0 or end < start:
        return content, False
    body_start = content.find("\n", start)
    prefix = content[:start].strip()
    inner = content[body_start + 1 : end].rstrip("\n")
    if prefix.startswith(COMPACTED_MARK):
        inner = f"{prefix}\n{inner}"
    return inner, True


def notice(event: Any) -> str:
    """One line for a human about a ContextCompacted or ContextTruncated event (terminal and
    Slack thread say the same thing)."""
    if event.kind == "context_truncated":
        return f"⚠️ {event.message}"
    results = len(event.call_ids)
    what = f"{results} older tool result{'s' if results != 1 else ''}" if results else "history"
    why = "the server refused an overlong prompt; " if event.reason == "overflow" else ""
    line = (f"📦 {why}compacted {what} to fit the model's {event.window:,}-token context "
            f"({event.source}): ~{event.before_tokens:,} → ~{event.after_tokens:,} tokens; "
            f"full outputs stay in the audit trail")
    if not event.fits:
        line += "; still too long, so the model answers from what it has"
    return line
