"""Socket Mode's server side: a websocket that says hello, pushes envelopes, collects acks.

Wire format (https://docs.slack.dev/apis/events-api/using-socket-mode): the server sends
{"type": "hello", ...} on connect, then envelopes {"envelope_id", "type", "payload",
"accepts_response_payload"}; the app answers each with {"envelope_id", "payload"?}.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from .state import APP_ID

log = logging.getLogger(__name__)


class SocketModeHub:
    """Connected sockets, acks by envelope id, and the envelopes that were pushed."""

    def __init__(self, on_change: Callable[[], None] = lambda: None) -> None:
        self._on_change = on_change
        self.sockets: list[web.WebSocketResponse] = []
        self.acks: dict[str, dict[str, Any]] = {}
        self.pushed: list[dict[str, Any]] = []
        self.unparsed: list[str] = []  # frames that were not JSON acks: a client bug to assert on
        self.connections_total = 0
        self._changed = asyncio.Condition()

    async def _notify(self) -> None:
        self._on_change()
        async with self._changed:
            self._changed.notify_all()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)  # answers the SDK's ping with the same data
        await ws.prepare(request)
        self.sockets.append(ws)
        self.connections_total += 1
        await ws.send_json({"type": "hello", "num_connections": len(self.sockets),
                            "debug_info": {"host": "applink-emulator", "build_number": 1,
                                           "approximate_connection_time": 18060},
                            "connection_info": {"app_id": APP_ID}})
        await self._notify()
        try:
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                try:
                    ack = json.loads(frame.data)
                    envelope_id = ack["envelope_id"]
                    if not isinstance(envelope_id, str):
                        raise TypeError(envelope_id)
                except (ValueError, KeyError, TypeError):
                    self.unparsed.append(frame.data)
                    continue
                ack["received_at"] = time.monotonic()
                self.acks[envelope_id] = ack
                await self._notify()
        finally:
            if ws in self.sockets:
                self.sockets.remove(ws)
            await self._notify()
        return ws

    async def wait_connected(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 (test API)
        await self._wait(lambda: bool(self.sockets), timeout, "no Socket Mode client connected")

    async def push(self, type: str, payload: dict[str, Any], *,
                   accepts_response_payload: bool | None = None, retry_attempt: int = 0,
                   retry_reason: str = "", connect_timeout: float = 5.0) -> str:
        """Send one envelope to the newest connection; waits for a client to connect first."""
        await self.wait_connected(connect_timeout)
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {"envelope_id": envelope_id, "type": type, "payload": payload}
        # Slack sets accepts_response_payload on slash commands and interactivity, not events.
        if accepts_response_payload is None:
            accepts_response_payload = type != "events_api"
        envelope["accepts_response_payload"] = accepts_response_payload
        if type == "events_api":
            envelope.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
        self.pushed.append(envelope)
        open_sockets = [ws for ws in self.sockets if not ws.closed]
        if not open_sockets:
            raise AssertionError("the Socket Mode connection closed before the push")
        await open_sockets[-1].send_json(envelope)
        return envelope_id

    async def push_raw(self, frame: str, connect_timeout: float = 5.0) -> None:
        """Send one text frame as is: what a broken or hostile server could send (bad JSON,
        envelopes of the wrong shape). Real Slack sends only well-formed envelopes."""
        await self.wait_connected(connect_timeout)
        open_sockets = [ws for ws in self.sockets if not ws.closed]
        if not open_sockets:
            raise AssertionError("the Socket Mode connection closed before the push")
        await open_sockets[-1].send_str(frame)

    async def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109 (test API)
        await self._wait(lambda: envelope_id in self.acks, timeout,
                         f"no ack for envelope {envelope_id}")
        return self.acks[envelope_id]

    async def disconnect_all(self, reason: str = "refresh_requested",
                             close: bool = False) -> None:
        """Slack's connection rotation: a `disconnect` message; the client then reconnects and
        closes the old socket itself (Slack closes it ~10 s later). close=True closes now."""
        for ws in list(self.sockets):
            if not ws.closed:
                await ws.send_json({"type": "disconnect", "reason": reason,
                                    "debug_info": {"host": "applink-emulator"}})
                if close:
                    await ws.close()

    async def _wait(self, predicate: Any, timeout: float, what: str) -> None:  # noqa: ASYNC109 (test API)
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
            except TimeoutError:
                raise AssertionError(f"{what} within {timeout}s") from None
