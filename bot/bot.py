"""BudoBot: the wiring of one Slack bot process, usable from `budo serve` and from tests.

    bot = BudoBot(settings, store, model_factory=..., toolbox_factory=...)
    await bot.start()                       # auth.test, model, tools, Bolt app
    runner = web.AppRunner(bot.web_app())   # POST /slack/events, /healthz, /readyz, /metrics
    ...
    await bot.stop()                        # grace for runs, then interrupted

Readiness (GET /readyz) means budo can hear and record: not shutting down, the Slack
connection up (Socket Mode; ``serve`` sets ``connection_check``), the audit DB answering and
writable. A 503 says which of these failed, in its JSON body.

Factories take the Settings and return (or return an awaitable of) a ChatModel / a list of
ToolSpecs; the defaults build the OpenAI-compatible client and the Kubernetes toolbox.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from agent.protocols import ChatModel, ToolSpec
from bot import restart
from bot.app import build_bolt_app
from bot.approvals import ApprovalDesk, OnCallPolicy
from bot.handlers import Handlers
from bot.inbound import malformed, signed
from bot.metrics import CONTENT_TYPE, Metrics
from bot.poster import SlackPoster, make_web_client
from bot.runs import RunManager
from budo import wiring
from budo.config import Settings
from budo.errors import BudoError, ConfigError, SlackError
from storage.store import Store

log = logging.getLogger("budo.bot")

ModelFactory = Callable[[Settings], ChatModel | Awaitable[ChatModel]]
ToolboxFactory = Callable[[Settings], Sequence[ToolSpec] | Awaitable[Sequence[ToolSpec]]]


def default_model(settings: Settings) -> ChatModel:
    return wiring.chat_model(settings)


class BudoBot:
    def __init__(self, settings: Settings, store: Store, *,
                 model_factory: ModelFactory | None = None,
                 toolbox_factory: ToolboxFactory | None = None,
                 update_interval: float = 2.0, rate_per_channel: float = 1.0, burst: int = 3,
                 usergroup_cache_s: float = 60.0, shutdown_grace: float = 25.0,
                 slack_backoff: float = 0.5,
                 delivery_retry_delays: Sequence[float] = (1.0, 2.0, 4.0)) -> None:
        self.settings = settings
        self.store = store
        self.model_factory = model_factory or default_model
        self.toolbox_factory = toolbox_factory or self._default_toolbox
        self.update_interval = update_interval
        self.rate_per_channel = rate_per_channel
        self.burst = burst
        self.usergroup_cache_s = usergroup_cache_s
        self.shutdown_grace = shutdown_grace
        self.slack_backoff = slack_backoff
        self.delivery_retry_delays = tuple(delivery_retry_delays)
        self.metrics = Metrics()
        # Socket Mode: awaits to None when connected, else says why not. Set by `budo serve`.
        self.connection_check: Callable[[], Awaitable[str | None]] | None = None
        self.accepting = False   # False before start and from the first moment of shutdown
        self._session: aiohttp.ClientSession | None = None
        self._cluster: Any = None
        self.model: ChatModel | None = None
        self.identity: dict[str, Any] = {}
        self.started = False

    def _default_toolbox(self, settings: Settings) -> list[ToolSpec]:
        from agent.tools import build_toolbox

        self._cluster = wiring.cluster(settings)
        return build_toolbox(self._cluster, settings.max_replicas)

    async def start(self) -> None:
        """Check the token (auth.test), build the model, tools and the Bolt app; announce runs
        a previous process left interrupted. Raises ConfigError/SlackError with one line."""
        if not self.settings.slack_bot_token:
            raise ConfigError("SLACK_BOT_TOKEN is not set (the bot token, xoxb-…)")
        # One HTTP session for every Slack call (Web API, Bolt's client, response_url).
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        try:
            await self._start()
        except BaseException:
            await self._session.close()
            raise

    async def _start(self) -> None:
        self.client = make_web_client(self.settings, session=self._session,
                                      backoff=self.slack_backoff, metrics=self.metrics)
        self.poster = SlackPoster(self.client, rate_per_channel=self.rate_per_channel,
                                  burst=self.burst, update_interval=self.update_interval,
                                  retry_delays=self.delivery_retry_delays, metrics=self.metrics)
        try:
            self.identity = await self.poster.call("auth_test")
        except SlackError as exc:
            raise SlackError(f"{exc} (check SLACK_BOT_TOKEN and SLACK_API_URL="
                             f"{self.settings.slack_base_url})", code=exc.code,
                             status=exc.status) from exc
        link_base = str(self.identity.get("url") or "https://slack.com/")
        self.model = await _resolve(self.model_factory(self.settings))
        tools = list(await _resolve(self.toolbox_factory(self.settings)))
        self.policy = OnCallPolicy(self.poster, self.settings.oncall_users,
                                   self.settings.oncall_usergroup,
                                   cache_ttl=self.usergroup_cache_s)
        self.desk = ApprovalDesk(self.store, self.poster, self.policy,
                                 self.settings.approval_timeout)
        self.runs = RunManager(settings=self.settings, store=self.store, poster=self.poster,
                               desk=self.desk, model=self.model, tools=tools,
                               link_base=link_base, metrics=self.metrics)
        self.handlers = Handlers(store=self.store, poster=self.poster, runs=self.runs,
                                 desk=self.desk)
        # Bolt gets a tokenless client (its authorize supplies the token per request).
        bolt_client = make_web_client(dataclasses.replace(self.settings, slack_bot_token=None),
                                      session=self._session, backoff=self.slack_backoff,
                                      metrics=self.metrics)
        self.bolt: AsyncApp = build_bolt_app(bolt_client, self.settings.slack_bot_token or "",
                                             self.settings.slack_signing_secret, self.handlers,
                                             self.identity)
        self.started = True
        self.accepting = True
        recovered = list(getattr(self.store, "recovered", []) or [])
        if recovered:
            self.handlers.spawn(restart.announce_recovered(self.store, self.poster, recovered))
        self.handlers.spawn(restart.announce_unsettled(self.store, self.poster))

    async def stop(self, grace: float | None = None) -> None:
        """Runs get ``grace`` seconds to finish, then are interrupted (recorded, posted).
        Returns within about ``grace + 5`` s: Kubernetes kills at 30 s, grace defaults to 25."""
        if not self.started:
            return
        self.stop_accepting()
        self.started = False
        await self.runs.shutdown(self.shutdown_grace if grace is None else grace)
        await self.handlers.drain(grace_s=1.0)
        try:  # the last status updates; Slack gets one more second, not a Slack timeout
            await asyncio.wait_for(self.poster.aclose(), 1.0)
        except TimeoutError:
            log.warning("stopped with Slack updates still unsent")
        closer = getattr(self.model, "aclose", None)
        if closer is not None:
            await closer()
        if self._cluster is not None:
            self._cluster.close()
        if self._session is not None:
            await self._session.close()

    def stop_accepting(self) -> None:
        """Shutdown has begun: /readyz answers 503 and new requests are turned away."""
        self.accepting = False

    # --- HTTP -------------------------------------------------------------------------------

    def web_app(self, slack_events: bool = True) -> web.Application:
        """/healthz (alive), /readyz (hearing and recording), /metrics (Prometheus) and, in
        HTTP mode, /slack/events."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        if slack_events:
            app.router.add_post("/slack/events", self._slack_events)
        return app

    async def _slack_events(self, request: web.Request) -> web.Response:
        if not self.started or not self.accepting:
            return web.Response(status=503, text="budo is not ready")
        body = await request.read()
        problem = malformed(body, request.content_type)
        if problem is not None:
            if not signed(self.settings.slack_signing_secret or "", body, request.headers):
                return web.json_response({"error": "invalid request"}, status=401)
            log.warning("rejected a signed but malformed Slack request (%s): %s",
                        request.content_type or "no content type", problem)
            return web.json_response({"error": f"malformed request: {problem}"}, status=400)
        bolt_response = await self.bolt.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _readyz(self, request: web.Request) -> web.Response:
        problem = await self.not_ready()
        if problem:
            return web.json_response({"ok": False, "error": problem}, status=503)
        return web.json_response({"ok": True})

    async def _metrics(self, request: web.Request) -> web.Response:
        body = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def not_ready(self) -> str | None:
        """Why budo cannot take work now, or None when it can."""
        if not self.started:
            return "not started"
        if not self.accepting:
            return "shutting down"
        if self.connection_check is not None:
            problem = await self.connection_check()
            if problem:
                return f"Slack: {problem}"
        try:
            await self.store.list_runs(limit=1)
        except BudoError as exc:
            return f"audit store: {exc}"
        return unwritable(self.store.path)


def unwritable(db_path: str) -> str | None:
    """The audit DB file and its directory (SQLite writes -wal/-shm beside it) must be
    writable; access(2) also says no on a read-only mount or an immutable file, even to root."""
    if db_path == ":memory:" or db_path.startswith("file:"):
        return None
    path = Path(db_path).expanduser()
    for target in (path, path.parent):
        if target.exists() and not os.access(target, os.W_OK):
            return f"audit store: {target} is not writable"
    return None


async def _resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
