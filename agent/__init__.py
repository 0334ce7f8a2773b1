"""The agent: one loop over an OpenAI-compatible chat model and a typed Kubernetes toolbox.

What other packages may use is exported here; everything else is internal to ``agent``.
The loop, its events and its seams import at once; the HTTP model client and the Kubernetes
client (httpx, kubernetes: heavy) load on first use of their names.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agent.context import notice as context_notice
from agent.events import (
    ApprovalDecided,
    ApprovalRequested,
    ContextCompacted,
    ContextTruncated,
    Event,
    ModelNudged,
    ModelReply,
    ModelRequest,
    Redacted,
    RunCancelled,
    RunFailed,
    RunInterrupted,
    RunStarted,
    Terminal,
    ToolFinished,
    ToolRequested,
    Truncated,
    VerdictReached,
    VerificationStarted,
    Verified,
)
from agent.loop import past_conversation, run_investigation
from agent.outcome import Budgets, RunOutcome, Stop
from agent.protocols import (
    ApprovalDecision,
    ApprovalRequest,
    Approver,
    ChatModel,
    Completion,
    EventSink,
    Preview,
    ToolCall,
    ToolResult,
    ToolSpec,
    Usage,
)
from agent.text import cut, cut_middle, format_args, labels, one_line, terminal_safe

if TYPE_CHECKING:
    from agent.kube import Cluster
    from agent.model import OpenAIChatModel
    from agent.tools import build_toolbox

_LAZY = {"Cluster": "agent.kube", "OpenAIChatModel": "agent.model",
         "build_toolbox": "agent.tools"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agent' has no attribute {name!r}")


__all__ = [
    "ApprovalDecided", "ApprovalDecision", "ApprovalRequest", "ApprovalRequested", "Approver",
    "Budgets", "ChatModel", "Cluster", "Completion", "ContextCompacted", "ContextTruncated",
    "Event", "EventSink", "ModelNudged", "ModelReply",
    "ModelRequest", "OpenAIChatModel", "Preview", "Redacted", "RunCancelled", "RunFailed",
    "RunInterrupted", "RunOutcome", "RunStarted", "Stop", "Terminal", "ToolCall",
    "ToolFinished", "ToolRequested", "ToolResult", "ToolSpec", "Truncated", "Usage",
    "VerdictReached", "VerificationStarted", "Verified", "build_toolbox", "context_notice",
    "cut", "cut_middle", "format_args", "labels", "one_line", "past_conversation",
    "run_investigation", "terminal_safe",
]
