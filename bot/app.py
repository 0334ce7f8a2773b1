"""The Bolt AsyncApp: listeners that only acknowledge, then hand the work to a task.

Slack wants an answer within 3 s; an investigation takes minutes. Every listener acks first
(``/budo help`` is answered in the ack itself, it needs no I/O) and gives the rest to
``Handlers.spawn``, which tracks the task so shutdown can wait for it. No listener awaits
anything after its ack: Bolt sends the response when the listener returns. Signature and
timestamp checks (401 on a bad signature or a stale request) are Bolt's request verification.
"""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import APPROVE_ACTION, CANCEL_ACTION, DENY_ACTION
from bot.commands import help_reply, parse_slash
from bot.handlers import Handlers
from bot.inbound import dedupe_middleware


def build_bolt_app(client: AsyncWebClient, bot_token: str, signing_secret: str | None,
                   handlers: Handlers, identity: dict[str, Any]) -> AsyncApp:
    """``identity`` is the bot's auth.test answer, fetched once at startup, so no request
    pays for an auth.test round trip. ``client`` carries no token: ``authorize`` hands Bolt
    the bot token per request."""

    async def authorize(**_: Any) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=identity.get("enterprise_id"), team_id=identity.get("team_id"),
            bot_token=bot_token, bot_id=identity.get("bot_id"),
            bot_user_id=identity.get("user_id"))

    # process_before_response: our listeners only ack and hand off, so Bolt may answer the
    # request when the listener returns (~1 ms) instead of polling for the ack every 10 ms.
    app = AsyncApp(client=client, signing_secret=signing_secret or "", authorize=authorize,
                   name="budo", process_before_response=True)
    app.use(dedupe_middleware(handlers.store))  # after Bolt's signature check

    @app.command(re.compile(r"^/budo"))
    async def on_slash(ack: Any, body: dict[str, Any]) -> None:
        command = parse_slash(body.get("text"))
        if command.kind == "help":
            await ack(text=help_reply(command), response_type="ephemeral")
            return
        await ack()
        handlers.spawn(handlers.slash(command, body))

    @app.event("app_mention")
    async def on_mention(ack: Any, event: dict[str, Any]) -> None:
        await ack()
        handlers.spawn(handlers.mention(event))

    @app.event("message")
    async def on_message(ack: Any) -> None:
        await ack()  # channel chatter: only @mentions concern budo

    @app.action(APPROVE_ACTION)
    async def on_approve(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        handlers.spawn(handlers.decide(body, approved=True))

    @app.action(DENY_ACTION)
    async def on_deny(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        handlers.spawn(handlers.decide(body, approved=False))

    @app.action(CANCEL_ACTION)
    async def on_cancel(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        handlers.spawn(handlers.cancel(body))

    return app
