"""budo against stand-ins with each real server's context semantics (scenarios.model_servers):
the real loop, the real HTTP client and the real toolbox over the replay API, on checkout-typo
with one unfiltered 200-line log read — the read that pushed a default Ollama past num_ctx.

The stand-in model is forgetful the way a real one is: when the question is no longer in what
the server let it see, it answers something else, so a client that loses the question fails.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from agent.loop import Budgets
from agent.model import OpenAIChatModel
from budo.console import TerminalSink
from budo.evaluate import evaluate_one, render_table
from scenarios import load_scenario
from tests.agent_run import Deny, run_agent

SCENARIO = load_scenario("checkout-typo")
QUESTION = SCENARIO.question
WRONG = ("ROOT CAUSE: loadgenerator is in BackOff.\nEVIDENCE:\n- events: BackOff\n"
         "FIX: restart loadgenerator\nCONFIDENCE: low")


def golden_with_unfiltered_log() -> list[dict[str, Any]]:
    """The scenario's golden path, its log read made unfiltered (tail 200, no grep)."""
    turns = [dict(t) for t in SCENARIO.script]
    for turn in turns:
        for call in turn.get("calls") or []:
            if call["tool"] == "logs":
                call["args"] = {k: v for k, v in call["args"].items() if k != "grep"}
                call["args"]["tail"] = 200
    return turns


class Forgetful:
    """Plays ``turns`` in order, one per distinct conversation state; answers WRONG when the
    question is not among the messages the server left the model."""

    def __init__(self, turns: list[dict[str, Any]],
                 prelude: list[dict[str, Any]] | None = None) -> None:
        self.turns = turns
        self.prelude = list(prelude or [])  # served first, whatever the conversation
        self.lost: list[int] = []
        self.requests = 0

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | None:
        self.requests += 1
        if self.prelude:
            return self.prelude.pop(0)
        seen = body["messages"]
        if not any(QUESTION in str(m.get("content")) for m in seen):
            self.lost.append(self.requests)
            return {"answer": WRONG}
        step = sum(1 for m in seen if m.get("role") == "assistant" and m.get("tool_calls"))
        return self.turns[min(step, len(self.turns) - 1)]


async def investigate(replay, scripted_model, *, budgets: Budgets | None = None,
                      client: dict[str, Any] | None = None, sinks: list[Any] | None = None,
                      turns: list[dict[str, Any]] | None = None, **server_options: Any):
    cluster = await replay("checkout-typo")
    script = Forgetful(turns or golden_with_unfiltered_log())
    server = await scripted_model(script, **server_options)
    outcome, trail = await run_agent(
        cluster, server.url, QUESTION, run_id="r-servers",
        approver=Deny(None, "no human in this test"), budgets=budgets, sinks=sinks or (),
        client={"backoff": 0.001, **(client or {})}, namespace="shop")
    return outcome, trail, server, script


def assert_right_verdict(outcome) -> None:
    assert outcome.status == "succeeded", outcome.reason
    assert SCENARIO.check_verdict(outcome.verdict) == []


def assert_question_always_seen(server) -> None:
    for i, seen in enumerate(server.seen):
        assert any(QUESTION in str(m.get("content")) for m in seen), f"request {i} lost it"


# --- Done when: a default Ollama (num_ctx 4096) ----------------------------------------------


async def test_default_ollama_keeps_the_question_through_its_native_api(replay, scripted_model):
    outcome, trail, server, script = await investigate(
        replay, scripted_model, flavour="ollama", context_tokens=4096)
    assert_right_verdict(outcome)
    assert_question_always_seen(server)
    assert script.lost == []
    # Native /api/chat with num_ctx, raised to what the run needs; the /v1 default not used.
    assert all("options" in body and body["stream"] is False for body in server.requests)
    assert all(n >= 8192 for n in server.num_ctx)
    assert not trail.of("context_truncated")


# Behind a /v1-only proxy budo cannot set num_ctx. The server's context must then hold the
# system prompt and eleven tool schemas (~2.2k tokens, bench/context.py) plus an investigation:
# 8192 does, with compaction.
PROXIED = {"flavour": "ollama", "native_api": False, "context_tokens": 8192}
BIG_RESULTS = Budgets(tool_output_chars=16000)  # so one unfiltered log nearly fills 8192


