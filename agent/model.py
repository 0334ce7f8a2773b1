"""The chat-model client: raw httpx against any OpenAI-compatible ``/chat/completions``.

Ollama, vLLM, llama.cpp's server and OpenAI all speak this dialect with small differences, and
the differences are handled here rather than in the loop:

* retries with exponential backoff on connect errors, read stalls, 429 (honouring Retry-After,
  in seconds or as an HTTP date, capped) and 5xx; other 4xx fail at once;
* one actionable line per failure (``budo.errors``): nothing listening, model not pulled, stall,
  anything else with the status and a trimmed body;
* llama.cpp reads a missing ``tool_choice`` as "no tools", so ``"auto"`` is sent whenever tools
  are; on the final turn (``tool_choice="none"`` or no tools) no tools are sent at all;
* an assistant message with ``tool_calls`` and ``content: null`` makes some servers answer 500,
  so outgoing assistant messages carry ``""`` instead (and dict arguments become JSON strings);
* tool-call arguments are parsed leniently, and calls a small model wrote as text in
  ``content`` are recovered (``agent.toolcalls``);
* ``usage`` is read when sent and estimated as chars/4 when not (``Usage.estimated``);
* the server is identified once, before the first request (``detect``): Ollama answers
  ``GET /api/version`` at the server root and is then spoken to through its native
  ``/api/chat`` (``agent.ollama``: the only way to set ``num_ctx``); the context window is read
  where the server publishes it (Ollama ``/api/show``, vLLM ``/v1/models`` ``max_model_len``,
  llama.cpp ``/props`` ``n_ctx``) for the loop's budget (``context_window``);
* each server's overflow refusal becomes ``ContextOverflow``, configuration refusals
  ``ModelMisconfigured`` (never retried), both with one line naming the setting
  (``agent.server_errors``); a 400 for ``temperature`` or ``max_tokens`` (OpenAI reasoning
  models) is answered by resending without it / as ``max_completion_tokens``, remembered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Self

import httpx

from agent import ollama, server_errors
from agent.context import DEFAULT_CONTEXT_TOKENS, REPLY_RESERVE_MAX
from agent.discovery import discover
from agent.model_http import (
    auth_message,
    http_error,
    json_object,
    names_missing_model,
    no_chat_endpoint,
    not_a_chat_api,
    retry_after_seconds,
    shared_tls,
    transport_reason,
)
from agent.protocols import Completion
from agent.wire import completion_from_body, normalise_message, tool_names
from budo.errors import (
    ModelError,
    ModelMisconfigured,
    ModelNotFound,
    ModelResponseError,
    ModelTimeout,
    ModelUnreachable,
)

log = logging.getLogger("budo.model")

# Phrases servers use when the model name is wrong (Ollama, vLLM, OpenAI, LiteLLM).


class _Resend(Exception):
    """The server refused one request parameter; resend without it (not a retry)."""

    def __init__(self, parameter: str) -> None:
        super().__init__(parameter)
        self.parameter = parameter


class _Retryable(Exception):
    """One failed attempt worth retrying; ``final`` is raised when the retries run out."""

    def __init__(self, final: ModelError, delay: float | None = None,
                 refused: bool = False) -> None:
        super().__init__(str(final))
        self.final, self.delay, self.refused = final, delay, refused


class OpenAIChatModel:
    """An ``agent.protocols.ChatModel`` over httpx. Use as ``async with`` or call ``aclose``."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = 30.0,
        client: httpx.AsyncClient | None = None,
        *,
        temperature: float | None = 0.0,
        max_output_tokens: int | None = None,
        context_tokens: int = DEFAULT_CONTEXT_TOKENS,
        detect: bool = True,
        check_timeout: float = 2.0,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        connect_retries: int | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # The server root: Ollama's /api and llama.cpp's /props live beside /v1, not under it.
        self.root_url = self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url
        self.model = model
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        # A refused connection means nothing listens there: the terminal retries it once
        # (a server restarting), not for seconds. None: as often as any other failure.
        self.connect_retries = self.max_retries if connect_retries is None else max(
            0, min(connect_retries, self.max_retries))
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.temperature = temperature          # None: not sent (the server's default)
        self.max_output_tokens = max_output_tokens
        self.context_tokens = context_tokens    # caps Ollama's num_ctx; the fallback window
        self.check_timeout = check_timeout
        self._sleep, self._clock = sleep, clock
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(verify=shared_tls())
        # What detection learns, once: the server kind, whether to use Ollama's native API,
        # and the context window with where it came from.
        self._detect_pending = detect
        self.flavour = "unknown"
        self.native = False
        self._window: tuple[int, str] | None = None
        self._num_ctx = 0
        self._token_parameter = "max_tokens"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client, unless it was passed in (then its owner closes it)."""
        if self._owns_client:
            await self._client.aclose()

    # --- the one call the loop makes --------------------------------------------------------

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | None = None,
    ) -> Completion:
        """One assistant turn. Raises ``ModelError`` subclasses, never for bad tool arguments
        (those come back as ``ToolCall(arguments=None, parse_error=...)``)."""
        await self.detect()
        offer_tools = bool(tools) and tool_choice != "none"
        offered = tool_names(tools) if offer_tools else set()
        if self.native:
            return await self._complete_native(messages, tools if offer_tools else None, offered)
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [normalise_message(m) for m in messages],
            "stream": False,
        }
        if self.temperature is not None:
            payload["temperature"] = self.temperature
        if self.max_output_tokens:
            payload[self._token_parameter] = self.max_output_tokens
        if offer_tools:
            payload["tools"] = tools
            payload["tool_choice"] = tool_choice or "auto"
        url = self._url("/chat/completions")
        body = await self._post_adjusting(url, payload)
        return completion_from_body(body, payload, offered, url)

    async def _complete_native(self, messages: list[dict[str, Any]],
                               tools: list[dict[str, Any]] | None, offered: set[str]
                               ) -> Completion:
        cap = self._window[0] if self._window else self.context_tokens
        reserve = self.max_output_tokens or REPLY_RESERVE_MAX
        self._num_ctx = ollama.num_ctx_for(messages, tools, reserve, cap, self._num_ctx)
        options: dict[str, Any] = {"num_ctx": self._num_ctx}
        if self.temperature is not None:
            options["temperature"] = self.temperature
        if self.max_output_tokens:
            options["num_predict"] = self.max_output_tokens
        payload: dict[str, Any] = {"model": self.model,
                                   "messages": ollama.native_messages(messages),
                                   "stream": False, "options": options}
        if tools:
            payload["tools"] = tools
        url = f"{self.root_url}/api/chat"
        body = await self._post_adjusting(url, payload)
        return ollama.completion_from_native(body, offered, url)

    async def _post_adjusting(self, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST, and when the server refuses ``temperature`` or ``max_tokens`` resend without
        it (or as ``max_completion_tokens``) and remember that for every later request."""
        for _ in range(3):
            try:
                return await self._post_with_retries(url, payload)
            except _Resend as refused:
                if refused.parameter == "temperature" and "temperature" in payload:
                    log.warning("%s refuses temperature; sending none from now on", self.model)
                    self.temperature = None
                    del payload["temperature"]
                elif refused.parameter == "max_tokens" and "max_tokens" in payload:
                    self._token_parameter = "max_completion_tokens"
                    payload["max_completion_tokens"] = payload.pop("max_tokens")
                else:
                    raise refused.__cause__ or ModelResponseError(str(refused)) from refused
        return await self._post_with_retries(url, payload)

    # --- discovery --------------------------------------------------------------------------

    async def detect(self) -> str:
        """Identify the server once (never raises; ``agent.discovery``): ``flavour`` becomes
        ollama, vllm, llamacpp, lmstudio, openai or unknown, and the window is read where
        published. Ollama is then spoken to natively."""
        if self._detect_pending:
            self._detect_pending = False
            server = await discover(self._get_json, self.base_url, self.root_url, self.model,
                                    self.context_tokens)
            self.flavour, self._window = server.flavour, server.window
            self.native = server.native_ollama
        return self.flavour

    @property
    def counts_prompt_in_full(self) -> bool:
        """Whether ``usage.prompt_tokens`` is the whole prompt, so the loop may calibrate on it
        and read a shortfall as truncation. Not on Ollama's native API: some versions leave
        cached tokens out of ``prompt_eval_count`` or omit it (ollama#2068, #16428), and budo
        sets ``num_ctx`` there itself, so nothing is cut."""
        return not self.native

    async def context_window(self) -> tuple[int, str] | None:
        """(tokens, where that number came from), when the server publishes it."""
        await self.detect()
        return self._window

    async def _get_json(self, url: str, post: dict[str, Any] | None = None) -> Any:
        """Parsed JSON of a 200 answer, else None; for discovery, so short and never raising."""
        try:
            if post is None:
                response = await self._client.get(url, headers=self._headers,
                                                  timeout=self.check_timeout)
            else:
                response = await self._client.post(url, json=post, headers=self._headers,
                                                   timeout=self.check_timeout)
            return response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    # --- liveness ---------------------------------------------------------------------------

    async def check(self) -> str:
        """One line saying the endpoint answers and serves the model; fails fast (2 s) with
        ModelUnreachable / ModelNotFound. No retries: this is for deciding, not for working."""
        url = self._url("/models")
        await self.detect()
        try:
            response = await self._client.get(
                url, headers=self._headers, timeout=self.check_timeout
            )
        except httpx.TimeoutException as exc:
            raise ModelUnreachable(
                f"no model endpoint answers at {self.base_url} within {self.check_timeout:g}s "
                f"— start Ollama (`ollama serve`) or set BUDO_LLM_URL"
            ) from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code in (401, 403):
            raise ModelResponseError(auth_message(self.base_url, response.status_code))
        if response.status_code != 200:
            return (
                f"endpoint answers at {self.base_url} but lists no models "
                f"(HTTP {response.status_code}); model '{self.model}' is unchecked"
            )
        try:
            entries = response.json().get("data") or []
            ids = [str(e.get("id")) for e in entries if isinstance(e, dict)]
            owners = {e.get("owned_by") for e in entries if isinstance(e, dict)}
        except (ValueError, AttributeError):
            return f"endpoint answers at {self.base_url}; its model list is not JSON (unchecked)"
        # llama.cpp serves whatever file it loaded, whatever name the request carries.
        if self.model in ids or f"{self.model}:latest" in ids or owners == {"llamacpp"}:
            return f"model '{self.model}' is available at {self.base_url}"
        raise self._not_found(ids)

    # --- plumbing ---------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _unreachable(self, exc: Exception) -> ModelUnreachable:
        return ModelUnreachable(
            f"no model endpoint answers at {self.base_url}: {transport_reason(exc)} "
            f"— start Ollama (`ollama serve`) or set BUDO_LLM_URL"
        )

    def _not_found(self, served: list[str] | None = None) -> ModelNotFound:
        if self.flavour == "ollama":
            fix = f"run `ollama pull {self.model}` (or set BUDO_LLM_MODEL)"
        elif served:
            fix = f"it serves {', '.join(served[:8])}; set BUDO_LLM_MODEL to one of them"
        else:
            fix = "set BUDO_LLM_MODEL to a model the server serves"
        return ModelNotFound(f"model '{self.model}' is not available at {self.base_url} — {fix}")

    async def _served_models(self) -> list[str]:
        listing = await self._get_json(self._url("/models"))
        entries = listing.get("data") if isinstance(listing, dict) else None
        return [str(e.get("id")) for e in entries or [] if isinstance(e, dict)]

    async def _post_with_retries(self, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        attempt = 0
        reported: str | None = None
        while True:
            try:
                return await self._post_once(url, payload)
            except ModelNotFound:
                if self.flavour == "ollama":
                    raise
                raise self._not_found(await self._served_models()) from None
            except _Retryable as failure:
                limit = self.connect_retries if failure.refused else self.max_retries
                if attempt >= limit:
                    raise failure.final from failure.__cause__
                delay = failure.delay
                if delay is None:
                    delay = self.backoff * (2**attempt)
                attempt += 1
                # The reason once (the final error repeats it); later retries just count.
                reason = "connection refused" if failure.refused else str(failure.final)
                shown = "" if reason == reported else f" ({reason})"
                reported = reason
                log.warning("model request failed%s; retry %d/%d in %.1fs",
                            shown, attempt, limit, delay)
                await self._sleep(delay)

    async def _post_once(self, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0))
        try:
            response = await self._client.post(
                url, json=payload, headers=self._headers, timeout=timeout
            )
        except httpx.ConnectTimeout as exc:
            raise _Retryable(self._unreachable(exc)) from exc
        except httpx.TimeoutException as exc:
            raise _Retryable(
                ModelTimeout(
                    f"the model at {self.base_url} did not answer within {self.timeout:g}s "
                    f"(after {self.max_retries + 1} attempts) — raise BUDO_LLM_TIMEOUT or use "
                    f"a smaller model"
                )
            ) from exc
        except httpx.ConnectError as exc:
            raise _Retryable(self._unreachable(exc), refused=True) from exc
        except httpx.TransportError as exc:  # dropped mid-reply, protocol errors
            raise _Retryable(
                ModelResponseError(
                    f"the model endpoint at {self.base_url} dropped the connection: "
                    f"{transport_reason(exc)}"
                )
            ) from exc
        return self._body_or_raise(response, url)

    def _body_or_raise(self, response: httpx.Response, url: str) -> dict[str, Any]:
        status = response.status_code
        if status == 200:
            return json_object(response, url)
        text = response.text
        if status in (400, 404) and names_missing_model(text, self.model, status):
            raise self._not_found()
        wrong = server_errors.misconfigured(status, text, self.model)
        if wrong is not None:
            raise ModelMisconfigured(f"{wrong} (at {self.base_url})")
        overflow = server_errors.overflow(status, text, self.flavour)
        if overflow is not None:
            raise overflow
        parameter = server_errors.unsupported_parameter(status, text)
        if parameter is not None:
            raise _Resend(parameter) from http_error(url, status, text)
        if status == 429:
            delay = retry_after_seconds(response.headers.get("Retry-After"), self._clock)
            delay = None if delay is None else min(delay, self.max_retry_after)
            raise _Retryable(http_error(url, status, text), delay=delay)
        if status in (405, 501):  # a web server, not a chat API: not retried
            raise ModelResponseError(not_a_chat_api(self.base_url, status))
        if status >= 500:
            raise _Retryable(http_error(url, status, text))
        if status in (401, 403):
            raise ModelResponseError(auth_message(self.base_url, status))
        if status == 404:
            raise ModelResponseError(no_chat_endpoint(url, text))
        raise http_error(url, status, text)
