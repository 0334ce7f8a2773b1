"""What budo checks on a request from Slack before any listener runs.

* **Shape** (HTTP mode): Bolt parses the body before it verifies the signature and answers a
  500 with a traceback when the JSON is bad, is an array, or the bytes are not UTF-8.
  ``malformed`` finds those first; the HTTP handler answers 401 if the signature is wrong
  (what Bolt would say) and otherwise 400 with one log line.
* **Shape** (Socket Mode): slack_sdk's client ``json.loads`` every frame that starts with
  ``{`` and builds a request from any ``{type, envelope_id, payload}``; a frame that is not
  JSON, a payload that is not an object, or a payload of the wrong shape ends in a logged
  traceback (in the SDK, a Bolt middleware or a listener). ``CheckedSocketModeHandler``'s
  client checks each frame with ``malformed_envelope`` first and drops a broken envelope
  with one log line, unacknowledged — as the HTTP path answers 400, and as Bolt leaves a
  request no listener handles.
* **Exactly once** (HTTP and Socket Mode): Slack re-sends an event it thinks was not
  acknowledged (same ``event_id``, ``X-Slack-Retry-Num``), and a captured signed request can
  be replayed for 5 minutes. ``dedupe_middleware`` records every delivery key in the audit
  store (table ``deliveries``), so a duplicate is acknowledged and dropped — also after a
  restart. Keys: ``event:<event_id>``; a slash command's or a click's ``trigger_id`` (unique
  per user action); else the SHA-256 of the signed body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.web.async_client import AsyncWebClient

from budo.errors import StoreError
from storage import Store, first_delivery

log = logging.getLogger("budo.bot.inbound")

_DICT_FIELDS = ("user", "container", "channel", "message", "team", "view")
# A slash command's fields budo and Bolt read (Socket Mode sends the form fields as JSON).
_COMMAND_FIELDS = ("command", "text", "user_id", "channel_id", "team_id", "trigger_id",
                   "response_url", "enterprise_id")
# Fields of the message events budo handles (app_mention, message) its handlers read as text.
_EVENT_TEXT_FIELDS = ("type", "user", "channel", "text", "ts", "thread_ts", "subtype",
                      "bot_id")


def malformed(body: bytes, content_type: str) -> str | None:
    """Why this body cannot be a Slack request (one line), or None when it can."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    if content_type.startswith("application/json"):
        return _bad_json_object(text, "body")
    try:
        fields = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        return "form fields are not UTF-8"
    form = dict(fields)
    if "payload" in form:
        return _bad_json_object(form["payload"], "payload")
    if not form:
        return "empty form"
    return None


def _bad_json_object(text: str, what: str) -> str | None:
    try:
        value = json.loads(text)
    except ValueError:
        return f"{what} is not valid JSON"
    return _bad_object(value, what)


def _bad_object(value: Any, what: str) -> str | None:
    if not isinstance(value, dict):
        return f"{what} is a JSON {type(value).__name__}, not an object"
    kind = value.get("type")
    if kind is not None and not isinstance(kind, str):
        return f"{what}.type is not a string"
    for key in _DICT_FIELDS:
        if key in value and value[key] is not None and not isinstance(value[key], dict):
            return f"{what}.{key} is not an object"
    event = value.get("event")
    if "event" in value and not isinstance(event, dict):
        return f"{what}.event is not an object"
    if isinstance(event, dict) and event.get("type") in ("app_mention", "message"):
        for key in _EVENT_TEXT_FIELDS:
            if event.get(key) is not None and not isinstance(event[key], str):
                return f"{what}.event.{key} is not a string"
    actions = value.get("actions")
    if actions is not None and not (isinstance(actions, list)
                                    and all(isinstance(a, dict) for a in actions)):
        return f"{what}.actions is not a list of objects"
    return None


