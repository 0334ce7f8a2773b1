"""`budo serve`: the Slack bot as a process.

Socket Mode when SLACK_APP_TOKEN is set (no public URL needed), otherwise HTTP with
POST /slack/events for slash commands, events and interactivity. Either way GET /healthz
(alive), GET /readyz (hearing and recording: 503 with the reason while the Socket Mode
connection is down, the audit DB is not writable, or budo is shutting down) and GET /metrics
(Prometheus) are served on --host/--port.

Startup checks the bot token (auth.test) and, in Socket Mode, the app token
(apps.connections.open): a rejected token exits non-zero with one line.
SIGTERM/SIGINT: readiness drops at once, queued runs are marked interrupted (their threads
told), in-flight runs get --grace seconds, then are interrupted; exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.bot import BudoBot, unwritable
from budo import logs
from budo.config import Settings
from budo.errors import ConfigError, SlackError
from budo.signals import StopSignals
from storage.store import Store

log = logging.getLogger("budo.serve")

DEFAULT_GRACE = 25.0   # below the Deployment's terminationGracePeriodSeconds (30)
CONNECT_TIMEOUT = 30.0

REQUIREMENTS = """\
budo serve needs:
  SLACK_BOT_TOKEN          the bot token (xoxb-…)
  SLACK_APP_TOKEN          an app-level token (xapp-…) for Socket Mode, or
  SLACK_SIGNING_SECRET     for HTTP mode (Slack posts to /slack/events)
  BUDO_ONCALL_USERS or BUDO_ONCALL_USERGROUP   who may approve mutating actions
  a cluster: KUBECONFIG, ~/.kube/config, or the in-cluster service account
  a model: BUDO_LLM_URL (default http://localhost:11434/v1, Ollama)
Invite the bot to each channel it should work in (/invite @budo)."""


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535, got {value}")
    return value


def _grace(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds ≥ 0, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = REQUIREMENTS
    parser.add_argument("--port", type=_port, default=3000,
                        help="port for /slack/events, /healthz, /readyz and /metrics "
                             "(default 3000)")
    parser.add_argument("--host", default="0.0.0.0",
                        help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--grace", type=_grace, default=DEFAULT_GRACE,
                        help="seconds in-flight runs get at shutdown before they are "
                             f"interrupted (default {DEFAULT_GRACE:g}, under Kubernetes' 30)")


@dataclass
class Serving:
    """What ``open_server`` started; ``close`` stops it in the right order."""

    bot: BudoBot
    runner: web.AppRunner
    port: int
    socket_handler: Any = None   # AsyncSocketModeHandler, imported only in Socket Mode

    @property
    def mode(self) -> str:
        return "Socket Mode" if self.socket_handler is not None else "HTTP"

    async def close(self, grace: float | None = None) -> None:
        self.bot.stop_accepting()   # /readyz 503 from this moment
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
        try:
            serving.socket_handler = await _connect_socket_mode(bot)
        except BaseException:
            await serving.close(0)
            raise
    return serving


async def _connect_socket_mode(bot: BudoBot) -> Any:
    # Imported here: HTTP mode never loads the websocket client.
    from bot.socket_mode import CheckedSocketModeHandler

    app_token = bot.settings.slack_app_token
    try:  # the app token, checked once with a clear answer (the SDK would retry forever)
        await bot.poster.call("apps_connections_open", app_token=app_token)
    except SlackError as exc:
        raise ConfigError(f"SLACK_APP_TOKEN was refused by Slack (apps.connections.open: "
                          f"{exc.code or exc}); check the app-level token and its "
                          "connections:write scope") from exc
    socket_log = logging.getLogger("budo.slack.socket_mode")
    socket_log.addFilter(logs.OneLineErrors())
    # Malformed envelopes are dropped with one line before the SDK or Bolt sees them.
    handler: Any = CheckedSocketModeHandler(bot.bolt, app_token, web_client=bot.client,
                                            logger=socket_log)
    try:
        await asyncio.wait_for(handler.connect_async(), CONNECT_TIMEOUT)
    except Exception as exc:
        with contextlib.suppress(Exception):
            await handler.close_async()
        raise ConfigError(f"Socket Mode could not connect with SLACK_APP_TOKEN: "
                          f"{type(exc).__name__}: {exc}") from exc

    async def connection_problem() -> str | None:
        if await handler.client.is_connected():
            return None
        return "Socket Mode connection is down (reconnecting)"

    bot.connection_check = connection_problem
    return handler


async def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    settings.require_slack()
    logs.configure(settings.log_format)
    problem = unwritable(settings.db_path)  # SQLite would open it read-only, silently
    if problem:
        raise ConfigError(f"{problem} (BUDO_DB)")
    store = await Store.open(settings.db_path, audit_key=settings.audit_key)
    try:
        bot = BudoBot(settings, store, shutdown_grace=args.grace)
        serving = await open_server(bot, args.host, args.port)
        # Log lines, not prints: with BUDO_LOG_FORMAT=json every stderr line is JSON.
        log.info("budo serve: %s · health on http://%s:%d/healthz · %d interrupted run(s) "
                 "recovered", serving.mode, args.host, serving.port, len(store.recovered))
        with StopSignals() as stop:
            try:
                await stop.event.wait()
            finally:
                bot.stop_accepting()
                log.info("budo serve: shutting down (%d run(s) in flight, %d queued, %g s grace)",
                         len(bot.runs.active), bot.runs.queued_count, args.grace)
                # A second signal during the shutdown changes nothing: it is already bounded.
                await serving.close()
    finally:
        await store.close()
    return stop.exit_code()  # SIGTERM (Kubernetes): 0
