"""@mentions, follow-ups in a thread, the one-run-per-thread rule, and failures posted clearly."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from agent.protocols import Completion
from bot.bot import BudoBot
from bot.serve import open_server
from scenarios.slack_emulator import SlackClientSim
from storage.store import Store
from tests.bot_harness import (
    CHANNEL,
    REQUESTER,
    VERDICT,
    FakeCluster,
    bot_settings,
    run_id_of,
    running_bot,
)
from tests.fixtures.slack import SIGNING_SECRET


async def test_mention_starts_a_run_and_a_mention_in_its_thread_follows_up(slack, scripted_model,
                                                                          tmp_path: Path):
    model = await scripted_model([
        {"calls": [{"tool": "get_pods", "args": {"namespace": "shop"}}]},
        {"answer": VERDICT},
        {"answer": "ROOT CAUSE: same typo as before.\nFIX: fix the env var\nCONFIDENCE: high"},
    ])
    async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path) as h:
        await h.sim.app_mention("<@U0BOT> why is checkout failing?", user=REQUESTER)
        root = await h.root_message()
        assert "why is checkout failing?" in root.text and "<@U0BOT>" not in root.text
        first_run = run_id_of(root)
        await h.top_level("🧭 Verdict")
        await h.run_finished(first_run)

        await h.sim.app_mention("<@U0BOT> and is the fix safe?", user=REQUESTER,
                                thread_ts=root.ts)
        follow_up = await slack.wait_for(lambda: [m for m in slack.thread(CHANNEL, root.ts)
                                                  if m.text.startswith("🔍 Investigating: and")])
        second_run = run_id_of(follow_up[0])
        assert second_run != first_run
        await slack.wait_for(lambda: len([m for m in slack.channel_messages(CHANNEL)
                                          if m.text.startswith("🧭 Verdict")]) == 2)
        await h.run_finished(second_run)
        # The follow-up carried the first run's conversation (its tool result included).
        sent = model.requests[-1]["messages"]
        assert any(m["role"] == "tool" for m in sent)
        assert "and is the fix safe?" in sent[-1]["content"]
        record = await h.store.get_run(second_run)
        assert record.thread_ts == root.ts and record.status == "succeeded"
        kinds = [e.kind for e in await h.store.events(second_run)]
        assert "follow_up" in kinds


async def test_a_second_question_in_a_running_thread_gets_a_pointer(slack, scripted_model,
                                                                   tmp_path: Path):
    model = await scripted_model([{"fault": "stall", "seconds": 20}])
    async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path) as h:
        await h.sim.app_mention("<@U0BOT> checkout is down", user=REQUESTER)
        root = await h.root_message()
        run_id = run_id_of(root)
        await h.sim.app_mention("<@U0BOT> also payments?", user="U_OTHER", thread_ts=root.ts)
        pointer = await slack.wait_for(lambda: slack.ephemerals(CHANNEL, "U_OTHER"))
        assert run_id in pointer[0].text and "already running" in pointer[0].text
        assert len(await h.store.list_runs(channel=CHANNEL)) == 1


async def test_model_unreachable_is_reported_in_the_channel(slack, tmp_path: Path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    async with running_bot(slack, dead_url, FakeCluster().tools(), tmp_path) as h:
        await h.sim.slash_command("investigate checkout is down", user_id=REQUESTER)
        root = await h.root_message()
        failed = await h.top_level("❌ Investigation failed", wait_s=15)
        assert "unreachable" in failed.text.lower() or "connect" in failed.text.lower()
        run_id = run_id_of(root)
        await h.run_finished(run_id)
        assert (await h.store.get_run(run_id)).status == "failed"
        assert "failed" in slack.message(CHANNEL, root.ts).text


class BrokenModel:
    """An in-process double whose bug is not a BudoError: the run task boundary must catch it."""

    model = "broken"

    async def complete(self, messages, tools=None, tool_choice=None) -> Completion:
        raise RuntimeError("unexpected None in reply parser")


async def test_an_unexpected_exception_is_posted_and_recorded(slack, tmp_path: Path):
    settings = bot_settings(slack, "http://127.0.0.1:9/v1", tmp_path)
    store = await Store.open(settings.db_path)
    bot = BudoBot(settings, store, model_factory=lambda _s: BrokenModel(),
                  toolbox_factory=lambda _s: [], update_interval=0.05, rate_per_channel=100)
    serving = await open_server(bot, "127.0.0.1", 0)
    sim = SlackClientSim(f"http://127.0.0.1:{serving.port}/slack/events", SIGNING_SECRET,
                         emulator=slack)
    try:
        await sim.slash_command("investigate anything", user_id=REQUESTER)
        crashed = await slack.wait_for(lambda: [m for m in slack.channel_messages(CHANNEL)
                                                if m.text.startswith("💥")])
        assert "RuntimeError" in json.dumps(crashed[0].blocks)
        runs = await store.list_runs(channel=CHANNEL)
        await slack.wait_for(lambda: not bot.runs.active)
        assert (await store.get_run(runs[0].id)).status == "failed"
    finally:
        await sim.close()
        await serving.close(grace=0.5)
        await store.close()


async def test_a_429_on_the_root_post_is_retried(slack, scripted_model, tmp_path: Path):
    model = await scripted_model([{"answer": VERDICT}])
    slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    async with running_bot(slack, model.url, [], tmp_path) as h:
        await h.sim.slash_command("investigate checkout", user_id=REQUESTER)
        await h.root_message()
        await h.top_level("🧭 Verdict")
        errors = [c.response.get("error") for c in slack.calls_to("chat.postMessage")]
        assert errors[0] == "ratelimited" and errors[1] is None


async def test_a_run_slack_refuses_to_start_is_ended_failed_and_said_privately(
        slack, scripted_model, tmp_path: Path):
    """The loop never ran, so nothing else would end it: the run manager ends it the loop's
    way (a `failed` terminal event through the AuditSink) and tells the asker."""
    model = await scripted_model([{"answer": VERDICT}])
    async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path) as h:
        slack.fail("chat.postMessage", "not_in_channel")
        await h.sim.app_mention("<@U0BOT> why is checkout failing?", user=REQUESTER)
        told = await slack.wait_for(lambda: slack.ephemerals(CHANNEL, REQUESTER))
        assert told[0].text.startswith("Could not start the investigation")
        assert "not_in_channel" in told[0].text
        (run,) = await h.store.list_runs(channel=CHANNEL)
        assert (run.status, run.turns, run.tokens) == ("failed", 0, 0)
        (event,) = await h.store.events(run.id)
        assert (event.kind, event.actor, event.payload["error_type"]) == ("failed", "budo",
                                                                          "SlackError")
        assert model.requests == []
