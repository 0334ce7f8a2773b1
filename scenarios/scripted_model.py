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
                   models do, in ``style`` "tags" (``<tool_call>{...}</tool_call>``, default),
                   "fenced" (```json blocks) or "bare" (one JSON object per line).
``no_usage``       The reply omits ``usage``.
=================  ============================================================================

``bad_args``, ``text_call`` and ``no_usage`` modify a turn: either their own (the fault turn
carries ``say``/``calls``/``answer``), or, when it carries none, the NEXT turn of the script,
and both are consumed by that one reply. So ``[{fault: bad_args}, {calls: [...]}, {calls:
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
    """Serves ``turns`` over HTTP on loopback. ``url`` is what BUDO_LLM_URL would be."""

    def __init__(
        self,
        turns: TurnSource | TurnFunction,
        model: str = "qwen2.5:14b",
        *,
        strict_model: bool = False,
    ) -> None:
        self.model = model
        # strict_model: a request naming another model gets Ollama's 404, as Ollama would.
        self.strict_model = strict_model
        self._script_fn: TurnFunction | None = turns if callable(turns) else None
        self._turns = [] if callable(turns) else parse_turns(list(turns))
        self._cursor = 0
        self._served_times = 0  # how often the fault at the cursor has been served
        self.requests: list[dict[str, Any]] = []
        self.model_list_requests = 0
        self._call_counter = 0
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Self:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
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
    def url(self) -> str:
        """The base URL ending in /v1."""
        if self._port is None:
            raise RuntimeError("ScriptedModelServer.url read before start()")
        return f"http://{self._host}:{self._port}/v1"

    @property
    def remaining(self) -> int:
        """Turns not yet served (0 once exhausted, or for a callable script)."""
        return max(0, len(self._turns) - self._cursor)

    # --- handlers -------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        self.model_list_requests += 1
        entry = {"id": self.model, "object": "model", "created": 0, "owned_by": "library"}
        return web.json_response({"object": "list", "data": [entry]})

    async def _chat(self, request: web.Request) -> web.Response:
        raw = await request.text()
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            return _error(400, f"invalid JSON body: {exc}", "invalid_request_error")
        self.requests.append(body)
        requested_model = str(body.get("model") or self.model)
        if self.strict_model and requested_model != self.model:
            return _model_not_found(requested_model)
        turn, modifier = await self._take_turn(body)
        if turn is None:
            return self._reply(requested_model, raw, content=EXHAUSTED)
        fault = modifier.fault if modifier else turn.fault
        if fault == "500":
            return _error(turn.options.get("status", 500), "scripted fault: internal error")
        if fault == "429":
            retry_after = turn.options.get("retry_after", 1)
            response = _error(429, "scripted fault: rate limited", "rate_limit_error")
            response.headers["Retry-After"] = _header_value(retry_after)
            return response
        if fault == "model_not_found":
            return _model_not_found(requested_model)
        if fault == "stall":
            seconds = float(turn.options.get("seconds", 5))
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
            except TimeoutError:
                pass
            return _error(504, f"scripted fault: stalled for {seconds:g}s", "timeout")
        if fault == "empty":
            return self._reply(requested_model, raw, content="")
        if fault == "unknown_tool":
            call = ScriptCall(
                tool=turn.options.get("tool", "nonexistent_tool"),
                args=turn.options.get("args", {}),
            )
            return self._reply(requested_model, raw, calls=[call])
        return self._render(turn, modifier, requested_model, raw)

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
        self, turn: ScriptTurn, modifier: ScriptTurn | None, model: str, raw: str
    ) -> web.Response:
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
            written = "\n".join(_call_as_text(c, style) for c in calls)
            content = f"{content}\n{written}" if content else written
            calls = []
        return self._reply(model, raw, content=content, calls=calls, usage=fault != "no_usage")

    def _reply(
        self,
        model: str,
        raw_request: str,
        *,
        content: str = "",
        calls: list[ScriptCall] | None = None,
        usage: bool = True,
    ) -> web.Response:
        calls = calls or []
        self._call_counter += 1
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{self._call_counter:04d}_{i}",
                    "index": i,
                    "type": "function",
                    "function": {"name": c.tool, "arguments": c.arguments_text()},
                }
                for i, c in enumerate(calls)
            ]
        body: dict[str, Any] = {
            "id": f"chatcmpl-{self._call_counter}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_scripted",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if calls else "stop",
                }
            ],
        }
        if usage:
            produced = content + "".join(c.tool + c.arguments_text() for c in calls)
            prompt_tokens = max(1, len(raw_request) // 4)
            completion_tokens = max(1, len(produced) // 4)
            body["usage"] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
        return web.json_response(body)


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


def _model_not_found(model: str) -> web.Response:
    # Ollama's exact wording, which the client recognises.
    return _error(404, f'model "{model}" not found, try pulling it first')
