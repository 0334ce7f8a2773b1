"""`budo serve`: the Slack bot as a process.

Socket Mode when SLACK_APP_TOKEN is set (no public URL needed), otherwise HTTP with
POST /slack/events for slash commands, events and interactivity. Either way GET /healthz
(alive) and GET /readyz (the audit DB answers) are served on --host/--port for probes.
SIGTERM/SIGINT: in-flight runs get --grace seconds, then are recorded and posted as
interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.bot import BudoBot
from bot.inbound import CheckedSocketModeHandler
from budo.config import Settings
from budo.errors import ConfigError
from storage.store import Store

log = logging.getLogger("budo.serve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=3000,
                        help="port for /slack/events, /healthz and /readyz (default 3000)")
    parser.add_argument("--host", default="0.0.0.0",
                        help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--grace", type=float, default=10.0,
                        help="seconds in-flight runs get at shutdown before they are "
                             "interrupted (default 10)")


@dataclass
class Serving:
    """What ``open_server`` started; ``close`` stops it in the right order."""

    bot: BudoBot
    runner: web.AppRunner
    port: int
    socket_handler: AsyncSocketModeHandler | None = None

    @property
    def mode(self) -> str:
        return "Socket Mode" if self.socket_handler is not None else "HTTP"

    async def close(self, grace: float | None = None) -> None:
        if self.socket_handler is not None:
            # Stop taking new work first, then let the runs finish or be interrupted.
            with contextlib.suppress(Exception):
                await self.socket_handler.close_async()
        await self.bot.stop(grace)
        await self.runner.cleanup()


async def open_server(bot: BudoBot, host: str, port: int) -> Serving:
    """Start ``bot``, listen on host:port, and connect Socket Mode when an app token is set.
    Every Web API call (apps.connections.open too) goes to SLACK_API_URL."""
    await bot.start()
    socket_mode = bool(bot.settings.slack_app_token)
    runner = web.AppRunner(bot.web_app(slack_events=not socket_mode), access_log=None,
                           handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        await bot.stop(0)
        raise ConfigError(f"cannot listen on {host}:{port} (--host/--port): "
                          f"{exc.strerror or exc}") from exc
    bound = site._server.sockets[0].getsockname()[1] if site._server else port  # type: ignore[attr-defined]
    serving = Serving(bot, runner, bound)
    if socket_mode:
        handler: AsyncSocketModeHandler = CheckedSocketModeHandler(
            bot.bolt, bot.settings.slack_app_token, web_client=bot.client)
        try:
            await handler.connect_async()
        except Exception as exc:
            await serving.close(0)
            raise ConfigError(f"Socket Mode could not connect with SLACK_APP_TOKEN: "
                              f"{type(exc).__name__}: {exc}") from exc
        serving.socket_handler = handler
    return serving


async def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    settings.require_slack()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s", stream=sys.stderr)
    store = await Store.open(settings.db_path, audit_key=settings.audit_key)
    try:
        bot = BudoBot(settings, store, shutdown_grace=args.grace)
        serving = await open_server(bot, args.host, args.port)
        print(f"budo serve: {serving.mode} · health on http://{args.host}:{serving.port}/healthz"
              f" · {len(store.recovered)} interrupted run(s) recovered", file=sys.stderr,
              flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            print(f"budo serve: shutting down ({len(bot.runs.active)} run(s) in flight, "
                  f"{args.grace:g} s grace)", file=sys.stderr, flush=True)
            await serving.close()
    finally:
        await store.close()
    return 0
