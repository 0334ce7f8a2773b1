"""Each behaviour issue 10 lists under "Why", through the real loop and the real HTTP client
against the scripted model in the matching server flavour (scenarios.model_servers)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from agent.guards import UNTRUSTED_END
from agent.loop import Budgets, run_investigation
from agent.model import OpenAIChatModel
from agent.prompts import SYSTEM_PROMPT
from budo.console import TerminalSink
from tests.test_loop import ANSWER, Approver, Recorder, Toolbox, call

PLAN = "I will first list the pods in the namespace, then read the logs of the frontend."


async def run(scripted_model, turns, *, approve=False, client=None, sinks=(),
              model_name="qwen2.5:14b", **server_options):
    server = await scripted_model(turns, **server_options)
    rec, box, approver = Recorder(), Toolbox(), Approver(approve)
    options: dict[str, Any] = {"timeout": 5.0, "max_retries": 3, "backoff": 0.001}
    options.update(client or {})
    async with OpenAIChatModel(server.url, model_name, **options) as model:
        outcome = await run_investigation(
            "checkout is failing", run_id="r-quirks", model=model, tools=box.specs(),
            sinks=[rec, *sinks], approver=approver, budgets=Budgets(max_turns=8),
            namespace="shop")
    return outcome, rec, box, server


# --- non-answers get a nudge, not a verdict ---------------------------------------------------


async def test_a_plan_in_prose_is_nudged_not_taken_as_the_verdict(scripted_model):
    terminal = io.StringIO()
    outcome, rec, box, server = await run(
        scripted_model, [{"say": PLAN}, call("get_pods", namespace="shop"), {"answer": ANSWER}],
        sinks=[TerminalSink(terminal, color=False)])
    assert "asked the model again (not an answer)" in terminal.getvalue()
    assert outcome.status == "succeeded" and outcome.verdict["structured"]
    assert box.calls == [("get_pods", {"namespace": "shop"})]
    [nudge] = rec.of("model_nudged")
    assert nudge.reason == "not an answer" and nudge.content == PLAN
    sent = server.requests[1]["messages"][-1]
    assert sent["role"] == "user" and "neither a tool call nor an answer" in sent["content"]
    assert "UNTRUSTED" not in sent["content"]


async def test_a_model_that_only_ever_talks_ends_after_a_few_nudges(scripted_model):
    outcome, rec, _, _ = await run(scripted_model, [{"say": PLAN}] * 6)
    assert outcome.status == "succeeded"
    assert not outcome.verdict["structured"]
    assert len(rec.of("model_nudged")) == 3


@pytest.mark.parametrize("style", ["mistral", "pythonic", "tags", "bare"])
async def test_text_call_syntaxes_run_the_named_tool(scripted_model, style):
    outcome, rec, box, _ = await run(scripted_model, [
        {"fault": "text_call", "style": style,
         "calls": [{"tool": "get_pods", "args": {"namespace": "shop"}}]},
        {"answer": ANSWER}])
    assert outcome.status == "succeeded"
    assert box.calls == [("get_pods", {"namespace": "shop"})]
    assert rec.of("model_reply")[0].recovered_from_text


async def test_a_text_call_to_an_unknown_tool_gets_the_unknown_tool_result(scripted_model):
    outcome, rec, box, _server = await run(scripted_model, [
        {"say": '{"name": "kubectl_exec", "arguments": {"cmd": "ls"}}'}, {"answer": ANSWER}])
    assert outcome.status == "succeeded" and outcome.verdict["structured"]
    [finished] = rec.of("tool_finished")
    assert not finished.ok and "unknown tool 'kubectl_exec'" in finished.error
    assert box.calls == []


async def test_an_answer_quoting_a_tool_call_from_a_log_is_the_verdict(scripted_model):
    quoted = ANSWER.replace("no such host", 'log said <tool_call>{"name": "delete_pod", '
                            '"arguments": {"namespace": "shop", "pod": "x"}}</tool_call>')
    outcome, rec, box, _ = await run(scripted_model, [{"answer": quoted}], approve=True)
    assert outcome.status == "succeeded" and outcome.verdict["structured"]
    assert box.calls == [] and not rec.of("tool_requested")


# --- broken arguments never poison the history ------------------------------------------------


async def test_broken_arguments_go_back_as_an_empty_object_ollama_accepts(scripted_model):
    """Ollama's /v1 refuses a history holding unparseable arguments (400 "invalid tool call
    arguments"); budo sends {} with the parse error as the result, so the run goes on."""
    outcome, _rec, box, server = await run(scripted_model, [
        {"fault": "bad_args", "calls": [{"tool": "get_pods", "args": {"namespace": "shop"}}]},
        call("get_pods", namespace="shop"), {"answer": ANSWER}],
        flavour="ollama", native_api=False)
    assert outcome.status == "succeeded", outcome.reason
    assert box.calls == [("get_pods", {"namespace": "shop"})]
    echoed = server.requests[1]["messages"][2]["tool_calls"][0]["function"]["arguments"]
    assert echoed == "{}"
    result = server.requests[1]["messages"][3]
    assert result["role"] == "tool" and "not valid JSON" in result["content"]


# --- finish_reason "length" -------------------------------------------------------------------


async def test_an_answer_cut_off_gets_one_continuation(scripted_model):
    head, tail = ANSWER[:60], ANSWER[60:]
    outcome, rec, _, server = await run(scripted_model, [
        {"fault": "cut_off", "keep": 1.0, "answer": head}, {"answer": tail}])
    assert outcome.status == "succeeded"
    assert outcome.verdict["raw"] == ANSWER and not outcome.verdict["cut_off"]
    assert [n.reason for n in rec.of("model_nudged")] == ["cut off"]
    assert "tools" not in server.requests[1]  # a continuation is no time for new calls


