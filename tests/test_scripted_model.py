"""The scripted model server on its own: wire shape, recording, faults, script validation.
Driven with a plain httpx client so these tests pin the server, not our model client."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
import yaml

from budo.errors import ScenarioError
from scenarios.model_servers import prompt_tokens
from scenarios.scripted_model import EXHAUSTED, ScriptedModelServer, ScriptTurn, parse_turns

BODY: dict[str, Any] = {
    "model": "qwen2.5:14b",
    "messages": [{"role": "user", "content": "why is checkout failing?"}],
    "tools": [{"type": "function", "function": {"name": "get_pods", "parameters": {}}}],
    "tool_choice": "auto",
}


async def _post(server: ScriptedModelServer, body: dict[str, Any] = BODY) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(
            f"{server.url}/chat/completions", content=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )


async def test_tool_call_reply_has_the_openai_shape(scripted_model) -> None:
    server = await scripted_model([
        {"say": "Looking.", "calls": [{"tool": "get_pods", "args": {"namespace": "shop"}}]},
    ])
    response = await _post(server)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"] and isinstance(body["created"], int)
    assert body["model"] == "qwen2.5:14b"
    [choice] = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["role"] == "assistant" and message["content"] == "Looking."
    [call] = message["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"]["name"] == "get_pods"
    assert json.loads(call["function"]["arguments"]) == {"namespace": "shop"}
    usage = body["usage"]
    # counted like a tokenizer would (scenarios.model_servers.count_tokens), not chars/4
    assert usage["prompt_tokens"] == prompt_tokens(BODY["messages"], BODY.get("tools"))
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_answer_then_exhausted_and_requests_recorded(scripted_model) -> None:
    server = await scripted_model([{"answer": "ROOT CAUSE: redis"}])
    first, second = (await _post(server)).json(), (await _post(server)).json()
    assert first["choices"][0]["message"]["content"] == "ROOT CAUSE: redis"
    assert first["choices"][0]["finish_reason"] == "stop"
    assert "tool_calls" not in first["choices"][0]["message"]
    assert second["choices"][0]["message"]["content"] == EXHAUSTED
    assert server.requests == [BODY, BODY]
    assert server.remaining == 0


async def test_models_endpoint_lists_the_model(scripted_model) -> None:
    server = await scripted_model([], model="llama3.1:8b")
    async with httpx.AsyncClient() as http:
        listing = (await http.get(f"{server.url}/models")).json()
    assert [m["id"] for m in listing["data"]] == ["llama3.1:8b"]
    assert server.model_list_requests == 1


async def test_http_faults_status_headers_and_times(scripted_model) -> None:
    server = await scripted_model([
        {"fault": 500, "status": 503, "times": 2},
        {"fault": "429", "retry_after": 7},
        {"fault": "model_not_found"},
        {"answer": "finally"},
    ])
    statuses = []
    for _ in range(4):
        statuses.append(await _post(server))
    assert [r.status_code for r in statuses[:2]] == [503, 503]
    assert statuses[2].status_code == 429 and statuses[2].headers["Retry-After"] == "7"
    # the last of the four is the model-not-found 404 in Ollama's wording
    assert statuses[3].status_code == 404
    assert statuses[3].json()["error"]["message"] == (
        'model "qwen2.5:14b" not found, try pulling it first'
    )
    assert (await _post(server)).json()["choices"][0]["message"]["content"] == "finally"


async def test_stall_holds_the_request_and_stop_releases_it(scripted_model) -> None:
    server = await scripted_model([{"fault": "stall", "seconds": 30}])
    pending = asyncio.create_task(_post(server))
    with pytest.raises(TimeoutError):  # held, not answered
        await asyncio.wait_for(asyncio.shield(pending), timeout=0.3)
    assert len(server.requests) == 1
    started = time.monotonic()
    await server.stop()
    assert time.monotonic() - started < 3
    response = await pending
    assert response.status_code == 504


async def test_short_stall_answers_504_after_the_wait(scripted_model) -> None:
    server = await scripted_model([{"fault": "stall", "seconds": 0.2}, {"answer": "ok"}])
    started = time.monotonic()
    assert (await _post(server)).status_code == 504
    assert time.monotonic() - started >= 0.2


async def test_modifying_fault_without_content_wraps_the_next_turn(scripted_model) -> None:
    server = await scripted_model([
        {"fault": "bad_args"},
        {"calls": [{"tool": "get_pods", "args": {"namespace": "shop"}}]},
        {"calls": [{"tool": "get_pods", "args": {"namespace": "shop"}}]},
    ])
    broken = (await _post(server)).json()["choices"][0]["message"]["tool_calls"][0]
    fixed = (await _post(server)).json()["choices"][0]["message"]["tool_calls"][0]
    assert broken["function"]["arguments"] == '{"namespace": "shop"'
    assert json.loads(fixed["function"]["arguments"]) == {"namespace": "shop"}
    assert server.remaining == 0


async def test_bad_args_raw_and_unknown_tool_and_empty(scripted_model) -> None:
    server = await scripted_model([
        {"fault": "bad_args", "raw": "namespace=shop", "calls": [{"tool": "get_pods"}]},
        {"fault": "unknown_tool", "tool": "kubectl_exec", "args": {"cmd": "ls"}},
        {"fault": "empty"},
    ])
    bad, unknown, empty = [(await _post(server)).json()["choices"][0] for _ in range(3)]
    assert bad["message"]["tool_calls"][0]["function"]["arguments"] == "namespace=shop"
    call = unknown["message"]["tool_calls"][0]["function"]
    assert (call["name"], json.loads(call["arguments"])) == ("kubectl_exec", {"cmd": "ls"})
    assert empty["message"] == {"role": "assistant", "content": ""}
    assert empty["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("style", "marker"), [("tags", "<tool_call>"), ("fenced", "```json"), ("bare", '{"name"')]
)
async def test_text_call_writes_the_call_into_content(scripted_model, style, marker) -> None:
    server = await scripted_model([
        {"fault": "text_call", "style": style,
         "calls": [{"tool": "get_pods", "args": {"namespace": "shop"}}]},
    ])
    choice = (await _post(server)).json()["choices"][0]
    assert "tool_calls" not in choice["message"]
    assert choice["message"]["content"].startswith(marker)
    assert '"get_pods"' in choice["message"]["content"]
    assert choice["finish_reason"] == "stop"


async def test_no_usage_omits_usage(scripted_model) -> None:
    server = await scripted_model([{"fault": "no_usage", "answer": "x"}])
    assert "usage" not in (await _post(server)).json()


async def test_invalid_json_request_is_a_400_and_not_recorded(scripted_model) -> None:
    server = await scripted_model([{"answer": "x"}])
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{server.url}/chat/completions", content=b"{nope")
    assert response.status_code == 400
    assert "invalid JSON" in response.json()["error"]["message"]
    assert server.requests == [] and server.remaining == 1


async def test_callable_script_computes_turns_from_the_request(scripted_model) -> None:
    async def script(body: dict[str, Any]) -> dict[str, Any]:
        tool_results = [m for m in body["messages"] if m["role"] == "tool"]
        if not tool_results:
            return {"calls": [{"tool": "get_pods", "args": {"namespace": "shop"}}]}
        return {"answer": f"saw {len(tool_results)} result(s)"}

    server = await scripted_model(script)
    first = (await _post(server)).json()["choices"][0]
    assert first["message"]["tool_calls"][0]["function"]["name"] == "get_pods"
    followup = {**BODY, "messages": [*BODY["messages"], {"role": "tool", "content": "3 pods"}]}
    second = (await _post(server, followup)).json()["choices"][0]
    assert second["message"]["content"] == "saw 1 result(s)"


async def test_turns_load_from_yaml() -> None:
    script = yaml.safe_load(
        """
        - say: checking
          calls: [{tool: get_pods, args: {namespace: shop}}]
        - fault: 429
          retry_after: 1
        - answer: "ROOT CAUSE: redis"
        """
    )
    turns = parse_turns(script, file="checkout.yaml", path="model")
    assert turns[0].calls[0].tool == "get_pods" and turns[1].fault == "429"
    assert turns[2] == ScriptTurn(answer="ROOT CAUSE: redis")


@pytest.mark.parametrize(
    ("items", "where", "problem"),
    [
        ("not a list", "model", "must be a list"),
        ([["x"]], "model[0]", "must be a mapping"),
        ([{}], "model[0]", "empty turn"),
        ([{"fault": "explode"}], "model[0].fault", "unknown fault 'explode'"),
        ([{"fault": "500", "seconds": 3}], "model[0].seconds", "unknown key"),
        ([{"answer": "a", "calls": [{"tool": "t"}]}], "model[0]", "not both"),
        ([{"calls": [{"name": "get_pods"}]}], "model[0].calls[0]", "`tool` name"),
        ([{"calls": [{"tool": "t", "args": [1]}]}], "model[0].calls[0].args", "mapping"),
        ([{"fault": "stall", "times": 0}], "model[0].times", "whole number >= 1"),
        ([{"fault": "text_call", "style": "xml", "say": "x"}], "model[0].style", "one of"),
        ([{"fault": "bad_args"}], "model[0]", "next turn must be a plain turn"),
        ([{"fault": "empty", "answer": "x"}], "model[0]", "takes no say/calls/answer"),
    ],
)
def test_bad_scripts_name_file_path_and_problem(items: Any, where: str, problem: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_turns(items, file="broken.yaml", path="model")
    assert info.value.file == "broken.yaml"
    assert info.value.path == where
    assert problem in info.value.problem


async def test_server_context_manager_and_url_before_start() -> None:
    server = ScriptedModelServer([{"answer": "x"}])
    with pytest.raises(RuntimeError, match="before start"):
        _ = server.url
    async with server:
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/v1")
        assert (await _post(server)).status_code == 200
