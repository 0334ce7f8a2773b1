"""A replay Kubernetes API server: one scenario served read-mostly over real HTTP.

    server = await ReplayServer(load_scenario("checkout-typo")).start()
    api = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(
        config_file=str(server.kubeconfig)))
    ...
    await server.stop()

The official `kubernetes` client and `kubectl` (get, describe, logs, delete) work against
it. `server.faults` switches failures on for tests; `server.deletions` records pod deletes.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from scenarios.load import load_scenario
from scenarios.model import Scenario
from scenarios.replay_handlers import dispatch, fail
from scenarios.replay_state import Deletion, ReplayState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = logging.getLogger(__name__)


@dataclass
class Faults:
    """Failure switches, read on every request (flip them mid-test).

    error_status: answer API requests with this HTTP status (e.g. 500) as a Status body;
    error_paths: only requests whose path contains one of these substrings (empty: all);
    delay: seconds to wait before answering; forbidden_namespaces: 403 in these;
    drop_connections: close the socket without answering (the client sees a reset);
    deny_writes: a validating admission webhook denies every PATCH (dry runs too) with this.
    To refuse connections outright use ``await server.refuse_connections()``."""

    error_status: int | None = None
    error_paths: list[str] = field(default_factory=list)
    delay: float = 0.0
    forbidden_namespaces: set[str] = field(default_factory=set)
    drop_connections: bool = False
    deny_writes: str | None = None

    def clear(self) -> None:
        self.error_status, self.error_paths, self.delay = None, [], 0.0
        self.forbidden_namespaces, self.drop_connections = set(), False
        self.deny_writes = None


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    query: str
    user_agent: str


class ReplayServer:
    """Serves a Scenario as a Kubernetes API on 127.0.0.1 (port 0: a free port)."""

    def __init__(self, scenario: Scenario | str | Path, *, host: str = "127.0.0.1",
                 port: int = 0, user: str = "system:serviceaccount:budo:budo") -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.host, self.port, self.user = host, port, user
        self.faults = Faults()
        self.requests: list[RequestRecord] = []
        self._state: ReplayState | None = None  # built (times shifted to now) at start()
        self.kubeconfig: Path | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state(self) -> ReplayState:
        if self._state is None:
            self._state = ReplayState(self.scenario)
        return self._state

    @property
    def deletions(self) -> list[Deletion]:
        return self.state.deletions

    async def start(self, kubeconfig: Path | str | None = None) -> ReplayServer:
        """Listen, shift the scenario's times to now, and write a kubeconfig for it."""
        self._state = ReplayState(self.scenario)
        app = web.Application(middlewares=[self._middleware])
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self.port)
        await self._site.start()
        server = self._site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.kubeconfig = self.write_kubeconfig(kubeconfig)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = self._site = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    async def __aenter__(self) -> ReplayServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def refuse_connections(self) -> None:
        """Stop listening: new connections are refused until accept_connections()."""
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def accept_connections(self) -> None:
        if self._site is None and self._runner is not None:
            self._site = web.TCPSite(self._runner, self.host, self.port)
            await self._site.start()

    def kubeconfig_dict(self) -> dict[str, Any]:
        name = f"budo-replay-{self.scenario.name}"
        return {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": name, "cluster": {"server": self.url}}],
            "users": [{"name": "budo", "user": {}}],
            "contexts": [{"name": name, "context": {
                "cluster": name, "user": "budo", "namespace": self.scenario.namespace}}],
            "current-context": name,
        }

    def write_kubeconfig(self, path: Path | str | None = None) -> Path:
        """Write a kubeconfig pointing at this server (default: a temp dir removed at stop)."""
        if path is None:
            if self._tmpdir is None:
                self._tmpdir = tempfile.TemporaryDirectory(prefix="budo-replay-")
            target = Path(self._tmpdir.name) / "kubeconfig"
        else:
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(self.kubeconfig_dict(), sort_keys=False))
        target.chmod(0o600)
        return target

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append(RequestRecord(request.method, request.path, request.query_string,
                                           request.headers.get("User-Agent", "")))
        faults = self.faults
        if faults.drop_connections and request.transport is not None:
            request.transport.abort()
            return web.Response(status=500)
        if faults.delay > 0:
            await asyncio.sleep(faults.delay)
        if faults.error_status and (not faults.error_paths or any(
                part in request.path for part in faults.error_paths)):
            code = faults.error_status
            message = "Internal error occurred: replay fault injected" if code >= 500 else \
                "replay fault injected"
            return fail(code, message)
        return await handler(request)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await dispatch(self, request)
        except Exception as exc:  # a bug here must look like an API 500, not kill the server
            log.exception("replay server failed on %s %s", request.method, request.path)
            return fail(500, f"Internal error occurred: {type(exc).__name__}: {exc}")


async def serve(scenario: Scenario | str | Path, **kwargs: Any) -> ReplayServer:
    """Start a ReplayServer for a scenario (name, path or Scenario)."""
    return await ReplayServer(scenario, **kwargs).start()


__all__ = ["Deletion", "Faults", "ReplayServer", "serve"]
