"""What a model server's error body means, and the one line that names the fix.

Each server words the same problems differently; they are recognised here once (sources cited
beside each wording) and turned into ``budo.errors`` types. Configuration problems are
``ModelMisconfigured`` and are never retried: a restart with a flag is the only fix.
"""

from __future__ import annotations

import json
import re
from typing import Any

from budo.errors import ContextOverflow, ModelMisconfigured

# The flag or setting that raises each server's context window.
CONTEXT_SETTING = {
    "ollama": "OLLAMA_CONTEXT_LENGTH on the Ollama server (budo sets num_ctx itself on Ollama's "
              "native API; behind an OpenAI-only proxy set BUDO_CONTEXT_TOKENS to match)",
    "vllm": "vLLM's --max-model-len",
    "llamacpp": "llama-server's -c / --ctx-size",
    "lmstudio": "the model's context length in LM Studio (reload the model)",
    "openai": "the model (pick one with a longer context)",
}
_GENERIC_SETTING = ("the server's context size (Ollama OLLAMA_CONTEXT_LENGTH, vLLM "
                    "--max-model-len, llama.cpp -c)")

_NUMBER_PATTERNS = (
    # vLLM serving_engine.py _validate_input and OpenAI: "maximum context length is N tokens"
    (re.compile(r"maximum context length is (\d+)"), re.compile(
        r"(?:\((\d+) in the messages|resulted in (\d+) tokens|has (\d+) input tokens)")),
    # LM Studio 0.3: "Trying to keep the first N tokens ... context length of only M tokens"
    (re.compile(r"context length of only (\d+)"), re.compile(r"keep the first (\d+) tokens")),
    # llama.cpp: "request (N tokens) exceeds the available context size (M tokens)"
    (re.compile(r"available context size \((\d+)"), re.compile(r"request \((\d+) tokens")),
)
_OVERFLOW_MARKERS = (
    "maximum context length", "context_length_exceeded", "exceed_context_size_error",
    "exceeds the available context size", "when context the overflows",
    "context size has been exceeded",  # LM Studio 0.4
    "longer than the context length",
)


def error_text(body: str) -> str:
    """The human message inside an error body (OpenAI ``error.message``, Ollama ``error``,
    vLLM top-level ``message``), else the body."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, str):
            return error
        message = error.get("message") if isinstance(error, dict) else None
        if isinstance(message, str):
            return message
    return body


def overflow(status: int, body: str, flavour: str) -> ContextOverflow | None:
    if status not in (400, 413, 500):
        return None
    lowered = body.lower()
    if not any(marker in lowered for marker in _OVERFLOW_MARKERS):
        return None
    window = prompt = None
    try:
        data = json.loads(body)
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):  # llama.cpp carries the numbers as fields
            window = error.get("n_ctx") if isinstance(error.get("n_ctx"), int) else None
            prompt = (error.get("n_prompt_tokens")
                      if isinstance(error.get("n_prompt_tokens"), int) else None)
    except ValueError:
        pass
    text = error_text(body)
    for window_re, prompt_re in _NUMBER_PATTERNS:
        found = window_re.search(text)
        if found and window is None:
            window = int(found.group(1))
            numbers = prompt_re.search(text)
            if numbers:
                prompt = int(next(g for g in numbers.groups() if g))
    flavour = flavour if flavour in CONTEXT_SETTING else _flavour_from_wording(lowered)
    setting = CONTEXT_SETTING.get(flavour, _GENERIC_SETTING)
    size = f" of {window} tokens" if window else ""
    counted = f" ({prompt} tokens sent)" if prompt else ""
    return ContextOverflow(
        f"the conversation no longer fits the model's context{size}{counted} — raise {setting}",
        context_tokens=window, prompt_tokens=prompt)


def context_too_small(window: int, source: str, flavour: str) -> ContextOverflow:
    """The run's end when the conversation filled the window and the model, asked for its
    answer without tools, gave none: one line naming the setting to raise (ours as well when
    the window is BUDO_CONTEXT_TOKENS rather than what the server published)."""
    setting = CONTEXT_SETTING.get(flavour, _GENERIC_SETTING)
    if source == "BUDO_CONTEXT_TOKENS" and source not in setting:
        setting += " and BUDO_CONTEXT_TOKENS to match"
    return ContextOverflow(
        f"the model's context window ({window} tokens, from {source}) is too small for this "
        f"investigation: once it was full the model gave no answer — raise {setting}",
        context_tokens=window)


def _flavour_from_wording(lowered: str) -> str:
    if "exceed_context_size_error" in lowered or "available context size" in lowered:
        return "llamacpp"
    if "context the overflows" in lowered or "context size has been exceeded" in lowered:
        return "lmstudio"
    if "context_length_exceeded" in lowered:
        return "openai"
    if "in the completion" in lowered or "badrequesterror" in lowered:
        return "vllm"
    return "unknown"


def misconfigured(status: int, body: str, model: str) -> ModelMisconfigured | None:
    """Server settings that make tool calling impossible; each names the flag."""
    text = body.lower()
    if "requires --jinja" in text:
        # llama.cpp utils.hpp oaicompat_chat_params_parse: 500 on some builds, 400 on others.
        return ModelMisconfigured(
            "llama.cpp's server was started without --jinja, which tool calling needs "
            "— restart llama-server with --jinja"
        )
    if "enable-auto-tool-choice" in text or "tool-call-parser" in text:
        # vLLM serving_chat.py: '"auto" tool choice requires --enable-auto-tool-choice and
        # --tool-call-parser to be set'
        return ModelMisconfigured(
            "vLLM was started without tool calling — restart it with --enable-auto-tool-choice "
            "--tool-call-parser hermes (Qwen2.5; llama3_json for Llama 3.x)"
        )
    if status == 400 and "does not support tools" in text:
        # Ollama server/routes.go: "registry.ollama.ai/library/x does not support tools"
        return ModelMisconfigured(
            f"model '{model}' does not support tool calling "
            f"— pick a tool-capable model (e.g. qwen2.5:14b, llama3.1:8b)"
        )
    return None


def unsupported_parameter(status: int, body: str) -> str | None:
    """OpenAI reasoning models: "Unsupported value: 'temperature' …" or "Unsupported parameter:
    'max_tokens' … Use 'max_completion_tokens' instead." Returns the parameter to change."""
    if status != 400:
        return None
    text = error_text(body)
    if "Unsupported value: 'temperature'" in text or (
        "temperature" in text and "unsupported" in text.lower()
    ):
        return "temperature"
    if "max_tokens" in text and "max_completion_tokens" in text:
        return "max_tokens"
    return None