async def test_ollama_behind_an_openai_only_proxy_is_compacted_to_its_context(
        replay, scripted_model):
    """With OLLAMA_CONTEXT_LENGTH and BUDO_CONTEXT_TOKENS both 8192, budo compacts instead."""
    outcome, trail, server, _ = await investigate(
        replay, scripted_model, budgets=Budgets(tool_output_chars=16000, context_tokens=8192),
        **PROXIED)
    assert_right_verdict(outcome)
    assert_question_always_seen(server)
    compacted = trail.of("context_compacted")
    assert compacted and all(e.fits for e in compacted)
    assert compacted[0].window == 8192 and compacted[0].source == "BUDO_CONTEXT_TOKENS"
    # The full log is still in the audit trail, whatever the model was sent.
    [log] = [e for e in trail.of("tool_finished") if e.tool == "logs"]
    assert len(log.output.splitlines()) > 200


async def test_silent_truncation_is_detected_reported_and_recovered(replay, scripted_model):
    """Budget left at the 32768 default against an 8192 Ollama /v1: the server drops the
    question; budo sees the prompt count fall short, says so, and asks again within 8192."""
    terminal = io.StringIO()
    outcome, trail, server, script = await investigate(
        replay, scripted_model, budgets=BIG_RESULTS, sinks=[TerminalSink(terminal, color=False)],
        **PROXIED)
    assert_right_verdict(outcome)
    [notice] = trail.of("context_truncated")
    assert notice.window == 8192 and notice.reported_tokens < notice.estimated_tokens
    assert "OLLAMA_CONTEXT_LENGTH" in notice.message
    assert script.lost  # the server really did drop it once …
    assert any(QUESTION in str(m.get("content")) for m in server.seen[-1])  # … and not after
    shown = terminal.getvalue()
    assert "silently dropped the oldest messages" in shown and "📦" in shown


# --- Done when: vLLM with a small max_model_len ----------------------------------------------


async def test_vllm_with_a_small_max_model_len_ends_in_the_right_verdict(replay, scripted_model):
    outcome, trail, _, _ = await investigate(
        replay, scripted_model, flavour="vllm", context_tokens=4096)
    assert_right_verdict(outcome)
    compacted = trail.of("context_compacted")
    assert compacted and compacted[0].source == "vLLM /v1/models max_model_len"
    assert compacted[0].window == 4096


async def test_vllm_with_a_reply_cap_keeps_room_for_it(replay, scripted_model):
    """vLLM refuses prompt + max_tokens > max_model_len: the budget reserves the cap."""
    outcome, trail, _, _ = await investigate(
        replay, scripted_model, client={"max_output_tokens": 2048}, flavour="vllm",
        context_tokens=6144)
    assert_right_verdict(outcome)
    assert trail.of("context_compacted")
    assert not [e for e in trail.of("context_compacted") if e.reason == "overflow"]
    assert all(e.after_tokens <= 6144 - 2048 for e in trail.of("context_compacted"))


# --- overflow recovery, per server -----------------------------------------------------------


SETTINGS = [("vllm", "--max-model-len"), ("llamacpp", "-c / --ctx-size"),
            ("openai", "longer context"), ("lmstudio", "in LM Studio")]


@pytest.mark.parametrize("flavour", [f for f, _ in SETTINGS])
async def test_each_servers_overflow_is_recovered_by_compacting(replay, scripted_model, flavour):
    """The client was not told the window (no discovery): the server's 400 says it."""
    outcome, trail, _, _ = await investigate(
        replay, scripted_model, budgets=BIG_RESULTS, client={"detect": False}, flavour=flavour,
        context_tokens=8192)
    assert_right_verdict(outcome)
    overflow = [e for e in trail.of("context_compacted") if e.reason == "overflow"]
    assert overflow, [e.kind for e in trail.events]
    assert overflow[0].window == 8192 and overflow[0].source == "the server's overflow error"


async def test_an_overflow_that_compaction_cannot_fix_ends_in_an_answer_without_tools(
        replay, scripted_model):
    outcome, trail, server, _ = await investigate(
        replay, scripted_model, client={"detect": False}, flavour="llamacpp",
        context_tokens=1400)
    assert outcome.status == "succeeded", outcome.reason
    assert "tools" not in server.requests[-1]
    assert any(not e.fits or e.reason == "overflow" for e in trail.of("context_compacted"))


