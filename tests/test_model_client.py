"""The httpx model client against the scripted model server, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import email.utils
import socket
import time
from typing import Any

import httpx
import pytest
from aiohttp import web

from agent.model import OpenAIChatModel
from budo import wiring
from budo.config import Settings
from budo.errors import ModelNotFound, ModelResponseError, ModelTimeout, ModelUnreachable

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name} tool",
            "parameters": {"type": "object", "properties": {}},
        },
    }
    for name in ("get_pods", "get_logs")
]
QUESTION = [{"role": "user", "content": "why is checkout failing?"}]


@pytest.fixture
async def client_for(scripted_model):
    """``await client_for(turns, **client_options)``: a started server and a client for it."""
    clients: list[OpenAIChatModel] = []

    async def make(turns: list[dict[str, Any]], server_options: dict[str, Any] | None = None,
                   **options: Any):
        server = await scripted_model(turns, **(server_options or {}))
        options.setdefault("backoff", 0.001)
        client = OpenAIChatModel(server.url, "qwen2.5:14b", **options)
        clients.append(client)
        return server, client

    yield make
    for client in clients:
        await client.aclose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_golden_two_calls_then_answer(client_for) -> None:
    server, client = await client_for([
        {"say": "Checking pods and logs.", "calls": [
            {"tool": "get_pods", "args": {"namespace": "shop"}},
            {"tool": "get_logs", "args": {"pod": "checkout-1", "tail": 50}},
        ]},
        {"answer": "ROOT CAUSE: checkout cannot reach redis."},
    ])
    first = await client.complete(QUESTION, tools=TOOLS)
    assert first.content == "Checking pods and logs."
    assert [(c.name, c.arguments) for c in first.tool_calls] == [
        ("get_pods", {"namespace": "shop"}), ("get_logs", {"pod": "checkout-1", "tail": 50}),
    ]
    assert all(c.id and c.parse_error is None for c in first.tool_calls)
    assert first.finish_reason == "tool_calls"
    assert first.usage.prompt_tokens > 0 and first.usage.completion_tokens > 0
    assert first.usage.estimated is False
    assert first.recovered_from_text is False

    second = await client.complete(QUESTION, tools=TOOLS, tool_choice="none")
    assert second.content == "ROOT CAUSE: checkout cannot reach redis."
    assert second.tool_calls == []
    assert second.finish_reason == "stop"
    assert len(server.requests) == 2


async def test_request_shape_tools_auto_and_assistant_content_normalised(client_for) -> None:
    server, client = await client_for([{"answer": "a"}, {"answer": "b"}, {"answer": "c"}])
    history = [
        *QUESTION,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_pods", "arguments": {"namespace": "shop"}}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "3 pods"},
    ]
    await client.complete(history, tools=TOOLS)
    await client.complete(history, tools=None)
    await client.complete(history, tools=TOOLS, tool_choice="none")

    with_tools, without_tools, final_turn = server.requests
    assert with_tools["tool_choice"] == "auto"
    assert [t["function"]["name"] for t in with_tools["tools"]] == ["get_pods", "get_logs"]
    assert with_tools["model"] == "qwen2.5:14b"
    assert with_tools["temperature"] == 0
    for body in (without_tools, final_turn):
        assert "tools" not in body and "tool_choice" not in body
    assistant = with_tools["messages"][1]
    assert assistant["content"] == ""
    assert assistant["tool_calls"][0]["function"]["arguments"] == '{"namespace": "shop"}'
    assert history[1]["content"] is None  # the caller's list is not mutated


async def test_500_then_success_is_retried(client_for) -> None:
    server, client = await client_for([{"fault": "500"}, {"answer": "ok"}])
    completion = await client.complete(QUESTION, tools=TOOLS)
    assert completion.content == "ok"
    assert len(server.requests) == 2


class Sleeps:
    """An injected sleep: records the delays the client chose instead of waiting them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


async def test_429_retry_after_is_honoured(client_for) -> None:
    sleeps = Sleeps()
    server, client = await client_for([{"fault": "429", "retry_after": 7}, {"answer": "ok"}],
                                      sleep=sleeps)
    completion = await client.complete(QUESTION)
    assert sleeps.delays == [7.0]
    assert completion.content == "ok"
    assert len(server.requests) == 2


