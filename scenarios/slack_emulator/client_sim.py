"""SlackClientSim: sends what Slack sends to an app's request URL, signed, and times the answer.

    sim = SlackClientSim("http://127.0.0.1:PORT/slack/events", SIGNING_SECRET, emulator=slack)
    reply = await sim.slash_command("investigate pod web-1")   # reply.status, .body, .elapsed
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp

from .signing import sign
from .state import APP_ID, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID, Message

if TYPE_CHECKING:
    from .server import SlackEmulator

STALE_SECONDS = 10 * 60  # Bolt rejects timestamps more than 5 minutes off


@dataclass
class BotReply:
    """The app's HTTP answer to one simulated Slack request."""

    status: int
    body: str
    elapsed: float  # seconds from send to full body
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class SlackClientSim:
    """Plays Slack's side of HTTP mode: slash commands, button clicks, events, url_verification."""

    def __init__(self, bot_url: str, signing_secret: str,
                 emulator: SlackEmulator | None = None, timeout: float = 10.0) -> None:
        self.bot_url = bot_url
        self.signing_secret = signing_secret
        self.emulator = emulator
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SlackClientSim:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _response_url(self, channel: str, user: str, message_ts: str | None = None,
                      thread_ts: str | None = None) -> str:
        if self.emulator is not None:
            return self.emulator.new_response_url(channel, user, message_ts, thread_ts)
        return "https://hooks.slack.com/actions/T0TEST/0/unused"

    async def post(self, body: bytes, content_type: str, *, bad_signature: bool = False,
                   stale: bool = False, timestamp: int | None = None,
                   extra_headers: dict[str, str] | None = None) -> BotReply:
        """Send raw bytes signed as Slack would (or deliberately wrong); time the reply."""
        ts = timestamp if timestamp is not None else int(time.time())
        if stale:
            ts -= STALE_SECONDS
        headers = sign(self.signing_secret, body, ts)
        if bad_signature:
            headers = sign(self.signing_secret + "-wrong", body, ts)
        headers.update({"Content-Type": content_type, "User-Agent": "Slackbot 1.0"})
        headers.update(extra_headers or {})
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout))
        started = time.monotonic()
        async with self._session.post(self.bot_url, data=body, headers=headers) as response:
            text = await response.text()
            return BotReply(response.status, text, time.monotonic() - started,
                            dict(response.headers))

    async def slash_command(self, text: str, user_id: str = "U1", channel_id: str = "C1",
                            command: str = "/budo", **options: Any) -> BotReply:
        fields = {
            "token": "verification-token-unused", "team_id": TEAM_ID, "team_domain": TEAM_DOMAIN,
            "channel_id": channel_id, "channel_name": self._channel_name(channel_id),
            "user_id": user_id, "user_name": user_id.lower(), "command": command, "text": text,
            "api_app_id": APP_ID, "is_enterprise_install": "false",
            "response_url": self._response_url(channel_id, user_id),
            "trigger_id": self._trigger_id(),
        }
        return await self.post(urlencode(fields).encode(),
                               "application/x-www-form-urlencoded", **options)

    async def block_action(self, action_id: str, value: str, user_id: str = "U1",
                           channel_id: str = "C1", message_ts: str = "",
                           thread_ts: str | None = None, response_url: str | None = None,
                           block_id: str = "actions", **options: Any) -> BotReply:
        """A button click on the message `message_ts` (looked up in the emulator if given)."""
        message: dict[str, Any] = {"type": "message", "ts": message_ts, "user": BOT_USER_ID,
                                   "text": ""}
        if self.emulator is not None:
            stored = self.emulator.message(channel_id, message_ts)
            if stored is not None:
                message = stored.to_api(self.emulator.workspace)
                thread_ts = thread_ts or stored.thread_ts
        if thread_ts:
            message["thread_ts"] = thread_ts
        container: dict[str, Any] = {"type": "message", "message_ts": message_ts,
                                     "channel_id": channel_id, "is_ephemeral": False}
        if thread_ts:
            container["thread_ts"] = thread_ts
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(),
                     "team_id": TEAM_ID},
            "api_app_id": APP_ID, "token": "verification-token-unused",
            "container": container, "trigger_id": self._trigger_id(),
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN}, "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": self._channel_name(channel_id)},
            "message": message, "state": {"values": {}},
            "response_url": response_url or self._response_url(
                channel_id, user_id, message_ts or None, thread_ts),
            "actions": [{"action_id": action_id, "block_id": block_id, "value": value,
                         "type": "button", "action_ts": f"{time.time():.6f}",
                         "text": {"type": "plain_text", "text": action_id, "emoji": True}}],
        }
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post(body, "application/x-www-form-urlencoded", **options)

    async def app_mention(self, text: str, user: str = "U1", channel: str = "C1",
                          ts: str | None = None, thread_ts: str | None = None,
                          **options: Any) -> BotReply:
        """An Events API app_mention; also stored in the emulator's channel so replies thread."""
        event = self._user_message_event("app_mention", text, user, channel, ts, thread_ts)
        return await self.event(event, **options)

    async def message(self, text: str, user: str = "U1", channel: str = "C1",
                      ts: str | None = None, thread_ts: str | None = None,
                      **options: Any) -> BotReply:
        """A plain `message` event (e.g. a human reply in the bot's thread), stored likewise."""
        event = self._user_message_event("message", text, user, channel, ts, thread_ts)
        event["channel_type"] = "im" if channel.startswith("D") else "channel"
        return await self.event(event, **options)

    def _user_message_event(self, kind: str, text: str, user: str, channel: str,
                            ts: str | None, thread_ts: str | None) -> dict[str, Any]:
        if self.emulator is not None:
            stored = self.emulator.workspace.add_message(Message(
                channel=channel, ts=ts or self.emulator.workspace.clock.next(), text=text,
                blocks=None, user=user, bot_id=None, thread_ts=thread_ts))
            self.emulator.notify()
            ts = stored.ts
        ts = ts or f"{time.time():.6f}"
        event: dict[str, Any] = {"type": kind, "user": user, "text": text, "ts": ts,
                                 "channel": channel, "event_ts": ts, "team": TEAM_ID,
                                 "client_msg_id": str(uuid.uuid4())}
        if thread_ts:
            event["thread_ts"] = thread_ts
        return event

    async def event(self, event: dict[str, Any], **options: Any) -> BotReply:
        """Any Events API event inside an event_callback envelope."""
        envelope = {
            "token": "verification-token-unused", "team_id": TEAM_ID, "api_app_id": APP_ID,
            "event": event, "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(time.time()), "event_context": f"4-{uuid.uuid4().hex}",
            "is_ext_shared_channel": False,
            "authorizations": [{"enterprise_id": None, "team_id": TEAM_ID,
                                "user_id": BOT_USER_ID, "is_bot": True,
                                "is_enterprise_install": False}],
        }
        return await self.post(json.dumps(envelope).encode(), "application/json", **options)

    async def url_verification(self, challenge: str, **options: Any) -> BotReply:
        body = {"token": "verification-token-unused", "challenge": challenge,
                "type": "url_verification"}
        return await self.post(json.dumps(body).encode(), "application/json", **options)

    def _channel_name(self, channel_id: str) -> str:
        if self.emulator is not None and channel_id in self.emulator.workspace.channels:
            return self.emulator.workspace.channels[channel_id]
        return channel_id.lower()

    @staticmethod
    def _trigger_id() -> str:
        return f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}"
