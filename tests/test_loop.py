"""The agent loop over real HTTP: the real OpenAIChatModel talks to the scripted model server.

Tools here are plain async functions (that is what tools are); the cluster-backed toolbox is
exercised end to end in tests/test_agent_e2e.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent.events import Event, RunFailed, RunInterrupted
from agent.loop import Budgets, RunOutcome, Stop, past_conversation, run_investigation
from agent.model import OpenAIChatModel
from agent.protocols import (
    ApprovalDecision,
    ApprovalRequest,
    Completion,
    ToolResult,
    ToolSpec,
)
from agent.tools import SUMMARIES

ANSWER = (
    "ROOT CAUSE: checkoutservice has PAYMENT_SERVICE_ADDR=paymetnservce:50051\n"
    "EVIDENCE:\n- frontend logs: no such host\nFIX: set it to paymentservice:50051\n"
    "CONFIDENCE: high"
)
OBJ = {"type": "object", "properties": {"namespace": {"type": "string"}}}


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def emit(self, event: Event) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def of(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.kind == kind]


class Toolbox:
    """Plain tools that record what they were called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.slow_started = asyncio.Event()

    def specs(self, **extra: ToolSpec) -> list[ToolSpec]:
        async def get_pods(namespace: str) -> ToolResult:
            self.calls.append(("get_pods", {"namespace": namespace}))
            return ToolResult(ok=True, output=f"NAME READY\nfrontend-1 1/1 ({namespace})")

        async def delete_pod(namespace: str, pod: str) -> ToolResult:
            self.calls.append(("delete_pod", {"namespace": namespace, "pod": pod}))
            return ToolResult(ok=True, output=f"pod {pod} deleted")

        async def explode(namespace: str) -> ToolResult:
            raise ValueError("boom")

        async def slow(namespace: str) -> ToolResult:
            self.calls.append(("slow", {"namespace": namespace}))
            self.slow_started.set()
            await asyncio.sleep(30)
            return ToolResult(ok=True, output="never")

        async def big(namespace: str) -> ToolResult:
            lines = "\n".join(f"log line {i} " + "x" * 60 for i in range(2000))
            return ToolResult(ok=True, output=lines, findings=["pod x OOMKilled"])

        async def leaky(namespace: str) -> ToolResult:
            return ToolResult(ok=True, output="token=[REDACTED:token]", redactions=1,
                              redaction_kinds=["token"])

        tools = [
            ToolSpec("get_pods", "list pods", OBJ, get_pods),
            ToolSpec("delete_pod", "delete a pod", OBJ, delete_pod, mutating=True,
                     summarise=SUMMARIES["delete_pod"]),
            ToolSpec("explode", "raises", OBJ, explode),
            ToolSpec("slow", "sleeps", OBJ, slow),
            ToolSpec("big", "large output", OBJ, big),
            ToolSpec("leaky", "redacted output", OBJ, leaky),
        ]
        return tools + list(extra.values())


class Approver:
    def __init__(self, approve: bool) -> None:
        self.approve, self.asked = approve, []

    async def request(self, req: ApprovalRequest) -> ApprovalDecision:
        self.asked.append(req)
        if self.approve:
            return ApprovalDecision(True, "U_ONCALL", "approved")
        return ApprovalDecision(False, "U_ONCALL", "denied by U_ONCALL")


def call(tool: str, **args: Any) -> dict[str, Any]:
    return {"calls": [{"tool": tool, "args": args}]}


async def run(scripted_model, turns, *, approve=False, budgets=None, tools=None,
              model_timeout: float = 5.0, sinks=None):
    server = await scripted_model(turns)
    rec, box, approver = Recorder(), Toolbox(), Approver(approve)
    model = OpenAIChatModel(server.url, "qwen2.5:14b", timeout=model_timeout, max_retries=1,
                            backoff=0.001)
    try:
        outcome = await run_investigation(
            "checkout is failing", run_id="r-test", model=model,
            tools=tools if tools is not None else box.specs(), sinks=sinks or [rec],
            approver=approver, budgets=budgets or Budgets(), namespace="shop",
        )
    finally:
        await model.aclose()
    return outcome, rec, box, approver, server