async def test_429_retry_after_http_date_is_parsed_against_the_clock_and_capped(
        client_for) -> None:
    now = 1_800_000_000.0
    sleeps = Sleeps()
    soon = email.utils.formatdate(now + 12, usegmt=True)
    later = email.utils.formatdate(now + 300, usegmt=True)
    _, client = await client_for(
        [{"fault": "429", "retry_after": soon}, {"fault": "429", "retry_after": later},
         {"answer": "ok"}], max_retry_after=30, sleep=sleeps, clock=lambda: now)
    completion = await client.complete(QUESTION)
    assert sleeps.delays == [12.0, 30.0]  # the date's distance from our clock; then the cap
    assert completion.content == "ok"


async def test_backoff_doubles_from_the_configured_base(client_for) -> None:
    sleeps = Sleeps()
    _, client = await client_for([{"fault": "500", "times": 3}, {"answer": "ok"}],
                                 backoff=0.5, max_retries=3, sleep=sleeps)
    assert (await client.complete(QUESTION)).content == "ok"
    assert sleeps.delays == [0.5, 1.0, 2.0]


async def test_the_defaults_are_three_retries_from_half_a_second() -> None:
    client = OpenAIChatModel("http://127.0.0.1:9/v1", "m")
    assert (client.max_retries, client.backoff, client.max_retry_after) == (3, 0.5, 30.0)
    await client.aclose()


async def test_stall_past_timeout_raises_model_timeout_after_retries(client_for) -> None:
    server, client = await client_for(
        [{"fault": "stall", "seconds": 10, "times": 2}], timeout=0.3, max_retries=1
    )
    started = time.monotonic()
    with pytest.raises(ModelTimeout, match=r"did not answer within 0\.3s"):
        await client.complete(QUESTION)
    assert time.monotonic() - started < 5
    assert len(server.requests) == 2


async def test_persistent_500_raises_model_response_error(client_for) -> None:
    server, client = await client_for([{"fault": "500", "times": 10}], max_retries=2)
    with pytest.raises(ModelResponseError, match=r"HTTP 500: .*scripted fault") as info:
        await client.complete(QUESTION)
    assert "\n" not in str(info.value)
    assert len(server.requests) == 3


async def test_unreachable_port_raises_helpful_model_unreachable() -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"
    async with OpenAIChatModel(url, "qwen2.5:14b", max_retries=1, backoff=0.01) as client:
        with pytest.raises(ModelUnreachable) as info:
            await client.complete(QUESTION)
        with pytest.raises(ModelUnreachable):
            await client.check()
    assert str(info.value) == (
        f"no model endpoint answers at {url}: connection refused — start Ollama "
        "(`ollama serve`) or set BUDO_LLM_URL"
    )


async def test_model_not_found_mentions_ollama_pull_only_on_ollama(client_for) -> None:
    server, client = await client_for([{"fault": "model_not_found"}],
                                      server_options={"flavour": "ollama"})
    with pytest.raises(ModelNotFound) as info:
        await client.complete(QUESTION)
    assert str(info.value) == (
        f"model 'qwen2.5:14b' is not available at {server.url} — run `ollama pull qwen2.5:14b` "
        "(or set BUDO_LLM_MODEL)"
    )
    assert len(server.requests) == 1  # not retried


async def test_model_not_found_elsewhere_names_the_models_served(client_for) -> None:
    server, client = await client_for(
        [{"fault": "model_not_found"}],
        server_options={"flavour": "vllm", "served_models": ["Qwen/Qwen2.5-14B-Instruct"]})
    with pytest.raises(ModelNotFound) as info:
        await client.complete(QUESTION)
    assert str(info.value) == (
        f"model 'qwen2.5:14b' is not available at {server.url} — it serves "
        "Qwen/Qwen2.5-14B-Instruct; set BUDO_LLM_MODEL to one of them"
    )
    assert "ollama" not in str(info.value)


