"""Ollama's native chat API, both ways (pure functions; HTTP lives in ``agent.model``).

Why not ``/v1``: Ollama's OpenAI endpoint cannot set the context size (its request struct has no
``options``), so a conversation longer than the server's default ``num_ctx`` (4096 on most
hosts) is silently cut from the front, the user's question first. ``POST /api/chat`` takes
``options.num_ctx``. Differences from the OpenAI dialect (ollama api/types.go):

* ``stream`` defaults to true (NDJSON): we always send ``"stream": false``;
* no ``tool_choice``; tool-call ``arguments`` are JSON objects both ways, and calls carry no ids
  (we assign them); a tool result names its tool in ``tool_name``;
* usage is ``prompt_eval_count`` / ``eval_count``; ``done_reason`` "length" is OpenAI's
  ``finish_reason`` "length";
* errors are ``{"error": "text"}``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from agent.context import raw_tokens, raw_tools_tokens
from agent.protocols import Completion, Usage
from agent.toolcalls import recover_text_calls
from agent.wire import tool_call, trim
from budo.errors import ModelResponseError

MIN_NUM_CTX = 8192


def native_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    names: dict[str, str] = {}
    for message in messages:
        role = message.get("role")
        item: dict[str, Any] = {"role": role, "content": message.get("content") or ""}
        if role == "assistant" and message.get("tool_calls"):
            calls = []
            for call in message["tool_calls"]:
                function = call.get("function") or {}
                arguments = function.get("arguments")
                if isinstance(arguments, str):
                    try:
                        arguments = json.loads(arguments or "{}")
                    except ValueError:
                        arguments = {}
                names[str(call.get("id"))] = str(function.get("name") or "")
                calls.append({"function": {"name": function.get("name"),
                                           "arguments": arguments or {}}})
            item["tool_calls"] = calls
        if role == "tool":
            name = message.get("name") or names.get(str(message.get("tool_call_id")))
            if name:
                item["tool_name"] = name
        out.append(item)
    return out


def num_ctx_for(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                reserve: int, cap: int, current: int) -> int:
    """The context this request needs: a power of two at least 8192 with room for the reply,
    never above ``cap`` (the model's trained length or BUDO_CONTEXT_TOKENS) and never below what
    this client already asked for (each change of num_ctx reloads the model)."""
    need = sum(raw_tokens(m) for m in messages) + raw_tools_tokens(tools)
    wanted: int = max(MIN_NUM_CTX, 2 ** math.ceil(math.log2(need * 1.25 + reserve)))
    return min(cap, max(current, wanted))


def completion_from_native(body: dict[str, Any], offered: set[str], url: str) -> Completion:
    message = body.get("message")
    if not isinstance(message, dict):
        raise ModelResponseError(
            f"the Ollama endpoint at {url} answered without a message: {trim(json.dumps(body))}"
        )
    content = message.get("content") or ""
    calls = [tool_call(raw) for raw in message.get("tool_calls") or [] if isinstance(raw, dict)]
    recovered = False
    if not calls and offered:
        calls, content = recover_text_calls(content, offered)
        recovered = bool(calls)
    prompt, completion = body.get("prompt_eval_count"), body.get("eval_count")
    if isinstance(prompt, int) and isinstance(completion, int):
        usage = Usage(prompt_tokens=prompt, completion_tokens=completion)
    else:
        usage = Usage(prompt_tokens=0, completion_tokens=len(content) // 4, estimated=True)
    reason = body.get("done_reason")
    finish = "length" if reason == "length" else ("tool_calls" if calls else "stop")
    return Completion(content=content, tool_calls=calls, usage=usage, finish_reason=finish,
                      recovered_from_text=recovered)


def context_length(show: dict[str, Any]) -> int | None:
    """``model_info["<arch>.context_length"]`` from ``POST /api/show``."""
    info = show.get("model_info")
    if not isinstance(info, dict):
        return None
    arch = info.get("general.architecture")
    value = info.get(f"{arch}.context_length") if arch else None
    if not isinstance(value, int):
        value = next((v for k, v in info.items()
                      if k.endswith(".context_length") and isinstance(v, int)), None)
    return value if isinstance(value, int) and value > 0 else None