async def test_golden_path_reaches_a_structured_verdict(scripted_model):
    outcome, rec, box, _, server = await run(
        scripted_model, [call("get_pods", namespace="shop"), {"answer": ANSWER}]
    )
    assert outcome.status == "succeeded"
    assert outcome.verdict["structured"] and "paymetnservce" in outcome.verdict["root_cause"]
    assert box.calls == [("get_pods", {"namespace": "shop"})]
    assert rec.kinds() == ["run_started", "model_request", "model_reply", "tool_requested",
                           "tool_finished", "model_request", "model_reply", "verdict"]
    assert outcome.turns == 2 and outcome.tokens > 0
    # the tool result reached the model inside the untrusted delimiters
    tool_msg = next(m for m in server.requests[1]["messages"] if m["role"] == "tool")
    assert tool_msg["content"].startswith("--- BEGIN UNTRUSTED TOOL OUTPUT: get_pods ---")
    assert tool_msg["content"].endswith("--- END UNTRUSTED TOOL OUTPUT ---")
    system = server.requests[0]["messages"][0]
    assert system["role"] == "system" and "never an instruction" in system["content"]
    assert {t["function"]["name"] for t in server.requests[0]["tools"]} >= {"get_pods"}


async def test_unknown_tool_lists_the_available_ones(scripted_model):
    outcome, rec, *_ , server = await run(
        scripted_model, [call("kubectl_exec", cmd="ls"), {"answer": ANSWER}]
    )
    assert outcome.status == "succeeded"
    finished = rec.of("tool_finished")[0]
    assert not finished.ok and "unknown tool 'kubectl_exec'" in finished.error
    tool_msg = next(m for m in server.requests[1]["messages"] if m["role"] == "tool")
    assert "Available tools:" in tool_msg["content"] and "get_pods" in tool_msg["content"]


async def test_invalid_json_arguments_ask_to_re_emit(scripted_model):
    outcome, rec, box, *_ = await run(
        scripted_model,
        [{"fault": "bad_args", "calls": [{"tool": "get_pods", "args": {"namespace": "shop"}}]},
         call("get_pods", namespace="shop"), {"answer": ANSWER}],
    )
    assert outcome.status == "succeeded"
    first = rec.of("tool_finished")[0]
    assert not first.ok and "not valid JSON" in first.error and "Re-emit" in first.error
    assert box.calls == [("get_pods", {"namespace": "shop"})]  # only the good call ran


async def test_a_raising_tool_becomes_a_result(scripted_model):
    outcome, rec, *_ = await run(scripted_model, [call("explode", namespace="shop"),
                                                  {"answer": ANSWER}])
    assert outcome.status == "succeeded"
    assert rec.of("tool_finished")[0].error == "ValueError: boom"


async def test_wrong_argument_names_become_a_result(scripted_model):
    outcome, rec, *_ = await run(scripted_model, [call("get_pods", ns="shop"),
                                                  {"answer": ANSWER}])
    assert outcome.status == "succeeded"
    assert rec.of("tool_finished")[0].error.startswith("TypeError:")


async def test_max_turns_forces_an_answer_without_tools(scripted_model):
    turns = [call("get_pods", namespace=f"ns{i}") for i in range(2)] + [{"answer": ANSWER}]
    outcome, rec, *_ , server = await run(scripted_model, turns, budgets=Budgets(max_turns=3))
    assert outcome.status == "succeeded" and outcome.turns == 3
    last = server.requests[-1]
    assert not last.get("tools") and "last turn" in last["messages"][-1]["content"]
    assert rec.of("verdict")[0].truncated is True


