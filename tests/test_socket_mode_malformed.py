"""Socket Mode over malformed envelopes: `budo serve`'s Socket Mode connection (the real
slack_sdk client and Bolt handler) against the emulator's websocket, which pushes frames no
real Slack would send — bad JSON, envelopes whose payload or fields have the wrong shape.

Like the HTTP path (tests/test_bot_security.py), each gets one log line and no traceback,
nothing is run, and the connection keeps working."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from bot.bot import BudoBot
from bot.serve import open_server
from storage.store import Store
from tests.bot_harness import CHANNEL, REQUESTER, bot_settings
from tests.fixtures.slack import APP_TOKEN


def envelope(type_: object, payload: object, envelope_id: object = "e-bad") -> str:
    return json.dumps({"envelope_id": envelope_id, "type": type_, "payload": payload,
                       "accepts_response_payload": True})


SLASH = {"command": "/budo", "text": "investigate x", "user_id": REQUESTER,
         "channel_id": CHANNEL, "team_id": "T0TEST", "api_app_id": "A0BUDO"}
MENTION = {"type": "event_callback", "event_id": "Ev1", "team_id": "T0TEST",
           "event": {"type": "app_mention", "user": REQUESTER, "channel": CHANNEL,
                     "text": "<@UBUDO> investigate x", "ts": "1.000001"}}

MALFORMED = [
    '{"envelope_id": "e1", "type": "events_api", "payload": {',          # cut off
    '{"envelope_id": "e2", "type": "slash_commands", "payload": {"text": "x",}}',
    envelope("slash_commands", [1, 2]),
    envelope("events_api", 5),
    envelope("interactive", None),
    envelope(5, SLASH),
    envelope("slash_commands", SLASH, envelope_id=["e"]),
    envelope("slash_commands", {**SLASH, "text": 123}),
    envelope("slash_commands", {**SLASH, "user_id": {"id": REQUESTER}}),
    envelope("events_api", {**MENTION, "event": "app_mention"}),
    envelope("events_api", {**MENTION, "event": {**MENTION["event"], "text": ["x"]}}),
    envelope("events_api", {**MENTION, "type": 7}),
    envelope("interactive", {"type": "block_actions", "actions": "approve", "user": {}}),
    envelope("interactive", {"type": "block_actions", "actions": [], "user": "U1"}),
    envelope("interactive", {"type": "block_actions", "actions": [5], "user": {"id": "U1"}}),
]


@pytest.mark.parametrize("frame", MALFORMED)
async def test_a_malformed_envelope_is_one_log_line_and_the_connection_keeps_working(
        slack, scripted_model, tmp_path: Path, caplog, frame: str) -> None:
    model = await scripted_model([])
    settings = bot_settings(slack, model.url, tmp_path, slack_app_token=APP_TOKEN,
                            slack_signing_secret=None)
    store = await Store.open(settings.db_path)
    bot = BudoBot(settings, store, toolbox_factory=lambda _s: [], update_interval=0.05,
                  rate_per_channel=100)
    serving = await open_server(bot, "127.0.0.1", 0)
    try:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            await slack.socket.push_raw(frame)
            # The client handles frames in tasks of their own: wait for the line, not a clock.
            for _ in range(200):
                if any("malformed" in r.getMessage() for r in caplog.records):
                    break
                await asyncio.sleep(0.01)
            # The connection still works: a good envelope is acked and answered (and by then
            # anything else the bad frame caused has been logged).
            help_envelope = await slack.socket_push("slash_commands", {**SLASH, "text": ""})
            assert "/budo investigate" in json.dumps(
                (await slack.socket_wait_ack(help_envelope)).get("payload"))
            records = list(caplog.records)
        noisy = [r for r in records if r.levelno >= logging.WARNING]
        assert len(noisy) == 1, [r.getMessage() for r in noisy]
        assert "malformed" in noisy[0].getMessage()
        assert all(r.exc_info is None and "Traceback" not in r.getMessage() for r in records)
        assert await store.list_runs(limit=5) == []  # nothing was started
    finally:
        await serving.close(grace=0.5)
        await store.close()
