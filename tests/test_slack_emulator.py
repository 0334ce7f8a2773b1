"""The Slack emulator, driven through the real slack_sdk clients it stands in for."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from scenarios.slack_emulator import SlackEmulator, sign
from tests.fixtures.slack import BOT_TOKEN, ONCALL_GROUP, SIGNING_SECRET


@pytest.fixture
async def client(slack: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


async def test_auth_test_names_the_bot(client: AsyncWebClient) -> None:
    answer = await client.auth_test()
    assert answer["user_id"] == "U0BOT" and answer["bot_id"] == "B0BOT"
    assert answer["team_id"] == "T0TEST"


async def test_missing_and_wrong_tokens_are_refused(slack: SlackEmulator) -> None:
    with pytest.raises(SlackApiError) as missing:
        await AsyncWebClient(base_url=slack.api_url).auth_test()
    assert missing.value.response["error"] == "not_authed"
    with pytest.raises(SlackApiError) as wrong:
        await AsyncWebClient(token="xoxb-nope", base_url=slack.api_url).auth_test()
    assert wrong.value.response["error"] == "invalid_auth"


async def test_token_in_form_field_is_accepted(slack: SlackEmulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{slack.api_url}auth.test", data={"token": BOT_TOKEN}) as r:
            assert (await r.json())["ok"] is True


async def test_unknown_method(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        await client.api_call("chat.teleport")
    assert err.value.response["error"] == "unknown_method"


async def test_post_then_update_keeps_history(slack: SlackEmulator,
                                              client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C1", text="investigating",
                                           blocks=[_section("*investigating*")])
    ts = posted["ts"]
    int_part, frac = ts.split(".")
    assert len(int_part) == 10 and len(frac) == 6
    assert posted["message"]["blocks"][0]["text"]["text"] == "*investigating*"
    updated = await client.chat_update(channel="C1", ts=ts, text="done",
                                       blocks=[_section("*done*")])
    assert updated["ts"] == ts and updated["message"]["edited"]["user"] == "U0BOT"
    assert [m.text for m in slack.channel_messages("C1")] == ["done"]
    assert [v["text"] for v in slack.updates("C1", ts)] == ["investigating", "done"]
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel="C1", ts="1.000001", text="x")
    assert err.value.response["error"] == "message_not_found"


async def test_thread_replies_and_broadcast(slack: SlackEmulator,
                                            client: AsyncWebClient) -> None:
    parent = (await client.chat_postMessage(channel="C1", text="parent"))["ts"]
    await client.chat_postMessage(channel="C1", text="one", thread_ts=parent)
    await client.chat_postMessage(channel="C1", text="two", thread_ts=parent,
                                  reply_broadcast=True)
    assert [m.text for m in slack.thread("C1", parent)] == ["one", "two"]
    assert [m.text for m in slack.channel_messages("C1")] == ["parent", "two"]
    replies = await client.conversations_replies(channel="C1", ts=parent)
    assert [m["text"] for m in replies["messages"]] == ["parent", "one", "two"]
    assert replies["messages"][0]["reply_count"] == 2
    history = await client.conversations_history(channel="C1")
    assert [m["text"] for m in history["messages"]] == ["two", "parent"]
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="x", thread_ts="1.000001")
    assert err.value.response["error"] == "thread_not_found"


async def test_ephemerals_are_per_user_and_not_in_history(slack: SlackEmulator,
                                                          client: AsyncWebClient) -> None:
    answer = await client.chat_postEphemeral(channel="C1", user="U2", text="only you")
    assert answer["message_ts"]
    await client.chat_postEphemeral(channel="C1", user="U3", text="only them")
    assert [e.text for e in slack.ephemerals("C1", user="U2")] == ["only you"]
    assert len(slack.ephemerals("C1")) == 2
    assert slack.channel_messages("C1") == []


async def test_reactions_add_and_remove(slack: SlackEmulator, client: AsyncWebClient) -> None:
    ts = (await client.chat_postMessage(channel="C1", text="x"))["ts"]
    await client.reactions_add(channel="C1", timestamp=ts, name="eyes")
    assert slack.message("C1", ts).reactions == {"eyes": ["U0BOT"]}
    with pytest.raises(SlackApiError) as err:
        await client.reactions_add(channel="C1", timestamp=ts, name="eyes")
    assert err.value.response["error"] == "already_reacted"
    await client.reactions_remove(channel="C1", timestamp=ts, name="eyes")
    assert slack.message("C1", ts).reactions == {}
    with pytest.raises(SlackApiError) as err:
        await client.reactions_remove(channel="C1", timestamp=ts, name="eyes")
    assert err.value.response["error"] == "no_reaction"


async def test_usergroup_members(slack: SlackEmulator, client: AsyncWebClient) -> None:
    assert (await client.usergroups_users_list(usergroup=ONCALL_GROUP))["users"] == ["U_ONCALL"]
    slack.set_usergroup(ONCALL_GROUP, ["UA", "UB"])
    assert (await client.usergroups_users_list(usergroup=ONCALL_GROUP))["users"] == ["UA", "UB"]
    with pytest.raises(SlackApiError) as err:
        await client.usergroups_users_list(usergroup="S0NOPE")
    assert err.value.response["error"] == "no_such_subteam"


async def test_users_info(slack: SlackEmulator, client: AsyncWebClient) -> None:
    slack.add_user("U2", "alice", real_name="Alice A")
    user = (await client.users_info(user="U2"))["user"]
    assert user["name"] == "alice" and user["profile"]["real_name"] == "Alice A"
    with pytest.raises(SlackApiError) as err:
        await client.users_info(user="not-a-user")
    assert err.value.response["error"] == "user_not_found"


async def test_files_upload_v2_into_a_thread(slack: SlackEmulator,
                                             client: AsyncWebClient) -> None:
    parent = (await client.chat_postMessage(channel="C1", text="run"))["ts"]
    answer = await client.files_upload_v2(channel="C1", thread_ts=parent,
                                          content="line 1\nline 2\n", filename="transcript.txt",
                                          title="Transcript", initial_comment="full log")
    assert answer["file"]["title"] == "Transcript"
    [uploaded] = slack.files
    assert uploaded.content == b"line 1\nline 2\n" and uploaded.filename == "transcript.txt"
    assert (uploaded.channel, uploaded.thread_ts) == ("C1", parent)
    [share] = slack.thread("C1", parent)
    assert share.text == "full log" and share.files[0]["id"] == uploaded.id


async def test_rate_limited_call_is_retried_by_the_sdk(slack: SlackEmulator) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url,
                            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    slack.rate_limit("chat.postMessage", times=1, retry_after=0)
    await client.chat_postMessage(channel="C1", text="eventually")
    calls = slack.calls_to("chat.postMessage")
    assert [c.response.get("error", "ok") for c in calls] == ["ratelimited", "ok"]
    assert [m.text for m in slack.channel_messages("C1")] == ["eventually"]


async def test_rate_limit_answers_429_with_retry_after(slack: SlackEmulator,
                                                       client: AsyncWebClient) -> None:
    slack.rate_limit("chat.update", times=1, retry_after=7)
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel="C1", ts="1.000001", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"
    assert err.value.response["error"] == "ratelimited"


@pytest.mark.parametrize(("blocks", "pointer"), [
    ([_section("x" * 3001)], "/blocks/0/text/text"),
    ([_section("x")] * 51, "/blocks"),
    ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
     "/blocks/0/text/text"),
    ([{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}], "/blocks/0/text/type"),
    ([{"type": "actions", "elements": [{"type": "button", "action_id": "a",
                                        "text": {"type": "plain_text", "text": "b" * 76}}]}],
     "/blocks/0/elements/0/text/text"),
    ([{"type": "actions", "elements": [{"type": "button", "action_id": "a" * 256,
                                        "text": {"type": "plain_text", "text": "ok"}}]}],
     "/blocks/0/elements/0/action_id"),
    ([{"type": "actions", "elements": [{"type": "button", "action_id": "a", "value": "v" * 2001,
                                        "text": {"type": "plain_text", "text": "ok"}}]}],
     "/blocks/0/elements/0/value"),
    ([{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
     "/blocks/0/elements"),
    ([{"type": "actions", "elements": [{"type": "button", "action_id": f"a{i}",
                                        "text": {"type": "plain_text", "text": "ok"}}
                                       for i in range(26)]}], "/blocks/0/elements"),
    ([{"type": "sektion", "text": {"type": "mrkdwn", "text": "x"}}], "/blocks/0"),
    ([_section("")], "/blocks/0/text/text"),
])
async def test_invalid_blocks_are_rejected(client: AsyncWebClient, blocks: list,
                                           pointer: str) -> None:
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="fallback", blocks=blocks)
    assert err.value.response["error"] == "invalid_blocks"
    assert any(f"[json-pointer:{pointer}]" in e for e in err.value.response["errors"])


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_message_limits(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="x" * 40_001)
    assert err.value.response["error"] == "msg_too_long"
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="")
    assert err.value.response["error"] == "no_text"
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="#not an id", text="x")
    assert err.value.response["error"] == "channel_not_found"


async def test_calls_are_recorded_with_params(slack: SlackEmulator,
                                              client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel="C1", text="a")
    await client.chat_postMessage(channel="C1", text="b")
    [first, second] = slack.calls_to("chat.postMessage")
    assert first.params["text"] == "a" and first.ok and second.at >= first.at
    assert "token" not in first.params
    assert len(slack.post_times("C1")) == 2


async def test_wait_for_sees_a_later_post(slack: SlackEmulator, client: AsyncWebClient) -> None:
    async def post_later() -> None:
        await asyncio.sleep(0.05)
        await client.chat_postMessage(channel="C1", text="late")

    task = asyncio.create_task(post_later())
    messages = await slack.wait_for(lambda: slack.channel_messages("C1"), timeout=2)
    assert messages[0].text == "late"
    await task
    with pytest.raises(AssertionError, match=r"within 0\.1s"):
        await slack.wait_for(lambda: slack.thread("C1", "1.000001"), timeout=0.1)


def test_sign_verifies_with_slack_sdk() -> None:
    body = b"command=%2Fbudo&text=hello"
    headers = sign(SIGNING_SECRET, body)
    verifier = SignatureVerifier(SIGNING_SECRET)
    assert verifier.is_valid_request(body, headers)
    assert not SignatureVerifier("other-secret").is_valid_request(body, headers)
    stale = sign(SIGNING_SECRET, body, timestamp=1_000_000_000)
    assert not verifier.is_valid_request(body, stale)
    assert stale["X-Slack-Signature"] == verifier.generate_signature(
        timestamp="1000000000", body=body)


async def test_json_body_with_token_in_body_is_not_authed(slack: SlackEmulator) -> None:
    async with aiohttp.ClientSession() as session:
        url = f"{slack.api_url}chat.postMessage"
        async with session.post(url, json={"token": BOT_TOKEN, "channel": "C1",
                                           "text": "x"}) as response:
            assert (await response.json())["error"] == "not_authed"
        async with session.post(url, data=json.dumps({"channel": "C1", "text": "x"}),
                                headers={"Authorization": f"Bearer {BOT_TOKEN}",
                                         "Content-Type": "application/json"}) as response:
            assert (await response.json())["ok"] is True


async def test_update_without_blocks_keeps_them_and_empty_list_clears(
        slack: SlackEmulator, client: AsyncWebClient) -> None:
    ts = (await client.chat_postMessage(channel="C1", text="a", blocks=[_section("a")]))["ts"]
    await client.chat_update(channel="C1", ts=ts, text="b")
    assert slack.message("C1", ts).blocks == [_section("a")]
    await client.chat_update(channel="C1", ts=ts, text="c", blocks=[])
    assert slack.message("C1", ts).blocks == []


async def test_post_to_a_user_id_lands_in_their_dm(slack: SlackEmulator,
                                                   client: AsyncWebClient) -> None:
    answer = await client.chat_postMessage(channel="U2", text="psst")
    opened = await client.conversations_open(users="U2")
    assert answer["channel"].startswith("D") and opened["channel"]["id"] == answer["channel"]
    assert [m.text for m in slack.channel_messages(answer["channel"])] == ["psst"]


async def test_permalink_of_a_reply_names_the_thread(client: AsyncWebClient) -> None:
    parent = (await client.chat_postMessage(channel="C1", text="p"))["ts"]
    reply = (await client.chat_postMessage(channel="C1", text="r", thread_ts=parent))["ts"]
    link = (await client.chat_getPermalink(channel="C1", message_ts=reply))["permalink"]
    assert f"/archives/C1/p{reply.replace('.', '')}?thread_ts={parent}" in link


async def test_post_rate_limit_per_channel(slack: SlackEmulator,
                                           client: AsyncWebClient) -> None:
    slack.limit_post_rate(per_second=1, burst=2)
    await client.chat_postMessage(channel="C1", text="1")
    await client.chat_postMessage(channel="C1", text="2")
    await client.chat_postMessage(channel="C2", text="other channel, own bucket")
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="3")
    assert err.value.response.status_code == 429
    assert int(err.value.response.headers["Retry-After"]) >= 1
    assert [method for method, _, _ in slack.limits.rejected_by_post_rate] == ["chat.postMessage"]
    assert len(slack.post_times("C1")) == 2


async def test_injected_failure_then_recovery(slack: SlackEmulator,
                                              client: AsyncWebClient) -> None:
    slack.fail("usergroups.users.list", "missing_scope")
    with pytest.raises(SlackApiError) as err:
        await client.usergroups_users_list(usergroup="S0ONCALL")
    assert err.value.response["error"] == "missing_scope"
    assert (await client.usergroups_users_list(usergroup="S0ONCALL"))["users"] == ["U_ONCALL"]


async def test_response_url_posts_are_applied(slack: SlackEmulator,
                                              client: AsyncWebClient) -> None:
    ts = (await client.chat_postMessage(channel="C1", text="root"))["ts"]
    hook = slack.new_response_url("C1", "U2", message_ts=ts, thread_ts=ts)
    async with aiohttp.ClientSession() as session:
        async with session.post(hook, json={"text": "just you"}) as response:
            assert response.status == 200
        async with session.post(hook, json={"text": "all", "response_type": "in_channel"}):
            pass
        async with session.post(hook, json={"blocks": [_section("x" * 3001)]}) as response:
            assert response.status == 400 and await response.text() == "invalid_blocks"
    assert [e.text for e in slack.ephemerals("C1", "U2")] == ["just you"]
    assert [m.text for m in slack.thread("C1", ts)] == ["all"]
    assert len(slack.response_posts) == 2


async def test_form_encoded_blocks_are_parsed_validated_and_recorded(
        slack: SlackEmulator) -> None:
    url = f"{slack.api_url}chat.postMessage"
    auth = {"Authorization": f"Bearer {BOT_TOKEN}"}
    async with aiohttp.ClientSession(headers=auth) as session:
        good = json.dumps([_section("hi")])
        async with session.post(url, data={"channel": "C1", "blocks": good}) as response:
            assert (await response.json())["ok"] is True
        bad = json.dumps([_section("x" * 3001)])
        async with session.post(url, data={"channel": "C1", "blocks": bad}) as response:
            assert (await response.json())["error"] == "invalid_blocks"
        async with session.post(url, data={"channel": "C1", "blocks": "[{"}) as response:
            assert (await response.json())["error"] == "invalid_blocks_format"
    assert slack.calls_to("chat.postMessage")[0].params["blocks"] == [_section("hi")]