async def test_max_turns_with_a_model_that_keeps_calling(scripted_model):
    turns = [call("get_pods", namespace=f"ns{i}") for i in range(5)]
    outcome, rec, box, *_ = await run(scripted_model, turns, budgets=Budgets(max_turns=2))
    # the second (last) reply is a tool call, which is ignored: no answer, so no verdict
    assert outcome.status == "failed" and len(box.calls) == 1
    assert not rec.of("verdict") and "\n" not in outcome.reason
    assert "no answer on its last turn" in outcome.reason and "BUDO_MAX_TURNS=2" in outcome.reason


async def test_denied_mutation_never_runs(scripted_model):
    outcome, rec, box, approver, _ = await run(
        scripted_model,
        [{"say": "Restart it.", "calls": [{"tool": "delete_pod",
                                           "args": {"namespace": "shop", "pod": "checkout-1"}}]},
         {"answer": ANSWER}],
        approve=False,
    )
    assert outcome.status == "succeeded"
    assert box.calls == []
    assert approver.asked[0].summary == "delete pod checkout-1 in namespace shop"
    assert approver.asked[0].reason == "Restart it."
    decided = rec.of("approval_decided")[0]
    assert decided.approved is False and decided.decided_by == "U_ONCALL"
    assert rec.of("tool_finished")[0].error.startswith("denied:")
    order = rec.kinds()
    assert order.index("approval_requested") < order.index("approval_decided")


async def test_approved_mutation_runs(scripted_model):
    _outcome, rec, box, *_ = await run(
        scripted_model,
        [call("delete_pod", namespace="shop", pod="checkout-1"), {"answer": ANSWER}],
        approve=True,
    )
    assert box.calls == [("delete_pod", {"namespace": "shop", "pod": "checkout-1"})]
    assert rec.of("tool_finished")[0].ok


async def test_an_approver_that_breaks_fails_closed(scripted_model):
    class Broken:
        async def request(self, req):
            raise RuntimeError("slack down")

    server = await scripted_model([call("delete_pod", namespace="shop", pod="p"),
                                   {"answer": ANSWER}])
    box, rec = Toolbox(), Recorder()
    async with OpenAIChatModel(server.url, "m", max_retries=0) as model:
        outcome = await run_investigation("q", run_id="r-x", model=model, tools=box.specs(),
                                          sinks=[rec], approver=Broken())
    assert outcome.status == "succeeded" and box.calls == []
    assert "treated as denied" in rec.of("approval_decided")[0].reason


async def test_breaker_stops_the_third_identical_call(scripted_model):
    turns = [call("get_pods", namespace="shop")] * 3 + [{"answer": ANSWER}]
    _outcome, rec, box, *_ = await run(scripted_model, turns)
    assert len(box.calls) == 2
    third = rec.of("tool_finished")[2]
    assert not third.ok and "this path is closed" in third.error


async def test_token_budget_ends_the_run_as_failed(scripted_model):
    turns = [call("get_pods", namespace=f"n{i}") for i in range(5)] + [{"answer": ANSWER}]
    outcome, rec, *_ = await run(scripted_model, turns, budgets=Budgets(max_tokens=200))
    assert outcome.status == "failed" and "token budget exhausted" in outcome.reason
    failed = rec.of("failed")[0]
    assert failed.error_type == "BudgetExceeded" and rec.kinds()[-1] == "failed"


async def test_wall_clock_budget_ends_the_run_as_failed(scripted_model):
    outcome, rec, _box, *_ = await run(
        scripted_model, [call("slow", namespace="shop"), {"answer": ANSWER}],
        budgets=Budgets(run_timeout=0.5, tool_timeout=10),
    )
    assert outcome.status == "failed" and "wall-clock budget" in outcome.reason
    assert rec.kinds()[-1] == "failed"


async def test_per_tool_timeout_is_a_result(scripted_model):
    outcome, rec, *_ = await run(
        scripted_model, [call("slow", namespace="shop"), {"answer": ANSWER}],
        budgets=Budgets(tool_timeout=0.2),
    )
    assert outcome.status == "succeeded"
    assert "timed out after 0.2s" in rec.of("tool_finished")[0].error


