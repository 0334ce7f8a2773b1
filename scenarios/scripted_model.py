"""A scripted OpenAI-compatible model server on loopback, for tests, the demo and evals.

``POST /v1/chat/completions`` plays a script of assistant turns; ``GET /v1/models`` lists the
one model. Replies have the shape Ollama's and vLLM's OpenAI endpoints use (id, object
"chat.completion", created, model, choices[0].message {role, content, tool_calls}, finish_reason
"tool_calls"/"stop", usage with prompt_tokens estimated from the request size). Every parsed
request body is kept in ``server.requests`` for assertions.

Script turns are plain data so scenario YAML can carry them::

    {say: "optional text", calls: [{tool: get_pods, args: {namespace: shop}}]}
    {answer: "ROOT CAUSE: ..."}
    {say: "text only"}                      # also a final answer
    {fault: NAME, ...options}

A turn is consumed when served; the next request gets the next turn. When the script runs out
the server answers "script exhausted: ..." (finish_reason "stop") so a runaway loop ends.

Faults (``fault`` may be written as a string or, for "500"/"429", a YAML number):

=================  ============================================================================
``500``            HTTP 500 (``status: 502`` etc. for another 5xx). ``times: N`` serves it N
                   times before moving on (default 1), so ``times: 5`` is a persistent outage.
``429``            HTTP 429 with ``Retry-After: retry_after`` (default 1; a number of seconds
                   or a string sent verbatim, e.g. an HTTP date). ``times`` as above.
``stall``          Holds the request ``seconds`` (default 5) and then answers HTTP 504; the
                   client should have timed out by then. ``times`` as above. ``stop()``
                   releases stalled requests at once.
``model_not_found``  HTTP 404 with Ollama's body: model "x" not found, try pulling it first.
                   ``times`` as above.
``empty``          200 with content "" and no tool calls.
``unknown_tool``   A call to ``tool`` (default "nonexistent_tool") with ``args`` (default {}).
``bad_args``       The calls' ``arguments`` are malformed JSON: ``raw`` if given, else the real
                   JSON with its closing brace cut off (no lenient parser may guess that).
``text_call``      No ``tool_calls``: the calls are written in ``content`` the way small local
                   models do, in ``style`` "tags" (``<tool_call>{...}</tool_call>`` after any
                   ``say``, default), "fenced" (```json blocks), "bare" (one JSON object per
                   line), "mistral" (v11 ``[TOOL_CALLS]name[ARGS]{...}``) or "pythonic"
                   (``[name(arg="v")]``); all but "tags" are the whole reply.
``no_usage``       The reply omits ``usage``.
``cut_off``        The reply stops at ``keep`` (default 0.5) of its text with
                   ``finish_reason: "length"`` (the server's max_tokens reached).
``refusal``        OpenAI's shape for a safety refusal: ``content`` null, ``refusal`` = ``text``.
=================  ============================================================================

``flavour`` (see ``scenarios.model_servers``) adds a real server's endpoints, reply shapes,
errors and context behaviour: Ollama's native ``/api/chat`` and its silent truncation at
``num_ctx``, vLLM's ``max_model_len`` and its 400, llama.cpp's ``/props`` and
``exceed_context_size_error``, OpenAI's reasoning-model parameter refusals, LM Studio's
overflow wording.

``bad_args``, ``text_call``, ``no_usage`` and ``cut_off`` modify a turn: either their own (the
fault turn carries ``say``/``calls``/``answer``), or, when it carries none, the NEXT turn of the
script, and both are consumed by that one reply. So ``[{fault: bad_args}, {calls: [...]}, {calls:
[...]}, {answer: ...}]`` serves broken arguments, then the corrected call the loop asked for.

Instead of a list, ``turns`` may be a callable ``(request_body) -> turn`` (sync or async) that
computes each reply from the request; a modifying fault it returns applies to its own content.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Self

from aiohttp import web

from scenarios import model_servers as servers
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
        owner = {"ollama": "library", "vllm": "vllm", "llamacpp": "llamacpp",
                 "openai": "system", "lmstudio": "organization_owner"}.get(self.flavour, "library")
        data = []
        for name in self.served_models:
            entry: dict[str, Any] = {"id": name, "object": "model", "created": 0,
                                     "owned_by": owner}
            if self.flavour == "vllm":  # vllm/entrypoints/openai/protocol.py ModelCard
                entry.update(root=name, parent=None, max_model_len=self.context_tokens or 32768)
            data.append(entry)
        return web.json_response({"object": "list", "data": data})

    async def _ollama_version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": servers.OLLAMA_VERSION})  # server/routes.go

    async def _ollama_show(self, request: web.Request) -> web.Response:
        body = await request.json()
        name = str(body.get("model") or body.get("name") or "")
        if name not in (self.model, f"{self.model}:latest"):
            return web.json_response({"error": f"model '{name}' not found"}, status=404)
        # api/types.go ShowResponse: model_info keys are "<architecture>.<field>".
        return web.json_response({
            "modelfile": "", "parameters": "", "template": "{{ .Prompt }}",
            "details": {"family": "qwen2", "parameter_size": "14.8B",
                        "quantization_level": "Q4_K_M"},
            "model_info": {"general.architecture": "qwen2",
                           "qwen2.context_length": self.model_context_length},
            "capabilities": ["completion", "tools"]})

    async def _llamacpp_props(self, request: web.Request) -> web.Response:
        # tools/server/server.cpp handle_props: n_ctx under default_generation_settings.
        return web.json_response({"default_generation_settings": {
            "n_ctx": self.context_tokens or 4096, "params": {}},
            "total_slots": 1, "model_path": "/models/qwen2.5-14b-instruct-q4_k_m.gguf",
            "chat_template": "..."})

    # --- chat -----------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.Response:
        raw = await request.text()
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            return _error(400, f"invalid JSON body: {exc}", "invalid_request_error")
        self.requests.append(body)
        outcome = await self._serve(body, raw, native=False)
        if isinstance(outcome, web.Response):
            return outcome
        message, finish, usage = outcome
        usage = self._uncached(usage, body)
        reply: dict[str, Any] = {
            "id": f"chatcmpl-{self._call_counter}", "object": "chat.completion",
            "created": int(time.time()), "model": str(body.get("model") or self.model),
            "system_fingerprint": "fp_scripted",
            "choices": [{"index": 0, "message": servers.shape_message(self.flavour, message),
                         "finish_reason": finish}],
        }
        if usage is not None:
            reply["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                              "total_tokens": usage[0] + usage[1]}
        return web.json_response(reply)

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
        for call in message.get("tool_calls") or []:
            call.pop("id", None)
            call.pop("type", None)
            function = call["function"]
            try:
                function["arguments"] = json.loads(function["arguments"])
            except ValueError:
                function["arguments"] = {}  # Ollama's own parser would not emit these
            function["index"] = call.pop("index", 0)
        message["content"] = message.get("content") or ""
        prompt, completion = usage or (0, 0)
        final = {"model": str(body.get("model") or self.model),
                 "created_at": "2026-12-01T00:00:00Z", "message": message, "done": True,
                 "done_reason": "length" if finish == "length" else "stop",
                 "total_duration": 1_000_000, "load_duration": 1000,
                 "prompt_eval_count": prompt, "prompt_eval_duration": 1000,
                 "eval_count": completion, "eval_duration": 1000}
        if body.get("stream", True) is not False:  # the default is a stream of NDJSON chunks
            lines = [{**final, "message": {**message, "content": ""}, "done": False}, final]
            for line in lines[:1]:
                line.pop("done_reason", None)
            text = "".join(json.dumps(line) + "\n" for line in lines)
            return web.Response(text=text, content_type="application/x-ndjson")
        return web.json_response(final)

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
            return _model_not_found(requested_model, native, self.flavour)
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
            return _error(turn.options.get("status", 500), "scripted fault: internal error")
        if fault == "429":
            retry_after = turn.options.get("retry_after", 1)
            response = _error(429, "scripted fault: rate limited", "rate_limit_error")
            response.headers["Retry-After"] = _header_value(retry_after)
            return response
        if fault == "model_not_found":
            return _model_not_found(requested_model, native, self.flavour)
        if fault == "stall":
            seconds = float(turn.options.get("seconds", 5))
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
            except TimeoutError:
                pass
            return _error(504, f"scripted fault: stalled for {seconds:g}s", "timeout")
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
        return self._render(turn, modifier, seen, tools, raw)

    def _refusal(self, body: dict[str, Any], messages: list[dict[str, Any]],
                 tools: Any, native: bool) -> web.Response | None:
        """What the server refuses before generating anything."""
        unsupported = servers.unsupported_parameter(self.flavour, body, self.reasoning)
        if unsupported is not None:
            return web.json_response(unsupported, status=400)
        if tools and not self.tools_configured:
            if self.flavour == "llamacpp":  # server: utils.hpp oaicompat_chat_params_parse
                return web.json_response({"error": {
                    "code": 500, "message": "tools param requires --jinja flag",
                    "type": "server_error"}}, status=500)
            if self.flavour == "vllm":  # serving_chat.py create_chat_completion
                return web.json_response({
                    "object": "error", "message": '"auto" tool choice requires '
                    "--enable-auto-tool-choice and --tool-call-parser to be set",
                    "type": "BadRequestError", "param": None, "code": 400}, status=400)
        if not native:
            invalid = servers.invalid_history(self.flavour, messages)
            if invalid is not None:
                return _error(400, invalid, "invalid_request_error")
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

    def _render(
        self, turn: ScriptTurn, modifier: ScriptTurn | None, seen: list[dict[str, Any]],
        tools: Any, raw: str,
    ) -> tuple[dict[str, Any], str, tuple[int, int] | None]:
        fault = modifier.fault if modifier else None
        calls = list(turn.calls)
        content = turn.answer if turn.answer is not None else turn.say
        if turn.answer is not None and turn.say:
            content = f"{turn.say}\n\n{turn.answer}"
        if fault == "bad_args":
            raw_args = modifier.options.get("raw") if modifier else None
            calls = [
                ScriptCall(c.tool, raw_args if raw_args is not None else c.arguments_text()[:-1])
                for c in calls
            ]
        if fault == "text_call" and calls:
            style = modifier.options.get("style", "tags") if modifier else "tags"
            written = _calls_as_text(calls, style)
            content = f"{content}\n{written}" if content and style == "tags" else written
            calls = []
        finish = None
        if fault == "cut_off":  # max_tokens reached mid-answer: finish_reason "length"
            keep = modifier.options.get("keep", 0.5) if modifier else 0.5
            content = content[: max(1, int(len(content) * keep))]
            finish = "length"
        return self._message(seen, tools, raw, content=content, calls=calls,
                             usage=fault != "no_usage", finish=finish)

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


def _calls_as_text(calls: list[ScriptCall], style: str) -> str:
    """Calls written in content, as models without a working tool template do (see
    ../shared testing notes): Qwen/Hermes tags, fences, bare JSON, mistral v11
    ``[TOOL_CALLS]name[ARGS]{...}``, pythonic ``[name(arg="v")]``."""
    if style == "mistral":
        return "".join(f"[TOOL_CALLS]{c.tool}[ARGS]{c.arguments_text()}" for c in calls)
    if style == "pythonic":
        def one(c: ScriptCall) -> str:
            args = c.args if isinstance(c.args, Mapping) else {}
            return f"{c.tool}(" + ", ".join(f"{k}={json.dumps(v)}" for k, v in args.items()) + ")"
        return "[" + ", ".join(one(c) for c in calls) + "]"
    return "\n".join(_call_as_text(c, style) for c in calls)


def _call_as_text(call: ScriptCall, style: str) -> str:
    arguments: Any = call.args if isinstance(call.args, str) else dict(call.args)
    obj = json.dumps({"name": call.tool, "arguments": arguments})
    if style == "fenced":
        return f"```json\n{obj}\n```"
    if style == "bare":
        return obj
    return f"<tool_call>\n{obj}\n</tool_call>"


def _header_value(retry_after: Any) -> str:
    if isinstance(retry_after, float) and retry_after.is_integer():
        return str(int(retry_after))
    return str(retry_after)


def _error(status: int, message: str, kind: str = "api_error") -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.json_response(body, status=status)


def _model_not_found(model: str, native: bool = False, flavour: str = "ollama"
                     ) -> web.Response:
    if flavour == "vllm":  # vllm/entrypoints/openai/serving_engine.py _check_model
        return web.json_response({"object": "error", "message": f"The model `{model}` does not "
                                  "exist.", "type": "NotFoundError", "param": None, "code": 404},
                                 status=404)
    if flavour == "openai":  # platform.openai.com/docs/guides/error-codes
        return web.json_response({"error": {
            "message": f"The model `{model}` does not exist or you do not have access to it.",
            "type": "invalid_request_error", "param": None, "code": "model_not_found"}},
            status=404)
    # Ollama's exact wording, which the client recognises (native: {"error": "..."}).
    message = f'model "{model}" not found, try pulling it first'
    if native:
        return web.json_response({"error": message}, status=404)
    return _error(404, message)
