"""The typed events the agent loop emits, one dataclass per kind.

The loop knows nothing of Slack, terminals or SQLite: it hands each event to every sink in
order and awaits them before its next step (so the audit store has committed what the channel
is about to see). Sinks dispatch on ``isinstance`` or on ``kind``.

``payload()`` is the JSON-safe body the audit store hashes and the export renders; it is
everything except ``run_id`` and ``at``, which the store keeps in columns.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: ClassVar[str] = "event"
    run_id: str
    at: float = field(default_factory=time.time)

    def payload(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("run_id")
        body.pop("at")
        return body


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    question: str
    namespace: str | None
    model: str
    max_turns: int
    tools: list[str]
    requester: str | None = None


@dataclass(frozen=True, kw_only=True)
class ModelRequest(Event):
    kind: ClassVar[str] = "model_request"
    turn: int
    messages: int          # how many messages were sent
    chars: int             # total characters of message content sent
    tools_offered: int     # 0 on the last turn: the model must answer
    estimated_tokens: int = 0  # the context budget's calibrated estimate of the prompt
    context_window: int = 0    # the window it was fitted to


@dataclass(frozen=True, kw_only=True)
class ModelReply(Event):
    kind: ClassVar[str] = "model_reply"
    turn: int
    duration_s: float
    prompt_tokens: int
    completion_tokens: int
    tokens_estimated: bool  # True when the server sent no `usage`
    content: str            # the model's text (reasoning or the final answer)
    tool_calls: list[dict[str, Any]]  # [{"id", "name", "arguments"}] as parsed
    recovered_from_text: bool = False  # the call was written in `content`, not `tool_calls`


@dataclass(frozen=True, kw_only=True)
class ToolRequested(Event):
    kind: ClassVar[str] = "tool_requested"
    turn: int
    call_id: str
    tool: str
    args: dict[str, Any]
    mutating: bool


@dataclass(frozen=True, kw_only=True)
class ToolFinished(Event):
    kind: ClassVar[str] = "tool_finished"
    turn: int
    call_id: str
    tool: str
    ok: bool
    duration_s: float
    output: str             # the full (redacted) result, before the context budget trims it
    error: str | None = None
    findings: list[str] = field(default_factory=list)
    sent_chars: int = 0     # how much of it reached the model after truncation


@dataclass(frozen=True, kw_only=True)
class ApprovalRequested(Event):
    kind: ClassVar[str] = "approval_requested"
    call_id: str
    tool: str
    args: dict[str, Any]
    summary: str            # "delete pod X in namespace Y"
    reason: str             # why the model asked (its text this turn), may be empty
    changes: list[str] = field(default_factory=list)  # the dry run's diff, one change a line
    current: str = ""       # the target's state when the card was posted, one line


@dataclass(frozen=True, kw_only=True)
class ApprovalDecided(Event):
    kind: ClassVar[str] = "approval_decided"
    call_id: str
    tool: str
    approved: bool
    decided_by: str | None  # None when it expired or nobody could be asked
    reason: str             # "approved", "denied", "expired", "no TTY", ...


@dataclass(frozen=True, kw_only=True)
class VerificationStarted(Event):
    kind: ClassVar[str] = "verification_started"
    call_id: str
    tool: str
    timeout_s: float        # BUDO_VERIFY_TIMEOUT: how long it may watch


@dataclass(frozen=True, kw_only=True)
class Verified(Event):
    kind: ClassVar[str] = "verified"
    call_id: str
    tool: str
    summary: str            # the call in one line: "set env X on deployment/y in shop"
    ok: bool
    outcome: str            # "rolled out: 1/1 ready in 4.2 s" / "not ready after 120 s"
    details: list[str] = field(default_factory=list)  # findings of the new pods
    duration_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Truncated(Event):
    kind: ClassVar[str] = "truncated"
    call_id: str
    tool: str
    original_chars: int
    kept_chars: int
    omitted_lines: int


@dataclass(frozen=True, kw_only=True)
class Redacted(Event):
    kind: ClassVar[str] = "redacted"
    call_id: str
    tool: str
    count: int
    kinds: list[str]        # e.g. ["bearer", "jwt"]: what was found, never the values


@dataclass(frozen=True, kw_only=True)
class ContextCompacted(Event):
    """Older tool results were shortened so the conversation fits the model's context."""

    kind: ClassVar[str] = "context_compacted"
    turn: int
    reason: str              # "budget" (before sending), "overflow" (the server refused)
    window: int              # the model's context in tokens, and where that number came from
    source: str
    before_tokens: int       # estimated prompt tokens before and after
    after_tokens: int
    level: int               # 1 FINDINGS + first lines, 2 FINDINGS only, 3 latest results clipped
    call_ids: list[str] = field(default_factory=list)
    fits: bool = True        # False: even the hardest compaction was not enough


@dataclass(frozen=True, kw_only=True)
class ContextTruncated(Event):
    """The server reported far fewer prompt tokens than were sent: it silently dropped part of
    the conversation (Ollama over num_ctx drops the oldest messages, the question first)."""

    kind: ClassVar[str] = "context_truncated"
    turn: int
    estimated_tokens: int
    reported_tokens: int
    window: int              # what budo now assumes the server's context is
    message: str             # one line for humans, naming the setting to raise


@dataclass(frozen=True, kw_only=True)
class ModelNudged(Event):
    """The model's reply was neither a tool call nor an answer in the verdict format (or was cut
    off), so the loop asked again instead of taking it as the verdict."""

    kind: ClassVar[str] = "model_nudged"
    turn: int
    reason: str              # "not an answer", "empty", "cut off", "context full"
    content: str = ""        # what the model said


@dataclass(frozen=True, kw_only=True)
class VerdictReached(Event):
    kind: ClassVar[str] = "verdict"
    verdict: dict[str, Any]  # agent.verdict.Verdict.to_dict()
    turns: int
    tokens: int
    truncated: bool          # max turns hit: this is what the model had, not a conclusion


@dataclass(frozen=True, kw_only=True)
class RunFailed(Event):
    kind: ClassVar[str] = "failed"
    reason: str              # one line for humans: "model unreachable at …", "token budget …"
    error_type: str          # the BudoError subclass name (or the bug's exception type)
    turns: int
    tokens: int
    internal: bool = False   # our own bug, not model/budget/sink trouble


@dataclass(frozen=True, kw_only=True)
class RunCancelled(Event):
    """Someone stopped the run (the Cancel button, Ctrl-C)."""

    kind: ClassVar[str] = "cancelled"
    reason: str              # "cancelled", "cancelled by <@U…>"
    turns: int
    tokens: int
    by: str | None = None    # who cancelled, when a person did: front ends render the mention


@dataclass(frozen=True, kw_only=True)
class RunInterrupted(Event):
    """budo itself stopped the run (shutdown); the question may simply be asked again."""

    kind: ClassVar[str] = "interrupted"
    reason: str
    turns: int
    tokens: int


# The events that end a run: the loop emits exactly one of these, last.
Terminal = VerdictReached | RunFailed | RunCancelled | RunInterrupted