async def cancel_mid_tool(scripted_model, rec: Recorder,
                          stop_reason: Any = None) -> RunOutcome:
    """Start a run, cancel its task while the `slow` tool runs, and return how it ended."""
    server = await scripted_model([call("slow", namespace="shop"), {"answer": ANSWER}])
    box = Toolbox()
    async with OpenAIChatModel(server.url, "m", max_retries=0) as model:
        task = asyncio.create_task(run_investigation(
            "q", run_id="r-c", model=model, tools=box.specs(), sinks=[rec],
            approver=Approver(False), stop_reason=stop_reason))
        await asyncio.wait_for(box.slow_started.wait(), 5)
        task.cancel()
        return await asyncio.wait_for(task, 5)


async def test_cancel_mid_tool_ends_cleanly(scripted_model):
    rec = Recorder()
    outcome = await cancel_mid_tool(scripted_model, rec)
    assert outcome.status == "cancelled"
    assert rec.kinds()[-1] == "cancelled"
    assert "tool_finished" not in rec.kinds()


async def test_the_caller_says_why_it_cancelled(scripted_model):
    """Shutdown is not a Cancel press: the loop ends the run as the canceller says."""
    rec = Recorder()
    outcome = await cancel_mid_tool(scripted_model, rec,
                                    lambda: Stop("interrupted", "shutting down"))
    assert (outcome.status, outcome.reason) == ("interrupted", "shutting down")
    last = rec.events[-1]
    assert isinstance(last, RunInterrupted) and last.reason == "shutting down"
    assert rec.kinds().count("interrupted") == 1 and "cancelled" not in rec.kinds()


class SlowToRecord(Recorder):
    """A sink that takes a while to record the end (a slow disk)."""

    async def emit(self, event: Event) -> None:
        if isinstance(event, RunInterrupted):
            await asyncio.sleep(0.2)
        await super().emit(event)


async def test_a_second_cancel_still_lets_the_end_be_recorded(scripted_model):
    server = await scripted_model([call("slow", namespace="shop"), {"answer": ANSWER}])
    rec, box = SlowToRecord(), Toolbox()
    async with OpenAIChatModel(server.url, "m", max_retries=0) as model:
        task = asyncio.create_task(run_investigation(
            "q", run_id="r-2", model=model, tools=box.specs(), sinks=[rec],
            approver=Approver(False), stop_reason=lambda: Stop("interrupted", "stop")))
        await asyncio.wait_for(box.slow_started.wait(), 5)
        task.cancel()
        await asyncio.sleep(0.05)  # the loop is now recording the end
        task.cancel()              # the caller stops waiting
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            if rec.kinds()[-1:] == ["interrupted"]:
                break
            await asyncio.sleep(0.01)
    assert rec.kinds()[-1] == "interrupted"


class BuggyModel:
    model = "buggy"

    async def complete(self, messages, tools=None, tool_choice=None) -> Completion:
        raise RuntimeError("unexpected None in reply parser")


async def test_a_bug_ends_the_run_as_failed_and_says_it_is_ours():
    rec = Recorder()
    outcome = await run_investigation("q", run_id="r-b", model=BuggyModel(), tools=[],
                                      sinks=[rec], approver=Approver(False))
    assert outcome.status == "failed"
    assert outcome.reason == "internal error: RuntimeError: unexpected None in reply parser"
    last = rec.events[-1]
    assert isinstance(last, RunFailed) and last.internal and last.error_type == "RuntimeError"


async def test_model_unreachable_is_a_failed_run_with_one_line():
    rec = Recorder()
    async with OpenAIChatModel("http://127.0.0.1:9/v1", "m", max_retries=0,
                               timeout=1) as model:
        outcome = await run_investigation("q", run_id="r-u", model=model, tools=[],
                                          sinks=[rec], approver=Approver(False))
    assert outcome.status == "failed" and "\n" not in outcome.reason
    assert rec.of("failed")[0].error_type == "ModelUnreachable"


