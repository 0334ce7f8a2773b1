"""BudoBot: the wiring of one Slack bot process, usable from `budo serve` and from tests.

    bot = BudoBot(settings, store, model_factory=..., toolbox_factory=...)
    await bot.start()                       # auth.test, model, tools, Bolt app
    runner = web.AppRunner(bot.web_app())   # POST /slack/events, GET /healthz, GET /readyz
    ...
    await bot.stop()                        # grace for runs, then interrupted

Factories take the Settings and return (or return an awaitable of) a ChatModel / a list of
ToolSpecs; the defaults build the OpenAI-compatible client and the Kubernetes toolbox.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from agent.protocols import ChatModel, ToolSpec
from bot.app import build_bolt_app
from bot.approvals import ApprovalDesk, OnCallPolicy
from bot.handlers import Handlers
from bot.inbound import malformed, signed
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
                 usergroup_cache_s: float = 60.0, shutdown_grace: float = 10.0) -> None:
        self.settings = settings
        self.store = store
        self.model_factory = model_factory or default_model
        self.toolbox_factory = toolbox_factory or self._default_toolbox
        self.update_interval = update_interval
        self.rate_per_channel = rate_per_channel
        self.burst = burst
        self.usergroup_cache_s = usergroup_cache_s
        self.shutdown_grace = shutdown_grace
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
        self.client = make_web_client(self.settings)
        self.poster = SlackPoster(self.client, rate_per_channel=self.rate_per_channel,
                                  burst=self.burst, update_interval=self.update_interval)
        try:
            self.identity = await self.poster.call("auth_test")
        except SlackError as exc:
            raise SlackError(f"{exc} (check SLACK_BOT_TOKEN and SLACK_API_URL="
                             f"{self.settings.slack_base_url})") from exc
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
                               link_base=link_base)
        self.handlers = Handlers(store=self.store, poster=self.poster, runs=self.runs,
                                 desk=self.desk)
        # Bolt gets a tokenless client (its authorize supplies the token per request).
        bolt_client = make_web_client(dataclasses.replace(self.settings, slack_bot_token=None))
        self.bolt: AsyncApp = build_bolt_app(bolt_client, self.settings.slack_bot_token,
                                             self.settings.slack_signing_secret, self.handlers,
                                             self.identity)
        self.started = True
        recovered = list(getattr(self.store, "recovered", []) or [])
        if recovered:
            self.handlers.spawn(self.runs.announce_recovered(recovered))

    async def stop(self, grace: float | None = None) -> None:
        """Runs get ``grace`` seconds to finish, then are interrupted (recorded, posted)."""
        if not self.started:
            return
        self.started = False
        await self.runs.shutdown(self.shutdown_grace if grace is None else grace)
        await self.handlers.drain(grace_s=5.0)
        await self.poster.aclose()
        closer = getattr(self.model, "aclose", None)
        if closer is not None:
            await closer()
        if self._cluster is not None:
            self._cluster.close()

    # --- HTTP -------------------------------------------------------------------------------

    def web_app(self, slack_events: bool = True) -> web.Application:
        """/healthz (alive), /readyz (the DB answers) and, in HTTP mode, /slack/events."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        if slack_events:
            app.router.add_post("/slack/events", self._slack_events)
        return app

    async def _slack_events(self, request: web.Request) -> web.Response:
        if not self.started:
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
        try:
            await self.store.list_runs(limit=1)
        except BudoError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=503)
        if not self.started:
            return web.json_response({"ok": False, "error": "not started"}, status=503)
        return web.json_response({"ok": True})


async def _resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
