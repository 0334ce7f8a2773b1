"""The model client's HTTP layer: one TLS context for every client, and what a failed request
means in one line (Retry-After, the transport's root cause, a missing model, auth).

The TLS context is built once, on first use, not per client: ``httpx.AsyncClient()`` reloads
the CA bundle each time (~18 ms of CPU), which every run and every test paid.
"""

from __future__ import annotations

import email.utils
import functools
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx

from agent.wire import trim
from budo.errors import ModelResponseError

_MODEL_MISSING_HINTS = ("not found", "does not exist", "model_not_found", "no such model",
                        "try pulling")


@functools.cache
def shared_tls() -> ssl.SSLContext:
    """The TLS context httpx would build for ``verify=True`` (certifi, or SSL_CERT_FILE /
    SSL_CERT_DIR), built once and shared: SSLContext is safe to share between clients."""
    return httpx.create_ssl_context()



def names_missing_model(body: str, model: str, status: int) -> bool:
    """A 404 naming the model, or a 400/404 saying a model is missing. (A bare 404 is a wrong
    URL, and a 400 that merely mentions the model is some other complaint.)"""
    lowered = body.lower()
    if "model" not in lowered:
        return False
    if any(hint in lowered for hint in _MODEL_MISSING_HINTS):
        return True
    return status == 404 and model.lower() in lowered


def retry_after_seconds(value: str | None, clock: Callable[[], float] = time.time
                         ) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date (RFC 9110). None when absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - clock())


def http_error(url: str, status: int, text: str) -> ModelResponseError:
    return ModelResponseError(f"the model endpoint at {url} answered HTTP {status}: {trim(text)}")


def auth_message(base_url: str, status: int) -> str:
    return (
        f"the model endpoint at {base_url} refused the request (HTTP {status}) "
        f"— check BUDO_LLM_API_KEY"
    )


def transport_reason(exc: BaseException) -> str:
    """The root cause in a few words: httpx wraps the OSError that says what happened."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    if any(isinstance(e, socket.gaierror) for e in chain):
        return "the host name does not resolve"
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return "TLS handshake failed"
    if isinstance(exc, httpx.TimeoutException):
        return "the connection timed out"
    text = str(exc) or type(exc).__name__
    return "connection refused" if "refused" in text.lower() else trim(text, 120)


def json_object(response: httpx.Response, url: str) -> dict[str, Any]:
    """A 200's body, which must be a JSON object; anything else is one line naming it."""
    try:
        body = response.json()
    except ValueError as exc:
        raise ModelResponseError(
            f"the model endpoint at {url} answered 200 with a body that is not JSON: "
            f"{trim(response.text)}"
        ) from exc
    if not isinstance(body, dict):
        raise ModelResponseError(
            f"the model endpoint at {url} answered with JSON that is not an object: "
            f"{trim(response.text)}"
        )
    return body


def not_a_chat_api(base_url: str, status: int) -> str:
    """501 Not Implemented / 405 Method Not Allowed to a POST: a web server, not a chat API
    (Python's http.server, a static site, a proxy's landing page)."""
    return (f"{base_url} is not an OpenAI-compatible endpoint (HTTP {status} to POST "
            "/chat/completions) — BUDO_LLM_URL should be the /v1 base of Ollama, vLLM, "
            "llama.cpp or OpenAI")


def no_chat_endpoint(url: str, text: str) -> str:
    return (f"no chat endpoint at {url} (HTTP 404: {trim(text)}) — BUDO_LLM_URL should be the "
            "OpenAI-compatible base, usually ending in /v1")