async def test_bad_args_reach_the_loop_as_parse_error(client_for) -> None:
    _, client = await client_for(
        [{"fault": "bad_args"}, {"calls": [{"tool": "get_pods", "args": {"namespace": "shop"}}]}]
    )
    completion = await client.complete(QUESTION, tools=TOOLS)
    [call] = completion.tool_calls
    assert call.name == "get_pods"
    assert call.arguments is None
    assert call.parse_error and "not valid JSON" in call.parse_error
    assert call.raw_arguments == '{"namespace": "shop"'


async def test_unknown_tool_is_passed_through_for_the_loop(client_for) -> None:
    _, client = await client_for([{"fault": "unknown_tool", "tool": "drop_database"}])
    completion = await client.complete(QUESTION, tools=TOOLS)
    assert [(c.name, c.arguments) for c in completion.tool_calls] == [("drop_database", {})]


async def test_empty_reply_is_an_empty_completion(client_for) -> None:
    _, client = await client_for([{"fault": "empty"}])
    completion = await client.complete(QUESTION, tools=TOOLS)
    assert completion.content == ""
    assert completion.tool_calls == []


@pytest.mark.parametrize("style", ["tags", "fenced", "bare", "mistral", "pythonic"])
async def test_text_call_is_recovered(client_for, style: str) -> None:
    _, client = await client_for([
        {"fault": "text_call", "style": style, "say": "Let me look.",
         "calls": [{"tool": "get_logs", "args": {"pod": "checkout-1"}}]},
    ])
    completion = await client.complete(QUESTION, tools=TOOLS)
    assert completion.recovered_from_text is True
    assert [(c.name, c.arguments) for c in completion.tool_calls] == [
        ("get_logs", {"pod": "checkout-1"}),
    ]
    # Only Hermes tags may follow a sentence; the other syntaxes are the whole reply.
    assert completion.content == ("Let me look." if style == "tags" else "")


async def test_text_call_is_not_recovered_when_no_tools_were_offered(client_for) -> None:
    _, client = await client_for([
        {"fault": "text_call", "calls": [{"tool": "get_logs", "args": {"pod": "a"}}]},
    ])
    completion = await client.complete(QUESTION, tools=TOOLS, tool_choice="none")
    assert completion.tool_calls == []
    assert "<tool_call>" in completion.content


async def test_missing_usage_is_estimated(client_for) -> None:
    _, client = await client_for([{"fault": "no_usage"}, {"answer": "x" * 400}])
    completion = await client.complete(QUESTION)
    assert completion.usage.estimated is True
    assert completion.usage.completion_tokens == 100
    assert completion.usage.prompt_tokens > 0


async def test_check_reports_available_and_missing_models(scripted_model) -> None:
    server = await scripted_model([], flavour="ollama")
    async with OpenAIChatModel(server.url, "qwen2.5:14b") as good:
        assert await good.check() == f"model 'qwen2.5:14b' is available at {server.url}"
    async with OpenAIChatModel(server.url, "llama3.1:8b") as missing:
        with pytest.raises(ModelNotFound, match=r"ollama pull llama3\.1:8b"):
            await missing.check()


async def test_wrong_base_url_says_where_v1_goes(scripted_model) -> None:
    server = await scripted_model([{"answer": "a"}])
    base = server.url.removesuffix("/v1")
    async with OpenAIChatModel(base, "qwen2.5:14b") as client:
        with pytest.raises(ModelResponseError, match="usually ending in /v1"):
            await client.complete(QUESTION)


async def test_strict_server_rejects_another_model_as_not_found(scripted_model) -> None:
    server = await scripted_model([{"answer": "a"}], strict_model=True, flavour="ollama")
    async with OpenAIChatModel(server.url, "mistral:7b") as client:
        with pytest.raises(ModelNotFound, match="ollama pull mistral:7b"):
            await client.complete(QUESTION)


async def test_from_settings_uses_url_model_key_and_timeout(scripted_model) -> None:
    server = await scripted_model([{"answer": "ok"}])
    settings = Settings(llm_url=server.url, llm_model="qwen2.5:14b", llm_api_key="sk-test",
                        llm_timeout=5.0)
    async with wiring.chat_model(settings) as client:
        assert client.timeout == 5.0
        assert (await client.complete(QUESTION)).content == "ok"


