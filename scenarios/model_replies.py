"""What the scripted model answers, as each real server would word it: a script turn as the
assistant message's parts (content, calls, usage, finish_reason) after any modifying fault,
calls written as text the way small local models do, error bodies, and the discovery and
configuration answers (``/v1/models``, Ollama ``/api/show``, llama.cpp ``/props``)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from scenarios import model_servers as servers
from scenarios.model_script import ScriptCall, ScriptTurn

_MODEL_OWNER = {"ollama": "library", "vllm": "vllm", "llamacpp": "llamacpp",
                "openai": "system", "lmstudio": "organization_owner"}


def written_turn(turn: ScriptTurn, modifier: ScriptTurn | None
                 ) -> tuple[str, list[ScriptCall], bool, str | None]:
    """What the reply to ``turn`` says: (content, calls, whether usage is sent, finish_reason
    or None for the usual one), after a modifying fault (``modifier``) has had its way."""
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
        written = calls_as_text(calls, style)
        content = f"{content}\n{written}" if content and style == "tags" else written
        calls = []
    finish = None
    if fault == "cut_off":  # max_tokens reached mid-answer: finish_reason "length"
        keep = modifier.options.get("keep", 0.5) if modifier else 0.5
        content = content[: max(1, int(len(content) * keep))]
        finish = "length"
    return content, calls, fault != "no_usage", finish


def calls_as_text(calls: list[ScriptCall], style: str) -> str:
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
    return "\n".join(call_as_text(c, style) for c in calls)


def call_as_text(call: ScriptCall, style: str) -> str:
    arguments: Any = call.args if isinstance(call.args, str) else dict(call.args)
    obj = json.dumps({"name": call.tool, "arguments": arguments})
    if style == "fenced":
        return f"```json\n{obj}\n```"
    if style == "bare":
        return obj
    return f"<tool_call>\n{obj}\n</tool_call>"


def header_value(retry_after: Any) -> str:
    if isinstance(retry_after, float) and retry_after.is_integer():
        return str(int(retry_after))
    return str(retry_after)


def error_response(status: int, message: str, kind: str = "api_error") -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.json_response(body, status=status)


def model_not_found(model: str, native: bool = False, flavour: str = "ollama"
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
    return error_response(404, message)


# --- chat replies -------------------------------------------------------------------------------


def openai_reply(counter: int, model: str, flavour: str, message: dict[str, Any],
                 finish: str, usage: tuple[int, int] | None) -> dict[str, Any]:
    """A ``/v1/chat/completions`` body in ``flavour``'s shape (usage None: left out)."""
    reply: dict[str, Any] = {
        "id": f"chatcmpl-{counter}", "object": "chat.completion",
        "created": int(time.time()), "model": model,
        "system_fingerprint": "fp_scripted",
        "choices": [{"index": 0, "message": servers.shape_message(flavour, message),
                     "finish_reason": finish}],
    }
    if usage is not None:
        reply["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                          "total_tokens": usage[0] + usage[1]}
    return reply


def ollama_reply(model: str, message: dict[str, Any], finish: str,
                 usage: tuple[int, int] | None, *, stream: bool) -> web.Response:
    """Ollama's native API (api/types.go ChatResponse): arguments as objects, no call ids,
    prompt_eval_count/eval_count, NDJSON unless ``stream: false``."""
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
    final = {"model": model,
             "created_at": "2026-12-01T00:00:00Z", "message": message, "done": True,
             "done_reason": "length" if finish == "length" else "stop",
             "total_duration": 1_000_000, "load_duration": 1000,
             "prompt_eval_count": prompt, "prompt_eval_duration": 1000,
             "eval_count": completion, "eval_duration": 1000}
    if stream:  # the default is a stream of NDJSON chunks
        lines = [{**final, "message": {**message, "content": ""}, "done": False}, final]
        for line in lines[:1]:
            line.pop("done_reason", None)
        text = "".join(json.dumps(line) + "\n" for line in lines)
        return web.Response(text=text, content_type="application/x-ndjson")
    return web.json_response(final)


# --- discovery and configuration answers ----------------------------------------------------


def models_list(flavour: str, served: list[str], context_tokens: int | None) -> dict[str, Any]:
    """``GET /v1/models``."""
    owner = _MODEL_OWNER.get(flavour, "library")
    data = []
    for name in served:
        entry: dict[str, Any] = {"id": name, "object": "model", "created": 0, "owned_by": owner}
        if flavour == "vllm":  # vllm/entrypoints/openai/protocol.py ModelCard
            entry.update(root=name, parent=None, max_model_len=context_tokens or 32768)
        data.append(entry)
    return {"object": "list", "data": data}


def ollama_show(context_length: int) -> dict[str, Any]:
    """Ollama's ``POST /api/show`` for the served model."""
    # api/types.go ShowResponse: model_info keys are "<architecture>.<field>".
    return {
        "modelfile": "", "parameters": "", "template": "{{ .Prompt }}",
        "details": {"family": "qwen2", "parameter_size": "14.8B",
                    "quantization_level": "Q4_K_M"},
        "model_info": {"general.architecture": "qwen2", "qwen2.context_length": context_length},
        "capabilities": ["completion", "tools"]}


def llamacpp_props(context_tokens: int | None) -> dict[str, Any]:
    """llama.cpp's ``GET /props``."""
    # tools/server/server.cpp handle_props: n_ctx under default_generation_settings.
    return {"default_generation_settings": {"n_ctx": context_tokens or 4096, "params": {}},
            "total_slots": 1, "model_path": "/models/qwen2.5-14b-instruct-q4_k_m.gguf",
            "chat_template": "..."}


def tools_unconfigured(flavour: str) -> web.Response | None:
    """A request with tools to a server started without tool calling, or None (it ignores it)."""
    if flavour == "llamacpp":  # server: utils.hpp oaicompat_chat_params_parse
        return web.json_response({"error": {
            "code": 500, "message": "tools param requires --jinja flag",
            "type": "server_error"}}, status=500)
    if flavour == "vllm":  # serving_chat.py create_chat_completion
        return web.json_response({
            "object": "error", "message": '"auto" tool choice requires '
            "--enable-auto-tool-choice and --tool-call-parser to be set",
            "type": "BadRequestError", "param": None, "code": 400}, status=400)
    return None