def malformed_envelope(frame: str) -> str | None:
    """Why this Socket Mode frame is a broken envelope (one line), or None to pass it on."""
    if not frame.startswith("{"):
        return None  # the SDK reads anything else as an empty message and ignores it
    try:
        message = json.loads(frame)
    except ValueError:
        return "frame is not valid JSON"
    if not isinstance(message, dict) or not {"envelope_id", "payload"} & message.keys():
        return None  # hello, disconnect and other control messages
    envelope_id, kind, payload = (message.get(k) for k in ("envelope_id", "type", "payload"))
    if not isinstance(envelope_id, str) or not envelope_id:
        return "envelope_id is not a string"
    if not isinstance(kind, str):
        return "envelope type is not a string"
    if not isinstance(payload, dict):
        return f"payload is a JSON {type(payload).__name__}, not an object"
    if kind == "slash_commands":  # the command's form fields, as JSON: strings
        for key in _COMMAND_FIELDS:
            if payload.get(key) is not None and not isinstance(payload[key], str):
                return f"payload.{key} is not a string"
    return _bad_object(payload, "payload")


class CheckedSocketModeClient(SocketModeClient):
    """slack_sdk's aiohttp Socket Mode client that drops a malformed envelope (one log line,
    no ack) before the SDK or Bolt can trip over it."""

    async def enqueue_message(self, message: str) -> None:
        why = malformed_envelope(message)
        if why is not None:
            log.warning("malformed Socket Mode envelope dropped, not acknowledged: %s", why)
            return
        await super().enqueue_message(message)


class CheckedSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's AsyncSocketModeHandler on a CheckedSocketModeClient. Its __init__ is Bolt's
    (slack_bolt.adapter.socket_mode.aiohttp) with the client class swapped: calling Bolt's
    would open a second client (an aiohttp session and a running task)."""

    def __init__(self, app: AsyncApp, app_token: str | None,
                 web_client: AsyncWebClient | None = None) -> None:
        self.app = app
        self.app_token = app_token or ""  # Bolt falls back to $SLACK_APP_TOKEN: config does
        self.client = CheckedSocketModeClient(
            app_token=self.app_token, logger=app.logger,
            web_client=web_client if web_client is not None else app.client,
            ping_interval=10)  # Bolt's default
        self.client.socket_mode_request_listeners.append(self.handle)  # type: ignore[arg-type]


def signed(signing_secret: str, body: bytes, headers: Mapping[str, str],
           now: float | None = None) -> bool:
    """Bolt's rule (slack_sdk SignatureVerifier): ``v0=`` HMAC-SHA256 of ``v0:{ts}:{body}``,
    timestamp within 5 minutes — over the raw bytes, which need not be UTF-8 here."""
    stamp = headers.get("X-Slack-Request-Timestamp", "")
    if not signing_secret or not stamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > 300:
        return False
    base = b"v0:" + stamp.encode() + b":" + body
    expected = "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers.get("X-Slack-Signature", ""))


def delivery_key(body: Mapping[str, Any], raw: str) -> str | None:
    """What makes this delivery unique, or None for requests that are not deliveries."""
    kind = body.get("type")
    if kind == "url_verification" or kind == "ssl_check" or body.get("ssl_check"):
        return None
    if kind == "event_callback":
        event_id = body.get("event_id")
        return f"event:{event_id}" if event_id else f"body:{_digest(raw)}"
    trigger = body.get("trigger_id")
    if "command" in body or kind in ("block_actions", "view_submission", "shortcut",
                                     "message_action", "interactive_message"):
        return f"trigger:{trigger}" if trigger else f"body:{_digest(raw)}"
    return None


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


Next = Callable[[], Awaitable[BoltResponse]]


def dedupe_middleware(store: Store) -> Callable[..., Awaitable[BoltResponse | None]]:
    """A Bolt global middleware (runs after signature verification)."""

    async def dedupe(req: AsyncBoltRequest, resp: BoltResponse, next: Next) -> Any:
        # Socket Mode requests carry the parsed payload only: hash that instead.
        raw = req.raw_body or json.dumps(req.body or {}, sort_keys=True, default=str)
        key = delivery_key(req.body or {}, raw)
        if key is None:
            return await next()
        try:
            first = await first_delivery(store, key)
        except StoreError as exc:  # cannot remember: better a duplicate than a lost request
            log.warning("could not record Slack delivery %s: %s", key, exc)
            first = True
        if first:
            return await next()
        retry = (req.headers.get("x-slack-retry-num") or ["-"])[0]
        log.info("duplicate Slack delivery %s dropped (retry %s)", key, retry)
        return BoltResponse(status=200, body="")

    return dedupe