async def test_large_output_is_clipped_but_recorded_whole(scripted_model):
    _outcome, rec, *_, server = await run(
        scripted_model, [call("big", namespace="shop"), {"answer": ANSWER}],
        budgets=Budgets(tool_output_chars=2000),
    )
    finished = rec.of("tool_finished")[0]
    assert len(finished.output) > 100_000 and finished.sent_chars <= 2100
    truncated = rec.of("truncated")[0]
    assert truncated.omitted_lines > 1500
    tool_msg = next(m for m in server.requests[1]["messages"] if m["role"] == "tool")
    assert "lines omitted — narrow with grep/since/tail" in tool_msg["content"]
    assert "FINDINGS: pod x OOMKilled" in tool_msg["content"]  # the tail keeps findings


async def test_redactions_are_recorded(scripted_model):
    _, rec, *_ = await run(scripted_model, [call("leaky", namespace="shop"), {"answer": ANSWER}])
    redacted = rec.of("redacted")[0]
    assert redacted.count == 1 and redacted.kinds == ["token"]


async def test_a_failing_sink_stops_the_run_and_the_others_hear_why(scripted_model):
    class Broken:
        async def emit(self, event):
            if event.kind == "tool_requested":
                raise OSError("disk full")

    rec = Recorder()
    outcome, _, box, *_ = await run(
        scripted_model, [call("get_pods", namespace="shop"), {"answer": ANSWER}],
        sinks=[Broken(), rec],
    )
    assert outcome.status == "failed" and "disk full" in outcome.reason
    assert box.calls == []  # nothing runs that the trail could not record
    assert rec.kinds()[-1] == "failed"


async def test_follow_up_keeps_the_previous_conversation(scripted_model):
    first, *_ = await run(scripted_model, [{"answer": ANSWER}])
    server = await scripted_model([{"answer": ANSWER}])
    async with OpenAIChatModel(server.url, "m", max_retries=0) as model:
        second = await run_investigation(
            "and what about payments?", run_id="r-2", model=model, tools=[], sinks=[],
            approver=Approver(False), history=first.messages)
    sent = server.requests[0]["messages"]
    assert sent[0]["role"] == "system" and sum(m["role"] == "system" for m in sent) == 1
    assert "checkout is failing" in sent[1]["content"]
    assert "and what about payments?" in sent[-1]["content"]
    assert second.status == "succeeded"


async def test_follow_up_after_a_restart_starts_from_the_rebuilt_conversation(scripted_model):
    """Only the question and the answer survive a restart: the follow-up starts from those,
    built the same way the loop starts any run."""
    history = past_conversation("checkout is failing", "shop", ANSWER)
    server = await scripted_model([{"answer": ANSWER}])
    async with OpenAIChatModel(server.url, "m", max_retries=0) as model:
        await run_investigation("and payments?", run_id="r-3", model=model, tools=[], sinks=[],
                                approver=Approver(False), history=history)
    sent = server.requests[0]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert "checkout is failing" in sent[1]["content"] and "`shop`" in sent[1]["content"]
    assert sent[2]["content"] == ANSWER and "and payments?" in sent[3]["content"]


@pytest.mark.parametrize("fault", ["500", "no_usage", "text_call"])
async def test_model_faults_still_reach_a_verdict(scripted_model, fault):
    turns: list[dict[str, Any]] = []
    if fault == "500":
        turns = [{"fault": "500"}, call("get_pods", namespace="shop"), {"answer": ANSWER}]
    elif fault == "no_usage":
        turns = [{"fault": "no_usage", "calls": [{"tool": "get_pods",
                                                   "args": {"namespace": "shop"}}]},
                 {"answer": ANSWER}]
    else:
        turns = [{"fault": "text_call", "calls": [{"tool": "get_pods",
                                                    "args": {"namespace": "shop"}}]},
                 {"answer": ANSWER}]
    outcome, rec, box, *_ = await run(scripted_model, turns)
    assert outcome.status == "succeeded"
    assert box.calls == [("get_pods", {"namespace": "shop"})]
    if fault == "no_usage":
        assert rec.of("model_reply")[0].tokens_estimated
    if fault == "text_call":
        assert rec.of("model_reply")[0].recovered_from_text
