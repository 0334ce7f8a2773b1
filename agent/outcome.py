"""What a run is given (Budgets), how its caller says why it stopped it (Stop) and what it
gives back (RunOutcome): the plain data around ``agent.loop.run_investigation``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from agent.context import DEFAULT_CONTEXT_TOKENS


@dataclass(frozen=True)
class Budgets:
    max_turns: int = 15
    max_tokens: int = 200_000
    run_timeout: float = 600.0
    tool_timeout: float = 30.0
    tool_output_chars: int = 8000
    verify_timeout: float = 120.0
    context_tokens: int = DEFAULT_CONTEXT_TOKENS  # when the server does not publish its window


@dataclass(frozen=True)
class Stop:
    """Why the run's task was cancelled, as the caller who cancelled it tells the loop:
    ``cancelled`` (someone asked) or ``interrupted`` (budo is shutting down)."""

    kind: Literal["cancelled", "interrupted"] = "cancelled"
    reason: str = "cancelled"
    by: str | None = None   # who cancelled, when a person did (a Slack user id, "terminal")


@dataclass
class RunOutcome:
    run_id: str
    status: Literal["succeeded", "failed", "cancelled", "interrupted"]
    verdict: dict[str, Any] | None  # agent.verdict.Verdict.to_dict()
    turns: int
    tokens: int
    reason: str | None = None       # one line, for failed/cancelled/interrupted
    messages: list[dict[str, Any]] = field(default_factory=list)  # for follow-ups
