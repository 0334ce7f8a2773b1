"""The OpenAI chat-completions wire format, both ways: outgoing messages shaped so every server
accepts them, incoming bodies turned into a ``Completion`` (lenient tool-call arguments, calls
recovered from text, usage read or estimated). Pure functions; HTTP, retries and error wording
live in ``agent.model``.
"""

from __future__ import annotations

import json
from typing import Any

from agent.call_arguments import new_call_id, parse_arguments
from agent.protocols import Completion, ToolCall, Usage
from agent.text import one_line
from agent.toolcalls import recover_text_calls
from budo.errors import ModelResponseError

BODY_SNIPPET = 300
CHARS_PER_TOKEN = 4


def normalise_message(message: dict[str, Any]) -> dict[str, Any]:
    """Assistant messages: content "" rather than null, tool-call arguments as JSON strings."""
    if message.get("role") != "assistant":
        return message
    out = dict(message)
    if out.get("content") is None:
        out["content"] = ""
    calls = out.get("tool_calls")
    if calls:
        fixed = []
        for call in calls:
            function = dict(call.get("function") or {})
            if not isinstance(function.get("arguments"), str):
                function["arguments"] = json.dumps(function.get("arguments") or {})
            fixed.append({**call, "type": call.get("type", "function"), "function": function})
        out["tool_calls"] = fixed
    elif "tool_calls" in out:
        del out["tool_calls"]  # an empty list upsets some servers as much as null content
    return out


def tool_names(tools: list[dict[str, Any]] | None) -> set[str]:
    names = set()
    for tool in tools or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.add(function["name"])
    return names


def completion_from_body(
    body: dict[str, Any], payload: dict[str, Any], tool_names: set[str], url: str
) -> Completion:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ModelResponseError(
            f"the model endpoint at {url} answered without choices: {trim(json.dumps(body))}"
        )
    choice = choices[0]
    message = choice.get("message") or {}
    content = message.get("content") or ""
    if not isinstance(content, str):  # content parts: [{"type": "text", "text": ...}]
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    refusal = message.get("refusal")
    if not content and isinstance(refusal, str) and refusal.strip():
        # OpenAI puts a safety refusal here with content null: it is an answer, not silence.
        content = f"The model refused: {refusal.strip()}"
    calls = [tool_call(raw) for raw in message.get("tool_calls") or [] if isinstance(raw, dict)]
    legacy = message.get("function_call")
    if not calls and isinstance(legacy, dict):
        calls = [tool_call({"function": legacy})]
    recovered = False
    if not calls and tool_names:
        calls, content = recover_text_calls(content, tool_names)
        recovered = bool(calls)
    finish_reason = choice.get("finish_reason")
    return Completion(
        content=content,
        tool_calls=calls,
        usage=usage(body.get("usage"), payload, content, calls),
        finish_reason=finish_reason if isinstance(finish_reason, str) else None,
        recovered_from_text=recovered,
    )


def tool_call(raw: dict[str, Any]) -> ToolCall:
    function = raw.get("function") or {}
    raw_args = function.get("arguments")
    arguments, error = parse_arguments(raw_args)
    return ToolCall(
        id=str(raw.get("id") or new_call_id()),
        name=str(function.get("name") or ""),
        arguments=arguments,
        raw_arguments=raw_args if isinstance(raw_args, str) else json.dumps(raw_args or {}),
        parse_error=error,
    )


def usage(
    raw: Any, payload: dict[str, Any], content: str, calls: list[ToolCall]
) -> Usage:
    if isinstance(raw, dict):
        prompt, completion = raw.get("prompt_tokens"), raw.get("completion_tokens")
        if isinstance(prompt, int) and isinstance(completion, int):
            return Usage(prompt_tokens=prompt, completion_tokens=completion)
    sent = json.dumps(payload.get("messages", [])) + json.dumps(payload.get("tools") or [])
    produced = content + "".join(c.name + c.raw_arguments for c in calls)
    return Usage(
        prompt_tokens=max(1, len(sent) // CHARS_PER_TOKEN),
        completion_tokens=len(produced) // CHARS_PER_TOKEN,
        estimated=True,
    )



def trim(text: str, limit: int = BODY_SNIPPET) -> str:
    return one_line(text, limit) or "(empty body)"