@pytest.fixture
async def raw_endpoint():
    """``await raw_endpoint(status, body_text)``: a bare aiohttp server whose
    /v1/chat/completions answers exactly that, and records request headers."""
    runners: list[web.AppRunner] = []

    async def start(status: int, text: str) -> tuple[str, list[dict[str, str]]]:
        seen: list[dict[str, str]] = []

        async def handler(request: web.Request) -> web.Response:
            seen.append(dict(request.headers))
            return web.Response(status=status, text=text, content_type="application/json")

        app = web.Application()
        app.router.add_post("/v1/chat/completions", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}/v1", seen

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("status", "text", "match"),
    [
        (200, '{"object": "chat.completion", "choices": []}', "without choices"),
        (200, '{"id": "x"}', "without choices"),
        (200, "<html>proxy error</html>", "not JSON: <html>proxy error</html>"),
        (400, '{"error": {"message": "messages: required"}}', "HTTP 400: .*messages: required"),
        (401, '{"error": "bad key"}', "check BUDO_LLM_API_KEY"),
        (400, '{"error": {"message": "registry.ollama.ai/library/qwen2.5:14b does not support '
              'tools"}}', "does not support tool calling"),
        (400, '{"error": {"message": "model qwen2.5:14b: context length exceeded"}}',
         "HTTP 400: .*context length exceeded"),
    ],
)
async def test_unusable_replies_are_one_line_model_response_errors(
    raw_endpoint, status: int, text: str, match: str
) -> None:
    url, _ = await raw_endpoint(status, text)
    async with OpenAIChatModel(url, "qwen2.5:14b", max_retries=0) as client:
        with pytest.raises(ModelResponseError, match=match) as info:
            await client.complete(QUESTION)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        '{"object": "error", "message": "The model `qwen2.5:14b` does not exist.", "code": 404}',
        '{"error": {"message": "The model \'qwen2.5:14b\' does not exist", '
        '"code": "model_not_found"}}',
    ],
)
async def test_vllm_and_openai_model_missing_wordings_are_model_not_found(
    raw_endpoint, text: str
) -> None:
    url, seen = await raw_endpoint(404, text)
    async with OpenAIChatModel(url, "qwen2.5:14b") as client:
        with pytest.raises(ModelNotFound, match="set BUDO_LLM_MODEL to a model the server"):
            await client.complete(QUESTION)
    assert len(seen) == 1


async def test_long_error_bodies_are_trimmed(raw_endpoint) -> None:
    url, _ = await raw_endpoint(422, "x" * 5000)
    async with OpenAIChatModel(url, "qwen2.5:14b") as client:
        with pytest.raises(ModelResponseError) as info:
            await client.complete(QUESTION)
    assert len(str(info.value)) < 500


async def test_api_key_is_sent_as_bearer_and_only_when_set(raw_endpoint) -> None:
    body = '{"choices": [{"message": {"role": "assistant", "content": "hi"}}]}'
    url, seen = await raw_endpoint(200, body)
    async with OpenAIChatModel(url, "m", api_key="sk-secret") as with_key:
        completion = await with_key.complete(QUESTION)
    async with OpenAIChatModel(url, "m") as without_key:
        await without_key.complete(QUESTION)
    assert seen[0]["Authorization"] == "Bearer sk-secret"
    assert "Authorization" not in seen[1]
    assert completion.content == "hi"
    assert completion.usage.estimated is True  # that body had no usage


async def test_a_caller_supplied_http_client_is_used_and_left_open(scripted_model) -> None:
    server = await scripted_model([{"answer": "ok"}])
    async with httpx.AsyncClient() as http:
        async with OpenAIChatModel(server.url, "qwen2.5:14b", client=http) as client:
            assert (await client.complete(QUESTION)).content == "ok"
        assert not http.is_closed


async def test_sampling_and_context_settings_reach_the_client_and_budgets() -> None:
    settings = Settings(llm_temperature="", llm_max_output_tokens=512, context_tokens=8192)
    async with wiring.chat_model(settings) as client:
        assert client.temperature is None  # BUDO_LLM_TEMPERATURE set empty: none is sent
        assert client.max_output_tokens == 512 and client.context_tokens == 8192
    assert wiring.budgets(settings).context_tokens == 8192
    async with wiring.chat_model(Settings()) as default:
        assert default.temperature == 0.0 and default.max_output_tokens is None
