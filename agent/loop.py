"""The agent loop. (Public API fixed; implementation lands next.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.protocols import Approver, ChatModel, EventSink, ToolSpec


@dataclass(frozen=True)
class Budgets:
    max_turns: int = 15
    max_tokens: int = 200_000
    run_timeout: float = 600.0
    tool_timeout: float = 30.0
    tool_output_chars: int = 8000


@dataclass
class RunOutcome:
    run_id: str
    status: Literal["succeeded", "failed", "cancelled"]
    verdict: dict[str, Any] | None  # agent.verdict.Verdict.to_dict()
    turns: int
    tokens: int
    reason: str | None = None       # one line, for failed/cancelled
    messages: list[dict[str, Any]] = field(default_factory=list)  # for follow-ups


async def run_investigation(
    question: str,
    *,
    run_id: str,
    model: ChatModel,
    tools: Sequence[ToolSpec],
    sinks: Sequence[EventSink],
    approver: Approver,
    budgets: Budgets = Budgets(),
    namespace: str | None = None,
    requester: str | None = None,
    history: list[dict[str, Any]] | None = None,
) -> RunOutcome:
    """Run one investigation to a verdict, failure or cancellation; never raises for model,
    tool or budget trouble (those end as RunOutcome + a terminal event). Task cancellation
    emits a `cancelled` event and returns status "cancelled"."""
    raise NotImplementedError
