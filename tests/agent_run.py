"""The whole agent over real wires, for tests: our HTTP model client against a scripted model
server, the real toolbox and kubernetes client against a replay API server, and a ``Trail``
sink that keeps every event. Shared by the end-to-end, model-server, action and gate-fuzz
tests, so each says only what differs: question, approver, budgets, client options."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

from agent.kube import Cluster
from agent.loop import Budgets, run_investigation
from agent.model import OpenAIChatModel
from agent.outcome import RunOutcome
from agent.protocols import ApprovalDecision, ApprovalRequest, Approver
from agent.tools import build_toolbox

MODEL = "qwen2.5:14b"


FUZZ_ANSWER = {"answer": "ROOT CAUSE: fuzz\nEVIDENCE:\n- none\nFIX: none"}


def batched_turns(calls: Sequence[dict[str, Any]], per_turn: int = 50) -> list[dict[str, Any]]:
    """Scripted-model turns playing ``calls`` (``{"tool", "args"}``; args as given when a
    string, else JSON) ``per_turn`` at a time, then a final answer."""
    turns: list[dict[str, Any]] = [
        {"calls": [{"tool": c["tool"], "args": c["args"] if isinstance(c["args"], str)
                    else json.dumps(c["args"])} for c in calls[i:i + per_turn]]}
        for i in range(0, len(calls), per_turn)]
    return [*turns, FUZZ_ANSWER]


class Trail:
    """An event sink that keeps everything, in order."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    async def emit(self, event: Any) -> None:
        self.events.append(event)

    def of(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.kind == kind]


class Deny:
    """On-call who refuses every card."""

    def __init__(self, user: str | None = "U_ONCALL", reason: str = "denied by U_ONCALL") -> None:
        self.user, self.reason = user, reason

    async def request(self, req: ApprovalRequest) -> ApprovalDecision:
        return ApprovalDecision(False, self.user, self.reason)


class CoinFlipOnCall:
    """On-call who approves about half of what it is shown, at random (seeded)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.shown: list[ApprovalRequest] = []
        self.approved: list[ApprovalRequest] = []

    async def request(self, req: ApprovalRequest) -> ApprovalDecision:
        self.shown.append(req)
        if self.rng.random() < 0.5:
            self.approved.append(req)
            return ApprovalDecision(True, "U_ONCALL", "approved")
        return ApprovalDecision(False, "U_ONCALL", "denied")


async def run_agent(cluster_server: Any, model_url: str, question: str, *, run_id: str,
                    approver: Approver, namespace: str | None = None,
                    budgets: Budgets | None = None, sinks: Sequence[Any] = (),
                    namespaces: tuple[str, ...] = (), client: dict[str, Any] | None = None,
                    toolbox: dict[str, Any] | None = None) -> tuple[RunOutcome, Trail]:
    """One investigation of ``question``: ``client`` options go to OpenAIChatModel (no retries
    unless said), ``toolbox`` options to build_toolbox, ``namespaces`` is the cluster's scope."""
    trail = Trail()
    cluster = Cluster.from_kubeconfig(str(cluster_server.kubeconfig), namespaces=namespaces)
    try:
        async with OpenAIChatModel(model_url, MODEL, **{"max_retries": 0, **(client or {})}
                                   ) as model:
            outcome = await run_investigation(
                question, run_id=run_id, model=model,
                tools=build_toolbox(cluster, **(toolbox or {})), sinks=[trail, *sinks],
                approver=approver, budgets=budgets or Budgets(), namespace=namespace)
    finally:
        cluster.close()
    return outcome, trail
