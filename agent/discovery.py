"""Which server answers at the model URL, and how large its context window is.

Asked once per client, before the first chat request, with short timeouts; never raises (a
server that answers none of these is "unknown" and the budget falls back to
BUDO_CONTEXT_TOKENS). Where each server publishes what:

* Ollama: ``GET /api/version`` at the server root identifies it (server/routes.go);
  ``POST /api/show`` gives ``model_info["<arch>.context_length"]``, the trained length.
* vLLM: ``GET /v1/models`` entries carry ``max_model_len`` (entrypoints/openai/protocol.py
  ``ModelCard``).
* llama.cpp: ``/v1/models`` entries are ``owned_by: "llamacpp"``; ``GET /props`` gives
  ``default_generation_settings.n_ctx`` (tools/server/server.cpp ``handle_props``).
* LM Studio: ``owned_by: "organization_owner"``. OpenAI: ``api.openai.com`` or ``owned_by``
  ``system``/``openai``; neither publishes the window.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from agent import ollama

GetJson = Callable[[str, dict[str, Any] | None], Awaitable[Any]]


@dataclass(frozen=True)
class Server:
    flavour: str = "unknown"                # ollama, vllm, llamacpp, lmstudio, openai, unknown
    window: tuple[int, str] | None = None   # (tokens, where the number came from)

    @property
    def native_ollama(self) -> bool:
        return self.flavour == "ollama"


async def discover(get_json: GetJson, base_url: str, root_url: str, model: str,
                   context_cap: int) -> Server:
    """``get_json(url, body)`` GETs (body None) or POSTs and returns parsed JSON or None."""
    version = await get_json(f"{root_url}/api/version", None)
    if isinstance(version, dict) and isinstance(version.get("version"), str):
        # "name" too: Ollama before ShowRequest.Model existed read only that.
        show = await get_json(f"{root_url}/api/show", {"model": model, "name": model})
        length = ollama.context_length(show) if isinstance(show, dict) else None
        if not length:
            return Server("ollama")
        window = min(length, context_cap)
        source = ("Ollama /api/show" if window == length
                  else f"BUDO_CONTEXT_TOKENS (model trained for {length})")
        return Server("ollama", (window, source))
    listing = await get_json(f"{base_url}/models", None)
    entries = listing.get("data") if isinstance(listing, dict) else None
    entries = [e for e in entries or [] if isinstance(e, dict)]
    mine = next((e for e in entries if e.get("id") == model), entries[0] if entries else {})
    owners = {e.get("owned_by") for e in entries}
    if isinstance(mine.get("max_model_len"), int):
        return Server("vllm", (mine["max_model_len"], "vLLM /v1/models max_model_len"))
    if "llamacpp" in owners:
        props = await get_json(f"{root_url}/props", None)
        n_ctx = None
        if isinstance(props, dict):
            settings = props.get("default_generation_settings") or {}
            n_ctx = settings.get("n_ctx", props.get("n_ctx"))
        if isinstance(n_ctx, int) and n_ctx > 0:
            return Server("llamacpp", (n_ctx, "llama.cpp /props n_ctx"))
        return Server("llamacpp")
    if "organization_owner" in owners:
        return Server("lmstudio")
    if "api.openai.com" in base_url or owners & {"system", "openai"}:
        return Server("openai")
    return Server()
