"""A verdict is never lost: Slack failures of every shape (HTML 5xx, text/plain 5xx, ok:false,
a failing response_url) become SlackError, and a run's outcome falls back from the channel to
the thread to an ephemeral message, with the audit saying where it landed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.poster import SlackPoster, make_web_client
from budo.config import Settings
from budo.errors import SlackError
from tests.bot_harness import CHANNEL, REQUESTER, VERDICT, FakeCluster, run_id_of, running_bot
from tests.fixtures.slack import BOT_TOKEN


def poster_for(slack, **options) -> SlackPoster:
    settings = Settings(slack_bot_token=BOT_TOKEN, slack_api_url=slack.api_url)
    return SlackPoster(make_web_client(settings, backoff=0.0), **options)


@pytest.mark.parametrize(("status", "content_type", "body"), [
    (500, "text/html", None),                      # Slack's edge error page
    (503, "text/html", None),
    (502, "text/plain", "upstream connect error"),  # slack_sdk hands back a str body
])
async def test_a_5xx_with_a_non_json_body_is_a_slack_error(slack, status, content_type, body):
    options = {"body": body} if body else {}
    slack.fail_http("chat.postMessage", status=status, content_type=content_type, times=5,
                    **options)
    poster = poster_for(slack)
    with pytest.raises(SlackError) as caught:
        await poster.post("C1", "hello")
    assert caught.value.code == f"http_{status}"
    assert str(caught.value).startswith(f"Slack chat.postMessage failed: HTTP {status}")
    assert "\n" not in str(caught.value) and "<html" not in str(caught.value).lower()


async def test_ok_false_and_auth_errors_are_slack_errors_naming_the_error(slack):
    poster = poster_for(slack)
    slack.fail("chat.postMessage", "internal_error")
    with pytest.raises(SlackError, match="internal_error"):
        await poster.post("C1", "x")
    slack.revoke(BOT_TOKEN)
    with pytest.raises(SlackError, match="invalid_auth") as caught:
        await poster.call("auth_test")
    assert caught.value.code == "invalid_auth"


async def test_a_failing_response_url_is_a_slack_error(slack):
    poster = poster_for(slack)
    url = slack.new_response_url(CHANNEL, REQUESTER)
    slack.fail_http("response_url", status=500)
    with pytest.raises(SlackError, match="HTTP 500"):
        await poster.respond(url, "private answer")
    await poster.respond(url, "private answer")   # and the next one goes through
    assert [p.body["text"] for p in slack.response_posts] == ["private answer"]
    with pytest.raises(SlackError, match="HTTP 404"):
        await poster.respond(f"{slack.base_url}/response-url/nope", "lost")


def _verdict_post(params: dict) -> bool:
    return str(params.get("text", "")).startswith("🧭 Verdict") and not params.get("thread_ts")


async def _run_to_the_end(h, slack) -> tuple[str, object]:
    await h.sim.slash_command("investigate why is checkout failing?", user_id=REQUESTER)
    root = await h.root_message()
    run_id = run_id_of(root)
    for _ in range(200):  # the run ends (the audit says so), then leaves the active set
        if (await h.store.get_run(run_id)).status != "running":
            break
        await asyncio.sleep(0.05)
    await h.run_finished(run_id)
    return run_id, root


async def _delivered(h, run_id: str) -> dict:
    events = await h.store.events(run_id)
    delivered = [e for e in events if e.kind == "outcome_delivered"]
    assert len(delivered) == 1
    return delivered[0].payload


async def test_html_500_on_the_verdict_post_falls_back_to_the_thread(slack, scripted_model,
                                                                    tmp_path: Path):
    model = await scripted_model([{"answer": VERDICT}])
    slack.fail_http("chat.postMessage", status=500, times=100, when=_verdict_post)
    async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path) as h:
        run_id, root = await _run_to_the_end(h, slack)
        record = await h.store.get_run(run_id)
        assert record.status == "succeeded"
        in_thread = [m for m in slack.thread(CHANNEL, root.ts) if m.text.startswith("🧭 Verdict")]
        assert len(in_thread) == 1
        assert not [m for m in slack.channel_messages(CHANNEL)
                    if m.text.startswith("🧭 Verdict")]
        delivered = await _delivered(h, run_id)
        assert delivered["via"] == "thread" and delivered["ts"] == in_thread[0].ts
        assert any("HTTP 500" in e for e in delivered["errors"])
        # Retried before falling back: 1 + 2 retries, each retried once by slack_sdk (500).
        tries = [c for c in slack.calls_to("chat.postMessage") if _verdict_post(c.params)]
        assert len(tries) == 6
        final = slack.message(CHANNEL, root.ts)
        assert "verdict posted" not in final.text and "in the thread" in final.text
        assert "budo_cancel" not in str(final.blocks)
        metrics = (await h.bot._metrics(None)).body.decode()
        assert 'budo_slack_api_errors_total{error="http_500",method="chat.postMessage"}' \
            in metrics
        assert 'budo_outcome_deliveries_total{via="thread"} 1.0' in metrics


async def test_channel_and_thread_refusing_the_verdict_leaves_it_with_the_requester(
        slack, scripted_model, tmp_path: Path):
    model = await scripted_model([{"answer": VERDICT}])
    slack.fail("chat.postMessage", "not_in_channel", times=100,
               when=lambda p: str(p.get("text", "")).startswith("🧭 Verdict"))
    async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path) as h:
        run_id, root = await _run_to_the_end(h, slack)
        assert (await h.store.get_run(run_id)).status == "succeeded"
        private = [e for e in slack.ephemerals(CHANNEL, REQUESTER)
                   if e.text.startswith("🧭 Verdict")]
        assert len(private) == 1 and private[0].thread_ts == root.ts
        assert (await _delivered(h, run_id))["via"] == "ephemeral"
        # not_in_channel is not transient: no retries of the channel post.
        tries = [c for c in slack.calls_to("chat.postMessage") if _verdict_post(c.params)]
        assert len(tries) == 1
        final = slack.message(CHANNEL, root.ts)
        assert "sent privately to the requester" in final.text


async def test_when_slack_refuses_everything_the_run_still_ends_and_the_audit_says_so(
        slack, scripted_model, tmp_path: Path):
    model = await scripted_model([{"answer": VERDICT}])
    verdict = lambda p: str(p.get("text", "")).startswith("🧭 Verdict")  # noqa: E731
    slack.fail_http("chat.postMessage", status=503, times=100, when=verdict)
    slack.fail_http("chat.postEphemeral", status=500, times=100, when=verdict)
    async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path) as h:
        run_id, root = await _run_to_the_end(h, slack)
        assert (await h.store.get_run(run_id)).status == "succeeded"
        delivered = await _delivered(h, run_id)
        assert delivered["via"] == "none" and len(delivered["errors"]) == 5
        final = slack.message(CHANNEL, root.ts)
        assert "verdict posted" not in final.text
        assert f"budo export {run_id}" in final.text


async def test_an_html_500_on_the_approval_card_leaves_no_run_running(slack, scripted_model,
                                                                    tmp_path: Path):
    import json

    from tests.test_bot_approvals import DELETE_SCRIPT

    model = await scripted_model(DELETE_SCRIPT)
    slack.fail_http("chat.postMessage", status=500, times=100,
                    when=lambda p: "budo_approve" in json.dumps(p.get("blocks") or []))
    cluster = FakeCluster()
    async with running_bot(slack, model.url, cluster.tools(), tmp_path) as h:
        run_id, _root = await _run_to_the_end(h, slack)
        record = await h.store.get_run(run_id)
        assert record.status in ("succeeded", "failed")
        assert cluster.deletions == []      # no card, no approval, no deletion
        assert (await _delivered(h, run_id))["via"] == "channel"


async def test_a_5xx_on_the_final_root_update_is_retried(slack, scripted_model, tmp_path: Path):
    model = await scripted_model([{"answer": VERDICT}])
    final = lambda p: "verdict posted" in str(p.get("text", ""))  # noqa: E731
    slack.fail_http("chat.update", status=503, times=2, when=final)   # each retried by the SDK
    async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path) as h:
        _run_id, root = await _run_to_the_end(h, slack)
        message = slack.message(CHANNEL, root.ts)
        assert "verdict posted" in message.text and "budo_cancel" not in str(message.blocks)
