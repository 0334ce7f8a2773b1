"""Conformance: the golden checkout-typo investigation through every server flavour the
scripted model reproduces (scenarios.model_servers, sources cited there), each driving the real
loop and the real client to the right verdict, with the request shapes each server needs."""

from __future__ import annotations

import json

import pytest

from agent.kube import Cluster
from agent.loop import Budgets, run_investigation
from agent.model import OpenAIChatModel
from agent.tools import build_toolbox
from tests.agent_run import Deny, Trail
from tests.test_model_servers import SCENARIO, assert_right_verdict

SERVERS = {
    "ollama-native": {"flavour": "ollama", "context_tokens": 4096},
    "ollama-v1": {"flavour": "ollama", "native_api": False, "context_tokens": 32768},
    "vllm-hermes": {"flavour": "vllm", "context_tokens": 32768},
    "llamacpp": {"flavour": "llamacpp", "context_tokens": 16384},
    "openai": {"flavour": "openai", "model": "gpt-5-mini", "reasoning": True},
    "lmstudio": {"flavour": "lmstudio"},
}


async def golden(replay, scripted_model, options):
    cluster = await replay("checkout-typo")
    options = dict(options)
    name = options.pop("model", "qwen2.5:14b")
    server = await scripted_model(list(SCENARIO.script), model=name, **options)
    trail = Trail()
    async with OpenAIChatModel(server.url, name, max_retries=0, backoff=0.001) as model:
        outcome = await run_investigation(
            SCENARIO.question, run_id="r-conf", model=model,
            tools=build_toolbox(Cluster.from_kubeconfig(str(cluster.kubeconfig))),
            sinks=[trail], approver=Deny(None, "no human in this test"), budgets=Budgets(),
            namespace="shop")
        flavour = model.flavour
    return outcome, trail, server, flavour


@pytest.mark.parametrize("name", list(SERVERS))
async def test_every_server_flavour_reaches_the_verdict(replay, scripted_model, name):
    outcome, trail, _, flavour = await golden(replay, scripted_model, SERVERS[name])
    assert_right_verdict(outcome)
    assert flavour == {"ollama-native": "ollama", "ollama-v1": "unknown",
                       "vllm-hermes": "vllm", "llamacpp": "llamacpp", "openai": "openai",
                       "lmstudio": "lmstudio"}[name]
    assert not trail.of("context_truncated") and not trail.of("model_nudged")
    # Every call works, except the fix the golden path requests and nobody approves (Deny).
    assert all(e.ok or (e.error or "").startswith("denied") for e in trail.of("tool_finished"))


async def test_ollama_native_requests_have_its_shape(replay, scripted_model):
    _, _, server, _ = await golden(replay, scripted_model, SERVERS["ollama-native"])
    for body in server.requests:  # ollama api/types.go ChatRequest
        assert body["stream"] is False and "tool_choice" not in body
        assert body["options"]["num_ctx"] >= 8192 and body["options"]["temperature"] == 0.0
    last = server.requests[-1]["messages"]
    calls = [m for m in last if m["role"] == "assistant" and m.get("tool_calls")]
    assert all(isinstance(c["function"]["arguments"], dict) for m in calls
               for c in m["tool_calls"])
    assert {m.get("tool_name") for m in last if m["role"] == "tool"} >= {
        "get_pods", "get_events", "logs", "describe"}


async def test_openai_dialect_requests_carry_tool_choice_and_string_arguments(
        replay, scripted_model):
    for name in ("ollama-v1", "vllm-hermes", "llamacpp"):
        _, _, server, _ = await golden(replay, scripted_model, SERVERS[name])
        with_tools = [b for b in server.requests if b.get("tools")]
        assert with_tools and all(b["tool_choice"] == "auto" for b in with_tools)
        for message in server.requests[-1]["messages"]:
            if message["role"] == "assistant":
                # vLLM answered content null beside its calls; we never send null back
                assert message["content"] is not None
                for call in message.get("tool_calls") or []:
                    json.loads(call["function"]["arguments"])
                    assert call["id"]


@pytest.mark.parametrize(("name", "window"), [
    ("ollama-native", (32768, "Ollama /api/show")),
    ("vllm-hermes", (32768, "vLLM /v1/models max_model_len")),
    ("llamacpp", (16384, "llama.cpp /props n_ctx")),
    ("openai", None), ("lmstudio", None), ("ollama-v1", None),
])
async def test_each_server_publishes_its_window_where_budo_reads_it(scripted_model, name, window):
    options = dict(SERVERS[name])
    model_name = options.pop("model", "qwen2.5:14b")
    server = await scripted_model([], model=model_name, **options)
    async with OpenAIChatModel(server.url, model_name, context_tokens=65536) as model:
        assert await model.context_window() == window


async def test_ollama_window_is_capped_by_budo_context_tokens(scripted_model):
    server = await scripted_model([], flavour="ollama", model_context_length=131072)
    async with OpenAIChatModel(server.url, "qwen2.5:14b", context_tokens=16384) as model:
        assert await model.context_window() == (
            16384, "BUDO_CONTEXT_TOKENS (model trained for 131072)")
