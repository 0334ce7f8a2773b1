"""SlackEmulator: a stateful Slack Web API + Socket Mode server on 127.0.0.1, for tests and benches.

    emu = SlackEmulator(); await emu.start()
    client = AsyncWebClient(token="xoxb-test", base_url=emu.api_url)
    ...; await emu.wait_for(lambda: emu.thread("C1", ts)); await emu.stop()
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from aiohttp import web

from .blocks import validate_blocks
from .limits import Limits
from .socket_mode import SocketModeHub
from .state import (
    BOT_USER_ID,
    Call,
    Ephemeral,
    Message,
    ResponseUrlContext,
    ResponseUrlPost,
    UploadedFile,
    Workspace,
)
from .webapi import APP_TOKEN_METHODS, HANDLERS, MAX_TEXT, ApiError

BOT_TOKEN = "xoxb-test"
APP_TOKEN = "xapp-test"
T = TypeVar("T")
# What Slack's edge serves when the API is down: an HTML page, not JSON (status.slack.com
# incidents show 500/502/503 with a "Slack is temporarily unavailable" page).
SLACK_5XX_HTML = ("<!DOCTYPE html><html><head><title>Slack is temporarily unavailable"
                  "</title></head><body><h1>Server Error</h1><p>Slack is having some trouble"
                  "</p></body></html>")
_JSON_FIELDS = ("blocks", "attachments", "metadata", "files")


class SlackEmulator:
    """Slack as seen by a bot: Web API at `api_url`, Socket Mode at `socket_url`, plus state."""

    def __init__(self, *, bot_tokens: tuple[str, ...] = (BOT_TOKEN,),
                 app_tokens: tuple[str, ...] = (APP_TOKEN,)) -> None:
        self.bot_tokens, self.app_tokens = set(bot_tokens), set(app_tokens)
        self.workspace = Workspace()
        self._changed = asyncio.Event()
        self.socket = SocketModeHub(on_change=self._changed.set)
        self.calls: list[Call] = []
        self.response_posts: list[ResponseUrlPost] = []
        self.not_in_channel: set[str] = set()
        self.not_in_channel_users: dict[str, set[str]] = {}
        self._response_contexts: dict[str, ResponseUrlContext] = {}
        self.limits = Limits()
        self._slow_answers: dict[str, tuple[float, int]] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> SlackEmulator:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_post("/response-url/{hook_id}", self._handle_response_url)
        app.router.add_get("/socket-mode", self.socket.handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        await self.socket.disconnect_all("link_disabled", close=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """For AsyncWebClient(base_url=...): the trailing slash matters to slack_sdk."""
        return f"{self.base_url}/api/"

    @property
    def socket_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/socket-mode"

    # ---- configuration ---------------------------------------------------------------------
    def set_usergroup(self, group_id: str, user_ids: list[str]) -> None:
        self.workspace.usergroups[group_id] = list(user_ids)

    def add_user(self, user_id: str, name: str | None = None, *, real_name: str | None = None,
                 is_bot: bool = False, deleted: bool = False, tz: str = "Etc/UTC") -> None:
        info = self.workspace.user_info(user_id)
        name = name or info["name"]
        real = real_name or name
        info.update(name=name, real_name=real, is_bot=is_bot, deleted=deleted, tz=tz,
                    profile={**info["profile"], "real_name": real, "display_name": name})
        self.workspace.users[user_id] = info

    def add_channel(self, channel_id: str, name: str) -> None:
        self.workspace.channels[channel_id] = name

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """The next `times` calls of `method` get HTTP 429 + Retry-After, as Slack's tiers do."""
        self.limits.rate_limit(method, times, retry_after)

    def fail(self, method: str, error: str, times: int = 1,
             when: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """The next `times` calls of `method` (those `when(params)` accepts) answer
        {"ok": false, "error": error} with HTTP 200, as Slack answers API errors."""
        self.limits.fail(method, error, times, when)

    def fail_http(self, method: str, status: int = 500, body: str = SLACK_5XX_HTML,
                  content_type: str = "text/html", times: int = 1,
                  when: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """The next `times` calls of `method` fail before reaching the API: HTTP `status` with
        a non-JSON body, as Slack's edge answers during an incident (an HTML error page with
        503/500/502). slack_sdk cannot parse such a body (`ContentTypeError` leaves `data`
        empty; a `text/plain` body becomes a `str`), see slack_sdk/web/async_internal_utils.py
        `_request_with_session`; its AsyncServerErrorRetryHandler retries only 500 and 503.
        `when(params)` narrows it to some calls (e.g. only top-level posts)."""
        self.limits.fail_http(method, status, body, content_type, times, when)

    def heal(self) -> None:
        """Slack is back: injected failures (fail, fail_http, rate_limit) stop."""
        self.limits = Limits()

    def revoke(self, token: str) -> None:
        """Revoke a bot or app token: later calls with it answer `invalid_auth` (HTTP 200),
        what Slack answers for a revoked or uninstalled token (docs: auth.test errors)."""
        self.bot_tokens.discard(token)
        self.app_tokens.discard(token)

    def answer_slowly(self, method: str, seconds: float, times: int = 1) -> None:
        """The next `times` calls of `method` take effect at once (the message is in the
        channel, clients see it) but their answer reaches the caller `seconds` later: the
        network and Slack's own latency, during which a person may already click."""
        self._slow_answers[method] = (seconds, times)

    def limit_post_rate(self, per_second: float = 1.0, burst: int = 3,
                        methods: tuple[str, ...] = ("chat.postMessage",)) -> None:
        """Enforce Slack's per-channel posting limit: a call beyond the bucket gets 429."""
        self.limits.limit_post_rate(per_second, burst, methods)

    # ---- HTTP handlers ---------------------------------------------------------------------
    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], bool]:
        params: dict[str, Any] = dict(request.query)
        body = await request.read()
        is_json = request.content_type == "application/json"
        if body and is_json:
            parsed = json.loads(body)
            if not isinstance(parsed, dict):
                raise ValueError("JSON body is not an object")
            params.update(parsed)
        elif body:
            params.update(parse_qsl(body.decode(), keep_blank_values=True))
        return params, is_json

    def _token_error(self, method: str, request: web.Request, params: dict[str, Any],
                     is_json: bool) -> str | None:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        if token is None and not is_json:  # Slack ignores a token inside a JSON body
            token = params.get("token")
        if not token:
            return "not_authed"
        if method in APP_TOKEN_METHODS:
            if token in self.app_tokens:
                return None
            return "not_allowed_token_type" if token in self.bot_tokens else "invalid_auth"
        if token in self.bot_tokens:
            return None
        return "not_allowed_token_type" if token in self.app_tokens else "invalid_auth"

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            params, is_json = await self._read_params(request)
        except (ValueError, UnicodeDecodeError):
            return self._record(method, {}, {"ok": False, "error": "invalid_json"})
        public_params = {k: v for k, v in params.items() if k != "token"}
        for key in _JSON_FIELDS:  # form bodies carry these as JSON text: record them parsed
            if isinstance(public_params.get(key), str):
                try:
                    public_params[key] = json.loads(public_params[key])
                except ValueError:
                    pass  # left as text: the handler answers with Slack's format error
        http_failure = self.limits.injected_http_failure(method, public_params)
        if http_failure is not None:
            status, body, content_type = http_failure
            self.calls.append(Call(method, public_params, time.monotonic(),
                                   {"ok": False, "error": f"http_{status}"}))
            self._changed.set()
            return web.Response(status=status, text=body, content_type=content_type)
        handler = HANDLERS.get(method)
        if handler is None:
            return self._record(method, public_params, {"ok": False, "error": "unknown_method"})
        token_error = self._token_error(method, request, params, is_json)
        if token_error:
            return self._record(method, public_params, {"ok": False, "error": token_error})
        retry_after = self.limits.retry_after(method, public_params.get("channel"))
        if retry_after is not None:
            return self._record(method, public_params, {"ok": False, "error": "ratelimited"},
                                status=429, headers={"Retry-After": str(retry_after)})
        injected = self.limits.injected_error(method, public_params)
        if injected:
            return self._record(method, public_params, {"ok": False, "error": injected})
        try:
            answer = await handler(self, public_params)
        except ApiError as err:
            answer = {"ok": False, "error": err.code, **err.extra}
        seconds, times = self._slow_answers.get(method, (0.0, 0))
        if times > 0:
            self._slow_answers[method] = (seconds, times - 1)
            self.notify()
            await asyncio.sleep(seconds)
        return self._record(method, public_params, answer)

    def _record(self, method: str, params: dict[str, Any], answer: dict[str, Any],
                status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        self.calls.append(Call(method, params, time.monotonic(), answer))
        self._changed.set()
        return web.json_response(answer, status=status, headers=headers)

    async def _handle_upload(self, request: web.Request) -> web.Response:
        upload = self.workspace.files.get(request.match_info["file_id"])
        if upload is None or upload.content is not None:
            return web.Response(status=404, text="upload url not valid")
        upload.content = await request.read()
        self._changed.set()
        return web.Response(text=f"OK - {len(upload.content)}")

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        hook_id = request.match_info["hook_id"]
        http_failure = self.limits.injected_http_failure("response_url")
        if http_failure is not None:  # fail_http("response_url", ...)
            status, text, content_type = http_failure
            return web.Response(status=status, text=text, content_type=content_type)
        context = self._response_contexts.get(hook_id)
        if context is None:
            return web.Response(status=404, text="no_such_hook")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        errors = validate_blocks(body["blocks"]) if body.get("blocks") is not None else []
        if errors or len(body.get("text") or "") > MAX_TEXT:
            # Slack answers a bad response_url POST with a 400 and a short error word.
            return web.Response(status=400, text="invalid_blocks" if errors else "msg_too_long")
        self.response_posts.append(ResponseUrlPost(hook_id, body))
        self._apply_response(context, body)
        self._changed.set()
        return web.Response(text="ok")

    def _apply_response(self, context: ResponseUrlContext, body: dict[str, Any]) -> None:
        """What Slack does with a response_url POST: replace/delete the source, or post anew."""
        original = (self.workspace.get(context.channel, context.message_ts)
                    if context.message_ts else None)
        if body.get("delete_original") and original is not None:
            original.deleted = True
        elif body.get("replace_original") and original is not None:
            original.versions.append(original.snapshot())
            original.text = body.get("text", "")
            original.blocks = body.get("blocks")
            original.edited_ts = self.workspace.clock.next()
        elif body.get("response_type") == "in_channel":
            self.workspace.add_message(Message(
                channel=context.channel, ts=self.workspace.clock.next(),
                text=body.get("text", ""), blocks=body.get("blocks"),
                thread_ts=body.get("thread_ts") or context.thread_ts))
        else:
            self.workspace.ephemerals.append(Ephemeral(
                channel=context.channel, user=context.user, ts=self.workspace.clock.next(),
                text=body.get("text", ""), blocks=body.get("blocks"),
                thread_ts=body.get("thread_ts") or context.thread_ts, via_response_url=True))

    def new_response_url(self, channel: str, user: str, message_ts: str | None = None,
                         thread_ts: str | None = None) -> str:
        """A response_url for a simulated interaction; POSTs to it are applied and recorded."""
        hook_id = self.workspace.new_id("H")
        self._response_contexts[hook_id] = ResponseUrlContext(channel, user, message_ts,
                                                              thread_ts)
        return f"{self.base_url}/response-url/{hook_id}"

    def notify(self) -> None:
        """Wake wait_for(): call after changing state directly (not through HTTP)."""
        self._changed.set()

    # ---- Socket Mode -----------------------------------------------------------------------
    async def socket_push(self, type: str, payload: dict[str, Any], **options: Any) -> str:
        """Push one envelope (slash_commands, interactive, events_api); returns envelope_id."""
        return await self.socket.push(type, payload, **options)

    async def socket_wait_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109 (test API)
        return await self.socket.wait_ack(envelope_id, timeout)

    async def socket_wait_connected(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 (test API)
        await self.socket.wait_connected(timeout)

    # ---- state inspection ------------------------------------------------------------------
    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def channel_messages(self, channel: str) -> list[Message]:
        """Top-level messages oldest first, each in its current (post-update) version."""
        return self.workspace.top_level(channel)

    def thread(self, channel: str, ts: str) -> list[Message]:
        """Replies to the message `ts`, oldest first (the parent itself excluded)."""
        return self.workspace.replies(channel, ts)

    def message(self, channel: str, ts: str) -> Message | None:
        return self.workspace.get(channel, ts)

    def updates(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Every version of a message: the original first, the current one last."""
        message = self.workspace.messages.get((channel, ts))
        if message is None:
            return []
        return [*message.versions, message.snapshot()]

    def ephemerals(self, channel: str, user: str | None = None) -> list[Ephemeral]:
        return [e for e in self.workspace.ephemerals
                if e.channel == channel and (user is None or e.user == user)]

    @property
    def files(self) -> list[UploadedFile]:
        """Files whose upload was completed (files.completeUploadExternal), in upload order."""
        return [f for f in self.workspace.files.values() if f.completed]

    def post_times(self, channel: str, method: str = "chat.postMessage") -> list[float]:
        """time.monotonic() of each successful `method` call to `channel`: for rate asserts."""
        return [c.at for c in self.calls
                if c.method == method and c.ok and c.params.get("channel") == channel]

    def bot_messages(self, channel: str) -> list[Message]:
        """Everything the bot posted in `channel`, replies included, oldest first."""
        found = (self.workspace.messages[(channel, ts)]
                 for ts in self.workspace.order.get(channel, []))
        return [m for m in found if not m.deleted and m.user == BOT_USER_ID]

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0,  # noqa: ASYNC109 (test API)
                       message: str = "") -> T:
        """Wait until predicate() is truthy (re-checked on every state change); return it."""
        deadline = time.monotonic() + timeout
        while True:
            self._changed.clear()
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                recent = ", ".join(f"{c.method}:{c.response.get('error', 'ok')}"
                                   for c in self.calls[-8:])
                raise AssertionError(f"condition not met within {timeout}s"
                                     f"{': ' + message if message else ''}"
                                     f" (last calls: {recent or 'none'})")
            try:
                # Also wake every 50 ms: predicates may depend on state outside the emulator.
                await asyncio.wait_for(self._changed.wait(), min(left, 0.05))
            except TimeoutError:
                pass
