"""The seams between budo's parts: small Protocols and the plain data that crosses them.

Fakes plug in at the wire (a scripted HTTP model server, a replay Kubernetes API, a Slack
emulator), so these Protocols exist for typing and for the rare in-process double, not for
monkeypatching.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from agent.events import Event
from agent.text import format_args

# A Kubernetes object as the API returned it (parsed JSON), read but never changed by the agent.
Obj = Mapping[str, Any]

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
class Preview:
    """What a mutating call would do, learnt before anyone is asked (e.g. a server-side dry
    run): the card shows it, and the approval is bound to it. ``binding`` is what execution
    must still find true (a uid, a resourceVersion); the tool's ``func`` receives this Preview
    as ``approved=`` and refuses when the object no longer matches."""

    changes: list[str] = field(default_factory=list)   # "env X: old → new", "replicas 2 → 4"
    current: str = ""                                   # the object's state now, one line
    binding: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verification:
    """What a mutating call's verifier observed after it ran (e.g. a rollout watched until its
    new pods were Ready, or its own deadline passed). ``summary`` is one line for humans
    ("rolled out: 2/2 ready in 4.1 s"); ``details`` are facts about what is not right."""

    ok: bool
    summary: str
    details: list[str] = field(default_factory=list)
    duration_s: float = 0.0


ArgsCheck = Callable[[dict[str, Any]], dict[str, Any]]
PreviewFunc = Callable[..., Awaitable["Preview | ToolResult"]]
VerifyFunc = Callable[..., Awaitable[Verification]]


@dataclass(frozen=True)
class ToolSpec:
    """A tool: a plain async function with its JSON schema beside it.

    The loop calls, in order: ``check(args)`` (validate and normalise; raises
    ``budo.errors.ToolArgumentError`` — no API call, no card), then for a mutating tool
    ``preview(**args)`` (a ``ToolResult`` here means refused: it goes back to the model and no
    card is posted), the approval, and ``func(**args)`` (``func(**args, approved=preview)``
    when there was a preview). When ``func`` succeeded and the tool has ``verify``, the loop
    then awaits ``verify(args, preview, timeout)`` under its own budget (BUDO_VERIFY_TIMEOUT,
    not the per-tool one); the outcome is an event and part of the result the model reads."""

    name: str
    description: str
    parameters: dict[str, Any]   # JSON Schema of the arguments object
    func: ToolFunc
    mutating: bool = False
    check: ArgsCheck | None = None
    preview: PreviewFunc | None = None
    summarise: Callable[[dict[str, Any]], str] | None = None  # one line for humans
    verify: VerifyFunc | None = None

    def describe_call(self, args: dict[str, Any]) -> str:
        """One line for humans: the tool's own summary, else ``name(k=v, …)``."""
        if self.summarise is not None:
            return self.summarise(args)
        return f"{self.name}({format_args(args)})"

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
    preview: Preview | None = None  # the dry run's changes, shown on the card


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