async def test_no_answer_once_the_window_is_full_is_a_failure_naming_the_setting(
        replay, scripted_model):
    """The tools no longer fit a 1400-token vLLM, so the loop asks for the answer without
    them; a model that still gives none (it keeps calling a tool it was not offered) has
    reached no verdict: the run fails with one line naming the flag to raise."""
    outcome, trail, server, _ = await investigate(
        replay, scripted_model, flavour="vllm", context_tokens=1400,
        turns=[{"calls": [{"tool": "get_pods", "args": {"namespace": "shop"}}]}])
    assert outcome.status == "failed" and not trail.of("verdict")
    assert "tools" not in server.requests[-1]
    assert "is too small for this investigation" in outcome.reason and "\n" not in outcome.reason
    assert "1400 tokens, from vLLM" in outcome.reason and "vLLM's --max-model-len" in outcome.reason
    [failed] = trail.of("failed")
    assert failed.error_type == "ContextOverflow"


@pytest.mark.parametrize(("flavour", "setting"), SETTINGS)
async def test_an_overflow_that_nothing_fixes_fails_naming_the_setting(
        replay, scripted_model, flavour, setting):
    outcome, _, _, _ = await investigate(
        replay, scripted_model, client={"detect": False}, flavour=flavour, context_tokens=300)
    assert outcome.status == "failed"
    assert setting in outcome.reason
    assert "\n" not in outcome.reason


# --- budo eval reports what it took -----------------------------------------------------------


async def test_eval_counts_compactions_nudges_and_truncations(scripted_model):
    plan = {"say": "I will first list the pods, then read the frontend logs."}
    server = await scripted_model(Forgetful(golden_with_unfiltered_log(), prelude=[plan]),
                                  **PROXIED)
    async with OpenAIChatModel(server.url, "qwen2.5:14b", max_retries=0) as model:
        result = await evaluate_one("checkout-typo", model, BIG_RESULTS)
    assert result.passed, result.note
    assert result.nudges == 1 and result.truncations == 1 and result.compactions >= 1
    table = render_table([result], "qwen2.5:14b")
    assert "compactions" in table and "raise its context" in table


# --- the Slack thread says so too --------------------------------------------------------------


async def test_compaction_is_posted_in_the_slack_thread(slack, scripted_model, tmp_path):
    from tests.bot_harness import CHANNEL, VERDICT, FakeCluster, run_id_of, running_bot

    model = await scripted_model([
        {"calls": [{"tool": "get_pods", "args": {"namespace": "shop"}}]},
        {"calls": [{"tool": "get_logs",
                    "args": {"pod": "checkoutservice-7d9f8-abcde", "namespace": "shop"}}]},
        {"calls": [{"tool": "get_logs",
                    "args": {"pod": "frontend-1", "namespace": "shop"}}]},
        {"answer": VERDICT},
    ], flavour="ollama", native_api=False, context_tokens=2048)
    async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path,
                           context_tokens=2048) as h:
        await h.sim.slash_command("investigate checkout is failing")
        root = await h.root_message()
        run_id = run_id_of(root)
        await h.top_level("🧭 Verdict")
        await h.run_finished(run_id)
        texts = [m.text for m in slack.thread(CHANNEL, root.ts)]
        events = await h.store.events(run_id)
    notes = [t for t in texts if t.startswith("📦")]
    assert notes and "2,048-token context" in notes[0] and "audit trail" in notes[0]
    assert any(e.kind == "context_compacted" for e in events)


async def test_ollama_cache_counts_are_not_mistaken_for_truncation(replay, scripted_model):
    """Some Ollama versions count only the uncached part of the prompt in prompt_eval_count
    (ollama#16428): on the native API, where budo sets num_ctx, a small count means nothing."""
    outcome, trail, _, _ = await investigate(
        replay, scripted_model, flavour="ollama", uncached_prompt_counts=True)
    assert_right_verdict(outcome)
    assert not trail.of("context_truncated")
    replies = trail.of("model_reply")
    assert replies[-1].prompt_tokens < replies[0].prompt_tokens  # the stand-in did cut counts


async def test_uncached_counts_through_a_v1_proxy_cost_at_most_one_retry(replay, scripted_model):
    """Behind a /v1-only proxy budo cannot know the counts leave the cache out: it may take one
    for a truncation, but never keeps shrinking the window or re-asking."""
    outcome, trail, server, _ = await investigate(
        replay, scripted_model, flavour="ollama", native_api=False, context_tokens=32768,
        uncached_prompt_counts=True)
    assert_right_verdict(outcome)
    assert len(trail.of("context_truncated")) <= 1
    assert all(e.context_window >= 2048 for e in trail.of("model_request"))
    assert len(server.requests) <= len(SCENARIO.script) + 1

