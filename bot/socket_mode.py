"""Socket Mode, imported only when `budo serve` runs in Socket Mode (HTTP mode never loads the
websocket client). The checks themselves are bot/inbound.py's ``malformed_envelope``."""

from __future__ import annotations

import logging

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.web.async_client import AsyncWebClient

from bot.inbound import malformed_envelope

log = logging.getLogger("budo.bot.inbound")


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
                 web_client: AsyncWebClient | None = None,
                 logger: logging.Logger | None = None) -> None:
        self.app = app
        self.app_token = app_token or ""  # Bolt falls back to $SLACK_APP_TOKEN: config does
        self.client = CheckedSocketModeClient(
            app_token=self.app_token, logger=logger or app.logger,
            web_client=web_client if web_client is not None else app.client,
            ping_interval=10)  # Bolt's default
        self.client.socket_mode_request_listeners.append(self.handle)  # type: ignore[arg-type]
