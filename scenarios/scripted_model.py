"""A scripted OpenAI-compatible model server on loopback, for tests, the demo and evals.

``POST /v1/chat/completions`` plays a script of assistant turns; ``GET /v1/models`` lists the
one model. Replies have the shape Ollama's and vLLM's OpenAI endpoints use (id, object
"chat.completion", created, model, choices[0].message {role, content, tool_calls}, finish_reason
"tool_calls"/"stop", usage with prompt_tokens estimated from the request size). Every parsed
request body is kept in ``server.requests`` for assertions.

The script's format, its turns and faults, is described in ``scenarios.model_script``.

``flavour`` (see ``scenarios.model_servers``) adds a real server's endpoints, reply shapes,
errors and context behaviour: Ollama's native ``/api/chat`` and its silent truncation at
``num_ctx``, vLLM's ``max_model_len`` and its 400, llama.cpp's ``/props`` and
``exceed_context_size_error``, OpenAI's reasoning-model parameter refusals, LM Studio's
overflow wording.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Self

from aiohttp import web

from scenarios import model_servers as servers
from scenarios.model_replies import (
    error_response,
    header_value,
    llamacpp_props,
    model_not_found,
    models_list,
    ollama_reply,
    ollama_show,
    openai_reply,
    tools_unconfigured,
    written_turn,
)
from scenarios.model_script import (
    EXHAUSTED,
    FAULTS,
    HTTP_FAULTS,
    MODIFYING_FAULTS,
    TEXT_CALL_STYLES,
    ScriptCall,
    ScriptTurn,
    parse_turns,
)

__all__ = [
    "EXHAUSTED", "FAULTS", "TEXT_CALL_STYLES", "ScriptCall", "ScriptTurn", "ScriptedModelServer",
    "parse_turns",
]

TurnSource = list[Mapping[str, Any] | ScriptTurn]
TurnFunction = Callable[[dict[str, Any]], Mapping[str, Any] | ScriptTurn | Awaitable[Any]]


# --- the server -------------------------------------------------------------------------------


class ScriptedModelServer:
    """Serves ``turns`` over HTTP on loopback. ``url`` is what BUDO_LLM_URL would be.

    ``flavour`` (see ``scenarios.model_servers``) makes it answer as that server does: its
    discovery endpoints, reply shapes, errors, and at ``context_tokens`` its truncation (Ollama)
    or overflow refusal (the others). ``requests`` holds what was sent; ``seen`` what the model
    was left with after any truncation, which is also what a callable script receives."""

    def __init__(
        self,
        turns: TurnSource | TurnFunction,
        model: str = "qwen2.5:14b",
        *,
        strict_model: bool = False,
        flavour: str = "generic",
        context_tokens: int | None = None,
        model_context_length: int = 32768,
        reasoning: bool = False,
        tools_configured: bool = True,
        served_models: list[str] | None = None,
        native_api: bool = True,
        uncached_prompt_counts: bool = False,
    ) -> None:
        if flavour not in servers.FLAVOURS:
            raise ValueError(f"unknown flavour {flavour!r}; one of {servers.FLAVOURS}")
        self.model = model
        # strict_model: a request naming another model gets Ollama's 404, as Ollama would.
        self.strict_model = strict_model
        self.flavour = flavour
        # Ollama: the server default num_ctx (/v1 cannot change it); others: the hard window.
        self.context_tokens = context_tokens or (
            servers.OLLAMA_DEFAULT_NUM_CTX if flavour == "ollama" else None)
        self.model_context_length = model_context_length   # Ollama /api/show, the trained size
        self.reasoning = reasoning                           # an OpenAI o-series/gpt-5 model
        self.tools_configured = tools_configured             # llama.cpp --jinja, vLLM tool parser
        self.served_models = served_models or [model]
        self.native_api = native_api  # False: Ollama behind a proxy that passes only /v1
        # Ollama 0.30.0: prompt_eval_count leaves out the prefix reused from the KV cache
        # (fixed by ollama#16428 "include cached prompt tokens in llama-server counts").
        self.uncached_prompt_counts = uncached_prompt_counts
        self._script_fn: TurnFunction | None = turns if callable(turns) else None
        self._turns = [] if callable(turns) else parse_turns(list(turns))
        self._cursor = 0
        self._served_times = 0  # how often the fault at the cursor has been served
        self.requests: list[dict[str, Any]] = []
        self.seen: list[list[dict[str, Any]]] = []
        self.num_ctx: list[int] = []  # the context each request was served with
        self.model_list_requests = 0
        self._call_counter = 0
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Self:
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        if self.flavour == "ollama" and self.native_api:
            app.router.add_get("/api/version", self._ollama_version)
            app.router.add_post("/api/show", self._ollama_show)
            app.router.add_post("/api/chat", self._ollama_chat)
        if self.flavour == "llamacpp":
            app.router.add_get("/props", self._llamacpp_props)
        # shutdown_timeout: stalled handlers are released by _stopping, so no long wait.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self._host = host
        self._port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def root(self) -> str:
        if self._port is None:
            raise RuntimeError("ScriptedModelServer.url read before start()")
        return f"http://{self._host}:{self._port}"

    @property
    def url(self) -> str:
        """The base URL ending in /v1."""
        return f"{self.root}/v1"

    @property
    def remaining(self) -> int:
        """Turns not yet served (0 once exhausted, or for a callable script)."""
        return max(0, len(self._turns) - self._cursor)

    # --- discovery endpoints --------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        self.model_list_requests += 1
        return web.json_response(
            models_list(self.flavour, self.served_models, self.context_tokens))

    async def _ollama_version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": servers.OLLAMA_VERSION})  # server/routes.go

    async def _ollama_show(self, request: web.Request) -> web.Response:
        body = await request.json()
        name = str(body.get("model") or body.get("name") or "")
        if name not in (self.model, f"{self.model}:latest"):
            return web.json_response({"error": f"model '{name}' not found"}, status=404)
        return web.json_response(ollama_show(self.model_context_length))

    async def _llamacpp_props(self, request: web.Request) -> web.Response:
        return web.json_response(llamacpp_props(self.context_tokens))

    # --- chat -----------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.Response:
        raw = await request.text()
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            return error_response(400, f"invalid JSON body: {exc}", "invalid_request_error")
        self.requests.append(body)
        outcome = await self._serve(body, raw, native=False)
        if isinstance(outcome, web.Response):
            return outcome
        message, finish, usage = outcome
        usage = self._uncached(usage, body)
        return web.json_response(openai_reply(
            self._call_counter, str(body.get("model") or self.model), self.flavour, message,
            finish, usage))

    async def _ollama_chat(self, request: web.Request) -> web.StreamResponse:
        """Ollama's native API (api/types.go ChatRequest/ChatResponse): options.num_ctx,
        arguments as objects, no call ids, prompt_eval_count/eval_count, NDJSON unless
        ``stream: false``."""
        raw = await request.text()
        try:
            body = json.loads(raw)
        except ValueError as exc:
            return web.json_response({"error": f"invalid character: {exc}"}, status=400)
        self.requests.append(body)
        outcome = await self._serve(body, raw, native=True)
        if isinstance(outcome, web.Response):
            return outcome
        message, finish, usage = outcome
        usage = self._uncached(usage, body)
        return ollama_reply(str(body.get("model") or self.model), message, finish, usage,
                            stream=body.get("stream", True) is not False)

    def _uncached(self, usage: tuple[int, int] | None, body: dict[str, Any]
                  ) -> tuple[int, int] | None:
        """With ``uncached_prompt_counts``: the prompt count leaves out the prefix shared with
        the previous request (what the KV cache held)."""
        if usage is None or not self.uncached_prompt_counts or len(self.seen) < 2:
            return usage
        previous, current = self.seen[-2], self.seen[-1]
        shared = 0
        while shared < min(len(previous), len(current)) and previous[shared] == current[shared]:
            shared += 1
        cached = servers.prompt_tokens(current[:shared], body.get("tools") or None)
        return max(1, usage[0] - cached), usage[1]

    async def _serve(
        self, body: dict[str, Any], raw: str, *, native: bool
    ) -> web.Response | tuple[dict[str, Any], str, tuple[int, int] | None]:
        """The server's checks, its truncation, then the script's turn: (message,
        finish_reason, usage or None) or an error response."""
        requested_model = str(body.get("model") or self.model)
        if self.strict_model and requested_model != self.model:
            return model_not_found(requested_model, native, self.flavour)
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        tools = body.get("tools") or None
        refused = self._refusal(body, messages, tools, native)
        if refused is not None:
            return refused
        seen = messages
        if self.flavour == "ollama":
            num_ctx = self.context_tokens or servers.OLLAMA_DEFAULT_NUM_CTX
            if native and isinstance((body.get("options") or {}).get("num_ctx"), int):
                # server/sched.go: a num_ctx above the trained length is clamped to it.
                num_ctx = min(body["options"]["num_ctx"], self.model_context_length)
            self.num_ctx.append(num_ctx)
            seen = servers.ollama_truncate(messages, tools, num_ctx)
        self.seen.append(seen)
        turn, modifier = await self._take_turn({**body, "messages": seen})
        if turn is None:
            return self._message(seen, tools, raw, content=EXHAUSTED)
        fault = modifier.fault if modifier else turn.fault
        if fault == "500":
            return error_response(turn.options.get("status", 500), "scripted fault: internal error")
        if fault == "429":
            retry_after = turn.options.get("retry_after", 1)
            response = error_response(429, "scripted fault: rate limited", "rate_limit_error")
            response.headers["Retry-After"] = header_value(retry_after)
            return response
        if fault == "model_not_found":
            return model_not_found(requested_model, native, self.flavour)
        if fault == "stall":
            seconds = float(turn.options.get("seconds", 5))
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
            except TimeoutError:
                pass
            return error_response(504, f"scripted fault: stalled for {seconds:g}s", "timeout")
        if fault == "empty":
            return self._message(seen, tools, raw, content="")
        if fault == "refusal":  # OpenAI: the reason in `refusal`, content null
            return self._message(seen, tools, raw, content="",
                                 refusal=turn.options.get("text", "I can't help with that."))
        if fault == "unknown_tool":
            call = ScriptCall(
                tool=turn.options.get("tool", "nonexistent_tool"),
                args=turn.options.get("args", {}),
            )
            return self._message(seen, tools, raw, calls=[call])
        content, calls, usage, finish = written_turn(turn, modifier)
        return self._message(seen, tools, raw, content=content, calls=calls, usage=usage,
                             finish=finish)

    def _refusal(self, body: dict[str, Any], messages: list[dict[str, Any]],
                 tools: Any, native: bool) -> web.Response | None:
        """What the server refuses before generating anything."""
        unsupported = servers.unsupported_parameter(self.flavour, body, self.reasoning)
        if unsupported is not None:
            return web.json_response(unsupported, status=400)
        if tools and not self.tools_configured:
            refused = tools_unconfigured(self.flavour)
            if refused is not None:
                return refused
        if not native:
            invalid = servers.invalid_history(self.flavour, messages)
            if invalid is not None:
                return error_response(400, invalid, "invalid_request_error")
        if self.context_tokens and self.flavour not in ("ollama", "generic"):
            prompt = servers.prompt_tokens(messages, tools)
            limit = body.get("max_completion_tokens", body.get("max_tokens"))
            over = servers.overflow(self.flavour, prompt, self.context_tokens,
                                    limit if isinstance(limit, int) else None)
            if over is not None:
                return web.json_response(over.body, status=over.status)
        return None

    async def _take_turn(
        self, body: dict[str, Any]
    ) -> tuple[ScriptTurn | None, ScriptTurn | None]:
        """(turn to serve, the modifying fault wrapping it if any), advancing the cursor."""
        if self._script_fn is not None:
            produced = self._script_fn(body)
            if inspect.isawaitable(produced):
                produced = await produced
            if produced is None:
                return None, None
            turn = ScriptTurn.from_dict(produced, path="callable script")
            return (turn, turn) if turn.fault in MODIFYING_FAULTS else (turn, None)
        if self._cursor >= len(self._turns):
            return None, None
        turn = self._turns[self._cursor]
        if turn.fault in HTTP_FAULTS:
            self._served_times += 1
            if self._served_times >= turn.options.get("times", 1):
                self._cursor += 1
                self._served_times = 0
            return turn, None
        if turn.fault in MODIFYING_FAULTS:
            if turn.has_content:
                self._cursor += 1
                return turn, turn
            target = self._turns[self._cursor + 1]  # parse_turns guarantees it exists
            self._cursor += 2
            return target, turn
        self._cursor += 1
        return turn, None

    # --- rendering ------------------------------------------------------------------------

    def _message(
        self,
        seen: list[dict[str, Any]],
        tools: Any,
        raw_request: str,
        *,
        content: str = "",
        calls: list[ScriptCall] | None = None,
        usage: bool = True,
        finish: str | None = None,
        refusal: str | None = None,
    ) -> tuple[dict[str, Any], str, tuple[int, int] | None]:
        calls = calls or []
        self._call_counter += 1
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if refusal is not None:
            message.update(content=None, refusal=refusal)
        if calls:
            message["tool_calls"] = [
                {
                    "id": servers.call_id(self.flavour, self._call_counter, i),
                    "index": i,
                    "type": "function",
                    "function": {"name": c.tool, "arguments": c.arguments_text()},
                }
                for i, c in enumerate(calls)
            ]
        counts = None
        if usage:
            produced = content + "".join(c.tool + c.arguments_text() for c in calls)
            # What the model was given, after any truncation, counted like a real tokenizer.
            prompt_tokens = servers.prompt_tokens(seen, tools)
            if self.flavour == "ollama" and self.num_ctx:
                # When system + the last message alone exceed num_ctx, Ollama's runner cuts the
                # prompt itself (runner.go: "truncating input prompt" limit=4096 ... new=4096).
                prompt_tokens = min(prompt_tokens, self.num_ctx[-1])
            counts = (prompt_tokens, max(1, len(produced) // 4))
        return message, finish or ("tool_calls" if calls else "stop"), counts
