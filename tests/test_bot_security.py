"""Who may see what, and exactly-once delivery: signed requests into the real Bolt app."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from agent.kube import Cluster
from agent.tools import build_toolbox
from tests.bot_harness import (
    CHANNEL,
    ONCALL_USER,
    REQUESTER,
    VERDICT,
    FakeCluster,
    run_id_of,
    running_bot,
)

OTHER = "C_OTHER"
ANSWER = [{"answer": VERDICT}]


async def replies_with(h, text: str):
    return await h.slack.wait_for(
        lambda: [p for p in h.slack.response_posts if text in p.body.get("text", "")],
        message=f"no reply containing {text!r}")


async def test_exports_and_listings_stay_in_their_channel(slack, scripted_model, tmp_path: Path):
    slack.add_channel(OTHER, "elsewhere")
    model = await scripted_model(ANSWER)
    async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path) as h:
        await h.sim.slash_command("investigate checkout is down", user_id=REQUESTER)
        root = await h.root_message()
        run_id = run_id_of(root)
        await h.top_level("🧭 Verdict")
        await h.run_finished(run_id)
        terminal = await h.store.start_run(source="terminal", question="local secret run")

        # Another channel: neither the listing nor an export by id shows the run.
        await h.sim.slash_command("runs", user_id="U_SPY", channel_id=OTHER)
        listed = await replies_with(h, "No investigations in this channel")
        assert run_id not in listed[0].body["text"]
        await h.sim.slash_command(f"export {run_id}", user_id="U_SPY", channel_id=OTHER)
        refused = await replies_with(h, f"There is no run {run_id} in this channel")
        assert refused[0].body["response_type"] == "ephemeral"
        # A terminal run is never uploaded, not even into the channel that asks by id.
        await h.sim.slash_command(f"export {terminal.id}", user_id=REQUESTER)
        await replies_with(h, f"There is no run {terminal.id} in this channel")
        await h.sim.slash_command("export r-doesnotexist", user_id=REQUESTER)
        await replies_with(h, "There is no run r-doesnotexist in this channel")
        assert slack.files == []

        # Its own channel: listed and exported into the run's thread.
        await h.sim.slash_command("runs", user_id=REQUESTER)
        await replies_with(h, run_id)
        await h.sim.slash_command(f"export {run_id}", user_id=REQUESTER)
        files = await slack.wait_for(lambda: len(slack.files) == 2 and slack.files)
        assert all(f.channel == CHANNEL and f.thread_ts == root.ts for f in files)
        assert not any(terminal.id in (f.content or b"").decode() for f in files)


# --- exactly once ----------------------------------------------------------------------------


def mention_envelope(text: str, event_id: str = "Ev0DUPLICATE1") -> bytes:
    event = {"type": "app_mention", "user": REQUESTER, "text": f"<@U0BOT> {text}",
             "ts": "1700000000.000100", "channel": CHANNEL, "event_ts": "1700000000.000100",
             "team": "T0TEST"}
    return json.dumps({"token": "x", "team_id": "T0TEST", "api_app_id": "A0BUDO",
                       "event": event, "type": "event_callback", "event_id": event_id,
                       "event_time": int(time.time()),
                       "authorizations": [{"team_id": "T0TEST", "user_id": "U0BOT",
                                           "is_bot": True}]}).encode()


def slash_body(text: str, trigger_id: str | None = "1700000000.1.abc") -> bytes:
    fields = {"team_id": "T0TEST", "channel_id": CHANNEL, "user_id": REQUESTER,
              "user_name": "asker", "command": "/budo", "text": text, "api_app_id": "A0BUDO"}
    if trigger_id:
        fields["trigger_id"] = trigger_id
    return urlencode(fields).encode()


async def roots(h) -> list:
    return [m for m in h.slack.channel_messages(CHANNEL) if m.text.startswith("🔍")]


async def test_slack_retries_and_replays_start_one_run_even_after_a_restart(
        slack, scripted_model, tmp_path: Path):
    model = await scripted_model([{"answer": VERDICT}] * 10)
    form = "application/x-www-form-urlencoded"
    async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path) as h:
        # The same event twice: Slack's retry carries the same event_id.
        first = await h.sim.post(mention_envelope("checkout is down"), "application/json")
        retry = await h.sim.post(mention_envelope("checkout is down"), "application/json",
                                 extra_headers={"X-Slack-Retry-Num": "1",
                                                "X-Slack-Retry-Reason": "http_timeout"})
        assert first.status == retry.status == 200
        # One captured signed slash command replayed 5 times within the 5-minute window,
        # and one without a trigger_id (deduplicated by the hash of the signed body).
        for _ in range(5):
            assert (await h.sim.post(slash_body("investigate payments"), form)).status == 200
        for _ in range(3):
            assert (await h.sim.post(slash_body("investigate carts", None), form)).status == 200
        await slack.wait_for(lambda: len([m for m in slack.channel_messages(CHANNEL)
                                          if m.text.startswith("🧭")]) == 3,
                             message="three verdicts")
        assert len(await roots(h)) == 3
        runs = await h.store.list_runs(limit=50)
        assert sorted(r.question for r in runs) == ["carts", "checkout is down", "payments"]

    # After a restart the same deliveries are still known.
    async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path) as h2:
        await h2.sim.post(mention_envelope("checkout is down"), "application/json",
                          extra_headers={"X-Slack-Retry-Num": "2"})
        await h2.sim.post(slash_body("investigate payments"), form)
        await h2.sim.post(slash_body("investigate carts", None), form)
        # A genuinely new command still works.
        await h2.sim.slash_command("investigate fresh question", user_id=REQUESTER)
        await slack.wait_for(lambda: len([m for m in slack.channel_messages(CHANNEL)
                                          if m.text.startswith("🧭")]) == 4,
                             message="the fresh question's verdict")
        runs = await h2.store.list_runs(limit=50)
        assert len(runs) == 4


# --- malformed signed payloads ----------------------------------------------------------------


MALFORMED = [
    (b"{bad json", "application/json"),
    (b"[1, 2]", "application/json"),
    (b"null", "application/json"),
    (b"\xff\xfe\x00{}", "application/json"),
    (b'{"type": 5}', "application/json"),
    (b'{"type": "event_callback", "event": []}', "application/json"),
    (b'{"type": "event_callback", "event_id": "Ev9", "event": {"type": "app_mention", '
     b'"user": "U1", "channel": "C1", "text": ["x"], "ts": "1.1"}}', "application/json"),
    (b"payload=%7Bbad", "application/x-www-form-urlencoded"),
    (b"payload=%5B1%5D", "application/x-www-form-urlencoded"),
    (b"payload=" + quote(json.dumps({"type": "block_actions", "actions": 5})).encode(),
     "application/x-www-form-urlencoded"),
    (b"command=%2Fbudo&text=%FF%FE", "application/x-www-form-urlencoded"),
    (b"\xff\xfe=\xff", "application/x-www-form-urlencoded"),
]


@pytest.mark.parametrize(("body", "content_type"), MALFORMED)
async def test_malformed_signed_payloads_get_400_and_one_log_line(
        slack, scripted_model, tmp_path: Path, caplog, body: bytes, content_type: str):
    model = await scripted_model([])
    async with running_bot(slack, model.url, [], tmp_path) as h:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            reply = await h.sim.post(body, content_type)
            unsigned = await h.sim.post(body, content_type, bad_signature=True)
        assert reply.status == 400 and "malformed request" in reply.body
        assert unsigned.status == 401
        noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(noisy) == 1 and noisy[0].exc_info is None
        assert "malformed" in noisy[0].getMessage()
        assert not any("Traceback" in r.getMessage() for r in caplog.records)
        # The bot still works afterwards.
        assert (await h.sim.slash_command("help")).status == 200


# --- the audit head in the thread -------------------------------------------------------------


async def test_the_final_audit_hash_is_posted_in_the_thread_and_the_export(
        slack, scripted_model, tmp_path: Path):
    model = await scripted_model(ANSWER)
    async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path) as h:
        await h.sim.slash_command("investigate checkout is down", user_id=REQUESTER)
        root = await h.root_message()
        run_id = run_id_of(root)
        await h.top_level("🧭 Verdict")
        await h.run_finished(run_id)
        posted = next(m for m in slack.thread(CHANNEL, root.ts)
                      if m.text.startswith("🔏 Audit trail"))
        head = posted.text.split("final hash `")[1].split("`")[0]
        run = await h.store.get_run(run_id)
        assert head == run.head_hash and f"{run.event_count} events" in posted.text
        assert f"budo audit verify {run_id} --expect {head}" in posted.text
        assert "unkeyed" in posted.text
        assert (await h.store.verify(run_id, expect=head)).ok
        await h.sim.slash_command(f"export {run_id}", user_id=REQUESTER)
        files = await slack.wait_for(lambda: len(slack.files) == 2 and slack.files)
        markdown = next(f for f in files if f.filename.endswith(".md")).content.decode()
        assert f"--expect {head}" in markdown


# --- the gate in Slack ------------------------------------------------------------------------


async def test_no_card_for_bad_names_or_scope_and_a_replaced_pod_is_not_deleted(
        slack, scripted_model, replay, tmp_path: Path):
    server = await replay("checkout-typo")
    pod = server.scenario.pod_for("checkoutservice")
    model = await scripted_model([
        {"calls": [{"tool": "delete_pod", "args": {"namespace": "kube-system",
                                                   "pod": "coredns-0"}},
                   {"tool": "delete_pod", "args": {"namespace": "shop", "pod": ".."}},
                   {"tool": "delete_pod", "args": {"namespace": "shop", "pod": pod,
                                                   "grace_period_seconds": 0}}]},
        {"say": "Restart it.", "calls": [{"tool": "delete_pod",
                                          "args": {"namespace": "shop", "pod": pod}}]},
        {"answer": VERDICT},
    ])
    cluster = Cluster.from_kubeconfig(str(server.kubeconfig), namespaces=("shop",))
    async with running_bot(slack, model.url, build_toolbox(cluster), tmp_path,
                           approval_timeout=30.0) as h:
        await h.sim.slash_command("investigate checkout is down", user_id=REQUESTER)
        root = await h.root_message()
        card = await slack.wait_for(lambda: h.card(root.ts), message="no approval card")
        cards = [m for m in slack.thread(CHANNEL, root.ts) if "Approval needed" in m.text]
        assert len(cards) == 1                           # none for the three bad calls
        card_text = json.dumps(card.blocks)
        assert "namespace=shop" in card_text and f"pod={pod}" in card_text  # the exact call
        # The pod is replaced (same name, new uid) while on-call reads the card.
        server.state.find("Pod", "shop", pod)["metadata"]["uid"] = "11111111-2222-4333-8444-5"
        value = next(e["value"] for b in card.blocks if b["type"] == "actions"
                     for e in b["elements"] if e["action_id"] == "budo_approve")
        await h.sim.block_action("budo_approve", value, user_id=ONCALL_USER,
                                 channel_id=CHANNEL, message_ts=card.ts)
        await h.top_level("🧭 Verdict")
    cluster.close()
    assert server.deletions == []
    assert not [r for r in server.requests if r.path.endswith(("/pods/", "/shop", "/shop/"))]
    thread = " ".join(m.text for m in slack.thread(CHANNEL, root.ts))
    assert "outside BUDO_NAMESPACES" in thread and "not a valid Kubernetes" in thread
    assert "unknown argument(s) grace_period_seconds" in thread
    assert "was replaced since the approval" in thread
    told = json.dumps(model.requests[-1]["messages"])
    assert "was replaced since the approval" in told and "NOT deleted" in told
