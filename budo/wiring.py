"""Settings → the agent's parts. ``agent/`` takes plain parameters and never reads settings;
the front ends (``budo investigate``, the bot, the demo, the evaluation) build its parts here,
from the one ``Settings`` that budo/config.py reads.

Imports of the heavy clients (httpx, kubernetes) happen on first use, not at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent import Budgets
from budo.config import Settings

if TYPE_CHECKING:
    from agent import Cluster, OpenAIChatModel


def budgets(settings: Settings) -> Budgets:
    """BUDO_MAX_TURNS / BUDO_MAX_TOKENS / BUDO_RUN_TIMEOUT / BUDO_TOOL_TIMEOUT /
    BUDO_TOOL_OUTPUT_CHARS / BUDO_VERIFY_TIMEOUT / BUDO_CONTEXT_TOKENS."""
    return Budgets(settings.max_turns, settings.max_tokens, settings.run_timeout,
                   settings.tool_timeout, settings.tool_output_chars,
                   context_tokens=settings.context_tokens, verify_timeout=settings.verify_timeout)


def chat_model(settings: Settings, **overrides: Any) -> OpenAIChatModel:
    """The client BUDO_LLM_URL / BUDO_LLM_MODEL / BUDO_LLM_API_KEY / BUDO_LLM_TIMEOUT /
    BUDO_LLM_TEMPERATURE / BUDO_LLM_MAX_OUTPUT_TOKENS / BUDO_CONTEXT_TOKENS say."""
    from agent import OpenAIChatModel

    options: dict[str, Any] = {
        "api_key": settings.llm_api_key, "timeout": settings.llm_timeout,
        "temperature": settings.temperature,
        "max_output_tokens": settings.llm_max_output_tokens or None,
        "context_tokens": settings.context_tokens, **overrides,
    }
    return OpenAIChatModel(settings.llm_url, settings.llm_model, **options)


def cluster(settings: Settings) -> Cluster:
    """The Kubernetes client KUBECONFIG (or the in-cluster account) and BUDO_NAMESPACES say;
    one API request never outlasts the tool budget (and never 10 s)."""
    from agent import Cluster

    return Cluster.from_kubeconfig(settings.kubeconfig, settings.namespaces,
                                   request_timeout=min(10.0, settings.tool_timeout))
