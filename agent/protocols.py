"""The seams between budo's parts: small Protocols and the plain data that crosses them.

Fakes plug in at the wire (a scripted HTTP model server, a replay Kubernetes API, a Slack
emulator), so these Protocols exist for typing and for the rare in-process double, not for
monkeypatching.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from agent.events import Event

# --- the chat model -----------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    """One tool call as the model asked for it. ``arguments`` is None when the raw text could
    not be parsed even leniently; ``parse_error`` then says why (the loop asks to re-emit)."""

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str = ""
    parse_error: str | None = None


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False  # True when the server sent no `usage` and we counted chars/4

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Completion:
    """One assistant turn. ``content`` is the text with any recovered tool-call markup removed;
    ``recovered_from_text`` says the calls came from text rather than ``tool_calls``."""

    content: str
    tool_calls: list[ToolCall]
    usage: Usage
    finish_reason: str | None = None
    recovered_from_text: bool = False


class ChatModel(Protocol):
    """An OpenAI-compatible chat endpoint. Raises ``budo.errors.ModelError`` subclasses."""

    model: str

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | None = None,
    ) -> Completion: ...


# --- tools ----------------------------------------------------------------------------------


@dataclass
class ToolResult:
    """The one envelope every tool returns. ``output`` is what the model reads (already
    redacted when it leaves the toolbox); ``error`` is set when ``ok`` is False."""

    ok: bool
    output: str = ""
    error: str | None = None
    findings: list[str] = field(default_factory=list)
    redactions: int = 0
    redaction_kinds: list[str] = field(default_factory=list)

    @classmethod
    def failure(cls, error: str) -> ToolResult:
        return cls(ok=False, output="", error=error)

    def text(self) -> str:
        """What the model sees: output, then FINDINGS lines, or the error."""
        if not self.ok:
            return f"error: {self.error}"
        if not self.findings:
            return self.output
        lines = "\n".join(f"FINDINGS: {f}" for f in self.findings)
        return f"{self.output.rstrip()}\n\n{lines}" if self.output else lines


ToolFunc = Callable[..., Awaitable[ToolResult]]


@dataclass(frozen=True)
class ToolSpec:
    """A tool: a plain async function with its JSON schema beside it."""

    name: str
    description: str
    parameters: dict[str, Any]   # JSON Schema of the arguments object
    func: ToolFunc
    mutating: bool = False

    def schema(self) -> dict[str, Any]:
        """The OpenAI `tools` entry."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


# --- approvals ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalRequest:
    run_id: str
    call_id: str
    tool: str
    args: dict[str, Any]
    summary: str   # "delete pod checkoutservice-… in namespace shop"
    reason: str    # the model's own words this turn, may be empty


@dataclass(frozen=True)
class ApprovalDecision:
    approved: bool
    decided_by: str | None
    reason: str    # "approved", "denied", "expired", "no TTY: denied", ...


class Approver(Protocol):
    """Asks a human. Must return (never raise) a decision; a timeout is a denial."""

    async def request(self, req: ApprovalRequest) -> ApprovalDecision: ...


# --- sinks ------------------------------------------------------------------------------------


@runtime_checkable
class EventSink(Protocol):
    """Receives every event in order. The loop awaits ``emit`` before its next step."""

    async def emit(self, event: Event) -> None: ...
