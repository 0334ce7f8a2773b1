"""Server flavours for the scripted model: what Ollama, vLLM, llama.cpp, OpenAI and LM Studio do
with the same request, read from their sources (cited beside each behaviour).

``ScriptedModelServer(turns, flavour="ollama", context_tokens=4096)`` counts every request's
prompt tokens with ``count_tokens`` and, over the context size, does what that server does:

* **ollama**: ``/v1/chat/completions`` has no ``options`` (ollama openai/openai.go
  ``ChatCompletionRequest``), so the default ``num_ctx`` applies; native ``POST /api/chat`` takes
  ``options.num_ctx``. Over it, ollama server/prompt.go ``chatPrompt`` "truncates any messages
  that exceed the context window of the model, making sure to always include 1) the latest
  message and 2) system messages": it drops the oldest non-system messages, silently, and the
  model answers from what is left. ``usage.prompt_tokens`` counts what was kept.
* **vllm**: 400 from vllm/entrypoints/openai/serving_engine.py ``_validate_input``: "This
  model's maximum context length is N tokens. However, you requested M tokens (P in the
  messages, C in the completion). Please reduce the length of the messages or completion."
* **llamacpp**: 400 ``exceed_context_size_error`` with ``n_prompt_tokens`` and ``n_ctx``
  (llama.cpp tools/server/server-context.cpp, ``format_error_response``).
* **openai**: 400 ``context_length_exceeded`` (platform.openai.com/docs/guides/error-codes).
* **lmstudio**: 400 ``{"error": "Trying to keep the first N tokens when context the overflows.
  However, the model is loaded with context length of only M tokens, …"}`` (LM Studio 0.3).

The tokenizer is an approximation of Qwen2's (digits are single tokens, words up to ten letters
one token, punctuation in runs of up to three): on budo's 200-line frontend log it gives 1.97
chars/token against the 2.1 measured with the real tokenizer, so it is a little harsher than
the real thing, never kinder.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

FLAVOURS = ("generic", "ollama", "vllm", "llamacpp", "openai", "lmstudio")
OLLAMA_DEFAULT_NUM_CTX = 4096   # < 24 GiB VRAM since 0.15.5; the default from 0.6.7 before that
OLLAMA_VERSION = "0.12.6"
_TOKEN = re.compile(r" ?[A-Za-z]{1,10}|\d|\s+|[^\sA-Za-z\d]{1,3}")
MESSAGE_FRAMING = 4             # <|im_start|>role\n … <|im_end|>\n


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def message_tokens(message: dict[str, Any]) -> int:
    content = message.get("content") or ""
    if not isinstance(content, str):
        content = json.dumps(content)
    calls = message.get("tool_calls") or []
    framing = MESSAGE_FRAMING + (count_tokens(json.dumps(calls)) if calls else 0)
    return framing + count_tokens(content)


def prompt_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> int:
    # The chat template renders the tool schemas into the system prompt.
    return 3 + sum(message_tokens(m) for m in messages) + (
        count_tokens(json.dumps(tools)) if tools else 0)


def ollama_truncate(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                    num_ctx: int) -> list[dict[str, Any]]:
    """ollama server/prompt.go chatPrompt: start with every message and drop from the front until
    what remains, plus every system message, fits; the latest message is always kept."""
    last = len(messages) - 1
    start = 0
    for i in range(len(messages)):
        system = [m for m in messages[:i] if m.get("role") == "system"]
        if prompt_tokens(system + messages[i:], tools) <= num_ctx or i == last:
            start = i
            break
    return [m for m in messages[:start] if m.get("role") == "system"] + messages[start:]


@dataclass
class Overflow:
    status: int
    body: dict[str, Any]


def overflow(flavour: str, prompt: int, context: int, max_tokens: int | None) -> Overflow | None:
    """The server's refusal when ``prompt`` (+ the completion it must reserve) exceeds ``context``;
    None when it fits or the flavour truncates instead (Ollama)."""
    if flavour == "vllm":
        # serving_engine.py: max_tokens None means "the rest of the context".
        completion = max_tokens if max_tokens is not None else max(0, context - prompt)
        if prompt >= context or prompt + completion > context:
            message = (f"This model's maximum context length is {context} tokens. However, you "
                       f"requested {prompt + completion} tokens ({prompt} in the messages, "
                       f"{completion} in the completion). Please reduce the length of the "
                       f"messages or completion.")
            return Overflow(400, {"object": "error", "message": message,
                                  "type": "BadRequestError", "param": None, "code": 400})
        return None
    if prompt < context:
        return None
    if flavour == "llamacpp":
        return Overflow(400, {"error": {
            "code": 400, "type": "exceed_context_size_error", "n_prompt_tokens": prompt,
            "n_ctx": context, "message": f"request ({prompt} tokens) exceeds the available "
                                         f"context size ({context} tokens), try increasing it"}})
    if flavour == "openai":
        return Overflow(400, {"error": {
            "message": f"This model's maximum context length is {context} tokens. However, your "
                       f"messages resulted in {prompt} tokens. Please reduce the length of the "
                       f"messages.",
            "type": "invalid_request_error", "param": "messages",
            "code": "context_length_exceeded"}})
    if flavour == "lmstudio":
        return Overflow(400, {"error": (
            f"Trying to keep the first {prompt} tokens when context the overflows. However, the "
            f"model is loaded with context length of only {context} tokens, which is not "
            f"enough. Try to load the model with a larger context length, or provide a shorter "
            f"input")})
    return None


def call_id(flavour: str, counter: int, index: int) -> str:
    if flavour == "vllm":  # vllm/entrypoints/openai/protocol.py random_tool_call_id
        return f"chatcmpl-tool-{uuid.uuid4().hex}"
    if flavour == "llamacpp":  # server: gen_tool_call_id(), 32 random alphanumerics
        return uuid.uuid4().hex
    if flavour == "ollama":  # openai/openai.go toolCallId(): "call_" + 8 random chars
        return f"call_{uuid.uuid4().hex[:8]}"
    return f"call_{counter:04d}_{index}"


def shape_message(flavour: str, message: dict[str, Any]) -> dict[str, Any]:
    """Per-server differences in an otherwise identical assistant message."""
    if flavour == "vllm" and message.get("tool_calls"):
        message["content"] = None  # vLLM's hermes parser: content null beside tool calls
    if flavour == "openai":
        message.setdefault("refusal", None)
        if message.get("tool_calls") and not message.get("content"):
            message["content"] = None
    return message


def unsupported_parameter(flavour: str, body: dict[str, Any], reasoning: bool
                          ) -> dict[str, Any] | None:
    """OpenAI reasoning models (gpt-5, o-series) refuse temperature != 1 and max_tokens."""
    if flavour != "openai" or not reasoning:
        return None
    if "max_tokens" in body:
        return {"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with "
                          "this model. Use 'max_completion_tokens' instead.",
                          "type": "invalid_request_error", "param": "max_tokens",
                          "code": "unsupported_parameter"}}
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        return {"error": {"message": f"Unsupported value: 'temperature' does not support "
                          f"{temperature} with this model. Only the default (1) value is "
                          f"supported.", "type": "invalid_request_error",
                          "param": "temperature", "code": "unsupported_value"}}
    return None


def invalid_history(flavour: str, messages: list[dict[str, Any]]) -> str | None:
    """Ollama's /v1 decodes every earlier tool call's arguments (openai/openai.go
    fromChatRequest) and refuses the request when one is not JSON."""
    if flavour != "ollama":
        return None
    for message in messages:
        for call in message.get("tool_calls") or []:
            arguments = (call.get("function") or {}).get("arguments")
            if isinstance(arguments, str):
                try:
                    json.loads(arguments)
                except ValueError:
                    return "invalid tool call arguments"
    return None