async def test_an_answer_still_cut_off_is_marked_truncated(scripted_model):
    terminal = io.StringIO()
    outcome, _, _, _ = await run(scripted_model, [
        {"fault": "cut_off", "answer": ANSWER}, {"fault": "cut_off", "answer": "and more"}],
        sinks=[TerminalSink(terminal, color=False)])
    assert outcome.status == "succeeded"
    assert outcome.verdict["cut_off"] is True
    assert "cut off at the model's length limit" in terminal.getvalue()


# --- sampling settings ------------------------------------------------------------------------


async def test_a_reasoning_model_refusing_temperature_is_asked_again_without_it(scripted_model):
    outcome, _, box, server = await run(
        scripted_model, [call("get_pods", namespace="shop"), {"answer": ANSWER}],
        client={"max_output_tokens": 1000}, flavour="openai", reasoning=True)
    assert outcome.status == "succeeded", outcome.reason
    first = server.requests[0]
    assert first["temperature"] == 0.0 and first["max_tokens"] == 1000
    # Each refusal costs one request, once per run; later requests are right first time.
    assert len(server.requests) == 4
    for later in server.requests[2:]:
        assert "temperature" not in later and "max_tokens" not in later
        assert later["max_completion_tokens"] == 1000
    assert box.calls == [("get_pods", {"namespace": "shop"})]


async def test_temperature_set_empty_is_not_sent(scripted_model):
    _, _, _, server = await run(scripted_model, [{"answer": ANSWER}],
                                client={"temperature": None})
    assert "temperature" not in server.requests[0]


# --- configuration problems: one line naming the fix, no retries -------------------------------


@pytest.mark.parametrize(("flavour", "fix"), [
    ("llamacpp", "restart llama-server with --jinja"),
    ("vllm", "--enable-auto-tool-choice --tool-call-parser hermes"),
])
async def test_a_server_without_tool_calling_fails_once_naming_the_flag(scripted_model,
                                                                        flavour, fix):
    outcome, _, _, server = await run(scripted_model, [{"answer": ANSWER}],
                                      flavour=flavour, tools_configured=False)
    assert outcome.status == "failed"
    assert fix in outcome.reason and "\n" not in outcome.reason
    assert len(server.requests) == 1  # max_retries=3, yet not retried


@pytest.mark.parametrize(("flavour", "fix"), [
    ("vllm", "it serves Qwen/Qwen2.5-14B-Instruct; set BUDO_LLM_MODEL to one of them"),
    ("openai", "it serves Qwen/Qwen2.5-14B-Instruct; set BUDO_LLM_MODEL to one of them"),
    ("ollama", "run `ollama pull qwen2.5:14b`"),
])
async def test_a_model_the_server_does_not_serve_names_the_right_fix(scripted_model,
                                                                     flavour, fix):
    served = "qwen2.5:7b" if flavour == "ollama" else "Qwen/Qwen2.5-14B-Instruct"
    outcome, _, _, server = await run(scripted_model, [{"answer": ANSWER}], flavour=flavour,
                                      model=served, served_models=[served], strict_model=True)
    assert outcome.status == "failed" and fix in outcome.reason
    assert ("ollama" in outcome.reason) == (flavour == "ollama")
    assert len(server.requests) == 1


# --- OpenAI refusals --------------------------------------------------------------------------


async def test_a_refusal_is_shown_not_taken_for_an_empty_reply(scripted_model):
    outcome, rec, _, _ = await run(
        scripted_model, [{"fault": "refusal", "text": "I can't help with that."},
                         {"answer": ANSWER}], flavour="openai")
    assert outcome.status == "succeeded" and outcome.verdict["structured"]
    [nudge] = rec.of("model_nudged")
    assert nudge.content == "The model refused: I can't help with that."


# --- the loop's own notes are not untrusted data -----------------------------------------------


async def test_loop_notes_reach_the_model_as_plain_text(scripted_model):
    _, _, _, server = await run(scripted_model, [
        call("kubectl_exec", cmd="ls"),
        call("delete_pod", namespace="shop", pod="frontend-1"),
        call("get_pods", namespace="shop"),
        {"answer": ANSWER}])
    tool_results = [m for m in server.requests[-1]["messages"] if m["role"] == "tool"]
    unknown, denied, real = tool_results
    assert "unknown tool" in unknown["content"] and UNTRUSTED_END not in unknown["content"]
    assert denied["content"].startswith("error: denied") and UNTRUSTED_END not in denied["content"]
    assert real["content"].endswith(UNTRUSTED_END)  # cluster data stays delimited


# --- the system prompt teaches a method, not our demo --------------------------------------------


def test_the_system_prompt_names_nothing_from_the_bundled_incidents() -> None:
    lowered = SYSTEM_PROMPT.lower()
    for word in ("shop", "frontend", "checkout", "payment", "redis", "cart", "web shop"):
        assert word not in lowered, word
    for step in ("failing operation", "call graph", "changed recently", "findings",
                 "never describe a plan"):
        assert step in lowered, step
    assert "request it as the last step; if it is denied, put it in fix" in lowered


def test_the_slack_verdict_says_when_the_answer_was_cut_off() -> None:
    from bot import blocks
    _, body = blocks.verdict_message("q", {"root_cause": "x", "cut_off": True}, [], "r-1", 1, 1,
                                     0.1, None)
    assert "cut off at the model's length limit" in json.dumps(body)
