"""Slack -> app: signed HTTP requests into a real Bolt app, and Socket Mode, via the emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond, AsyncSay
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from scenarios.slack_emulator import SlackClientSim, SlackEmulator
from tests.fixtures.slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET


@pytest.fixture
async def client(slack: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)


@pytest.fixture
async def bolt_url(slack: SlackEmulator) -> AsyncIterator[str]:
    """A real slack-bolt AsyncApp in HTTP mode whose handlers talk back to the emulator."""
    app = AsyncApp(signing_secret=SIGNING_SECRET,
                   client=AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url))

    @app.command("/budo")
    async def on_command(ack: AsyncAck, command: dict, say: AsyncSay) -> None:
        await ack(f"on it: {command['text']}")
        await say(f"investigating {command['text']} for <@{command['user_id']}>")

    @app.action("approve")
    async def on_approve(ack: AsyncAck, body: dict, respond: AsyncRespond) -> None:
        await ack()
        await respond(replace_original=True, text=f"approved by {body['user']['id']}")

    @app.event("app_mention")
    async def on_mention(event: dict, say: AsyncSay) -> None:
        await say(text="looking", thread_ts=event.get("thread_ts") or event["ts"])

    @app.event("message")
    async def on_message(event: dict, client: AsyncWebClient) -> None:
        await client.reactions_add(channel=event["channel"], timestamp=event["ts"], name="eyes")

    runner = web.AppRunner(app.web_app(path="/slack/events"), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/slack/events"
    finally:
        await runner.cleanup()


@pytest.fixture
async def sim(slack: SlackEmulator, bolt_url: str) -> AsyncIterator[SlackClientSim]:
    async with SlackClientSim(bolt_url, SIGNING_SECRET, emulator=slack) as simulator:
        yield simulator


async def test_slash_command_reaches_bolt_and_it_posts_back(slack: SlackEmulator,
                                                            sim: SlackClientSim) -> None:
    reply = await sim.slash_command("pod web-1", user_id="U7", channel_id="C1")
    assert reply.status == 200 and reply.body == "on it: pod web-1"
    assert reply.elapsed > 0
    [message] = await slack.wait_for(lambda: slack.channel_messages("C1"))
    assert message.text == "investigating pod web-1 for <@U7>"
    assert slack.calls_to("auth.test"), "Bolt verifies its token first"


async def test_bad_signature_and_stale_timestamp_get_401(sim: SlackClientSim) -> None:
    assert (await sim.slash_command("x", bad_signature=True)).status == 401
    assert (await sim.slash_command("x", stale=True)).status == 401


async def test_button_click_respond_replaces_the_original(slack: SlackEmulator,
                                                          client: AsyncWebClient,
                                                          sim: SlackClientSim) -> None:
    ts = (await client.chat_postMessage(channel="C1", text="approve?", blocks=[{
        "type": "actions", "block_id": "approval", "elements": [{
            "type": "button", "action_id": "approve", "value": "run-1",
            "text": {"type": "plain_text", "text": "Approve"}}]}]))["ts"]
    reply = await sim.block_action("approve", "run-1", user_id="U_ONCALL", channel_id="C1",
                                   message_ts=ts, block_id="approval")
    assert reply.status == 200
    await slack.wait_for(lambda: slack.response_posts)
    assert slack.message("C1", ts).text == "approved by U_ONCALL"
    assert [v["text"] for v in slack.updates("C1", ts)] == ["approve?", "approved by U_ONCALL"]


async def test_app_mention_reply_lands_in_the_thread(slack: SlackEmulator,
                                                     sim: SlackClientSim) -> None:
    reply = await sim.app_mention("<@U0BOT> why is checkout down?", user="U7", channel="C1")
    assert reply.status == 200
    [mention] = slack.channel_messages("C1")
    [answer] = await slack.wait_for(lambda: slack.thread("C1", mention.ts))
    assert answer.text == "looking" and answer.user == "U0BOT"


async def test_url_verification_echoes_the_challenge(sim: SlackClientSim) -> None:
    reply = await sim.url_verification("chal-123")
    assert reply.status == 200 and reply.json() == {"challenge": "chal-123"}


async def test_socket_mode_client_connects_receives_and_acks(slack: SlackEmulator) -> None:
    client = SocketModeClient(app_token=APP_TOKEN,
                              web_client=AsyncWebClient(base_url=slack.api_url))
    received: list[SocketModeRequest] = []

    async def listener(socket: SocketModeClient, request: SocketModeRequest) -> None:
        received.append(request)
        await socket.send_socket_mode_response(SocketModeResponse(
            envelope_id=request.envelope_id, payload={"text": "ack from client"}))

    client.socket_mode_request_listeners.append(listener)
    await client.connect()
    try:
        envelope_id = await slack.socket_push("slash_commands", {"command": "/budo",
                                                                 "text": "hi"})
        ack = await slack.socket_wait_ack(envelope_id, timeout=5)
        assert ack["payload"] == {"text": "ack from client"}
        assert received[0].type == "slash_commands" and received[0].payload["text"] == "hi"
        assert slack.calls_to("apps.connections.open")[0].ok
    finally:
        await client.close()


async def test_bolt_socket_mode_handler_acks_a_slash_command(slack: SlackEmulator) -> None:
    app = AsyncApp(client=AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url))

    @app.command("/budo")
    async def on_command(ack: AsyncAck, say: AsyncSay) -> None:
        await ack("queued")
        await say("via socket")

    handler = AsyncSocketModeHandler(app, app_token=APP_TOKEN)
    await handler.connect_async()
    try:
        envelope_id = await slack.socket_push("slash_commands", {
            "command": "/budo", "text": "x", "user_id": "U1", "channel_id": "C1",
            "team_id": "T0TEST", "api_app_id": "A0BUDO", "trigger_id": "1.2.3",
            "response_url": slack.new_response_url("C1", "U1")})
        ack = await slack.socket_wait_ack(envelope_id)
        assert ack["payload"]["text"] == "queued"
        await slack.wait_for(lambda: slack.channel_messages("C1"))
    finally:
        await handler.close_async()


async def test_bot_token_cannot_open_a_socket(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        await client.apps_connections_open(app_token=BOT_TOKEN)
    assert err.value.response["error"] == "not_allowed_token_type"


async def test_sim_message_event_is_stored_and_delivered(slack: SlackEmulator,
                                                         sim: SlackClientSim) -> None:
    await sim.app_mention("<@U0BOT> look", user="U7", channel="C1")
    [root] = slack.channel_messages("C1")
    reply = await sim.message("more context", user="U7", channel="C1", thread_ts=root.ts)
    assert reply.status == 200
    [stored] = [m for m in slack.thread("C1", root.ts) if m.text == "more context"]
    await slack.wait_for(lambda: stored.reactions)
    assert stored.reactions == {"eyes": ["U0BOT"]} and stored.user == "U7"


async def test_socket_mode_client_follows_a_refresh_disconnect(slack: SlackEmulator) -> None:
    client = SocketModeClient(app_token=APP_TOKEN,
                              web_client=AsyncWebClient(base_url=slack.api_url))

    async def listener(socket: SocketModeClient, request: SocketModeRequest) -> None:
        await socket.send_socket_mode_response(SocketModeResponse(request.envelope_id))

    client.socket_mode_request_listeners.append(listener)
    await client.connect()
    try:
        await slack.socket_wait_connected()
        await slack.socket.disconnect_all("refresh_requested")
        await slack.wait_for(lambda: slack.socket.connections_total == 2
                             and len(slack.socket.sockets) == 1)
        envelope_id = await slack.socket_push("events_api", {"event": {"type": "app_mention"}})
        assert (await slack.socket_wait_ack(envelope_id))["envelope_id"] == envelope_id
        assert len(slack.calls_to("apps.connections.open")) == 2
    finally:
        await client.close()
