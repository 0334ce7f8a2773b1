"""Operations on the run lifecycle: the BUDO_MAX_RUNS queue (position told, FIFO start),
shutdown inside the grace period (in-process and as a real `budo serve` process with 50 queued
and 10 in-flight runs), and runs recovered as interrupted after a restart."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from agent.protocols import ToolResult, ToolSpec
from bot import blocks
from scenarios.slack_emulator import SlackClientSim
from storage.store import Store
from tests.bot_harness import CHANNEL, REQUESTER, VERDICT, FakeCluster, run_id_of, running_bot
from tests.fixtures.slack import BOT_TOKEN, SIGNING_SECRET
from tests.test_bot_serve import clean_env, run_cli
from tests.test_readiness import kubeconfig

STALL = {"fault": "stall", "seconds": 120, "times": 1000}


def has_cancel(message) -> bool:
    return "budo_cancel" in json.dumps(message.blocks or [])


async def ask(h, count: int, channel: str = CHANNEL) -> list:
    """`count` investigations, one after the other (each root message posted before the
    next request, so their order is known)."""
    roots = []
    for i in range(count):
        await h.sim.slash_command(f"investigate question {i}", user_id=f"U_ASK{i}",
                                  channel_id=channel)
        roots.append(await h.root_message(i))
    return roots


async def test_runs_beyond_the_cap_queue_are_told_their_place_and_start_in_order(
        slack, scripted_model, tmp_path: Path):
    release = asyncio.Event()

    async def get_pods(namespace: str) -> ToolResult:  # holds the only slot until released
        await release.wait()
        return ToolResult(True, "checkoutservice-7d9f8-abcde   1/1    Running")

    tools = [ToolSpec("get_pods", "list pods", {"type": "object", "properties": {
        "namespace": {"type": "string"}}}, get_pods)]
    model = await scripted_model([{"calls": [{"tool": "get_pods", "args": {"namespace": "shop"}}]},
                                  *[{"answer": VERDICT}] * 4])
    async with running_bot(slack, model.url, tools, tmp_path, max_runs=1) as h:
        roots = await ask(h, 4)
        ids = [run_id_of(r) for r in roots]
        for position in (1, 2, 3):
            await slack.wait_for(lambda position=position: [
                p for p in slack.response_posts
                if f"Yours is number {position} in the queue" in p.body.get("text", "")])
        assert len(h.bot.runs.active) == 1 and h.bot.runs.queued_count == 3
        release.set()
        for run_id in ids:
            await h.run_finished(run_id, wait_s=20)
        started = []
        for run_id in ids:
            events = await h.store.events(run_id)
            started.append(next(e.at for e in events if e.kind == "run_started"))
            assert (await h.store.get_run(run_id)).status == "succeeded"
        assert started == sorted(started)
        queued = [e for rid in ids[1:] for e in await h.store.events(rid) if e.kind == "queued"]
        assert [e.payload["position"] for e in queued] == [1, 2, 3]


async def test_shutdown_ends_queued_and_in_flight_runs_inside_the_grace_period(
        slack, scripted_model, tmp_path: Path):
    model = await scripted_model([STALL])
    async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path, max_runs=2) as h:
        roots = await ask(h, 5)
        ids = [run_id_of(r) for r in roots]
        await slack.wait_for(lambda: len(h.bot.runs.active) == 2 and h.bot.runs.queued_count == 3)
        started = time.monotonic()
        await h.serving.close(grace=0.5)
        took = time.monotonic() - started
        assert took < 0.5 + 3.0 + 2.5
        for run_id in ids:
            assert (await h.store.get_run(run_id)).status == "interrupted"
        for root in roots:
            final = slack.message(CHANNEL, root.ts)
            assert "interrupted" in final.text and not has_cancel(final), final.text
        for root in roots[2:]:
            assert "shut down before this started" in slack.message(CHANNEL, root.ts).text


async def test_recovered_runs_get_their_root_updated_and_a_thread_note(slack, scripted_model,
                                                                       tmp_path: Path):
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    store = await Store.open(str(tmp_path / "budo.db"))
    run = await store.start_run(source="slack", question="why?", channel=CHANNEL,
                                requester=REQUESTER)
    text, body = blocks.root_message("why?", REQUESTER, run.id, "⏳ step 2", running=True)
    posted = await client.chat_postMessage(channel=CHANNEL, text=text, blocks=body)
    await store.set_thread(run.id, CHANNEL, posted["ts"])
    await store.close()   # the process "dies" with the run running
    assert has_cancel(slack.message(CHANNEL, posted["ts"]))

    model = await scripted_model([])
    async with running_bot(slack, model.url, [], tmp_path) as h:
        note = await slack.wait_for(lambda: slack.thread(CHANNEL, posted["ts"]))
        assert "budo restarted while this was in progress" in note[0].text
        root = slack.message(CHANNEL, posted["ts"])
        assert not has_cancel(root) and "interrupted" in root.text
        assert (await h.store.get_run(run.id)).status == "interrupted"


@pytest.mark.slow  # a subprocess
async def test_sigterm_with_50_queued_and_10_in_flight_exits_inside_30_s(
        slack, scripted_model, tmp_path: Path):
    model = await scripted_model([STALL])
    db = tmp_path / "budo.db"
    env = clean_env(tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                    SLACK_API_URL=slack.api_url, BUDO_ONCALL_USERS="U_LEAD",
                    KUBECONFIG=kubeconfig(tmp_path), BUDO_LLM_URL=model.url,
                    BUDO_MAX_RUNS="10", BUDO_DB=str(db))
    process = await run_cli(env, "--host", "127.0.0.1", "--port", "0")
    try:
        assert process.stderr is not None
        line = ""
        while "health on" not in line:
            line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
            assert line, "budo serve exited early"
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        sim = SlackClientSim(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET,
                             emulator=slack)
        try:
            # One channel each: Slack paces posts per channel, and so does budo.
            for i in range(60):
                reply = await sim.slash_command(f"investigate incident {i}", user_id=f"U{i}",
                                                channel_id=f"C{i:03d}")
                assert reply.status == 200
        finally:
            await sim.close()

        def counts() -> tuple[int, int]:
            with sqlite3.connect(db) as conn:
                running = conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'")
                queued = conn.execute("SELECT COUNT(DISTINCT run_id) FROM events "
                                      "WHERE kind = 'queued'")
                return running.fetchone()[0], queued.fetchone()[0]

        deadline = time.monotonic() + 60
        while counts() != (60, 50) and time.monotonic() < deadline:  # noqa: ASYNC110 (a file)
            await asyncio.sleep(0.2)
        assert counts() == (60, 50)

        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(process.communicate(), 40)
        took = time.monotonic() - started
        assert process.returncode == 0 and took < 30, (took, rest.decode()[-2000:])
        assert "Traceback" not in rest.decode()
        with sqlite3.connect(db) as conn:
            statuses = dict(conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status"))
        assert statuses == {"interrupted": 60}
        print(f"SIGTERM → exit in {took:.1f} s (60 runs: 10 in flight, 50 queued)")
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_what_slack_was_not_told_at_shutdown_the_next_process_tells(
        slack, scripted_model, tmp_path: Path):
    model = await scripted_model([STALL])
    async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path, max_runs=2) as h:
        roots = await ask(h, 3)
        ids = [run_id_of(r) for r in roots]
        await slack.wait_for(lambda: len(h.bot.runs.active) == 2 and h.bot.runs.queued_count == 1)
        slack.fail_http("chat.update", status=503, times=10_000)   # Slack is down at shutdown
        slack.fail_http("chat.postMessage", status=503, times=10_000)
        await h.serving.close(grace=0.2)
        for run_id in ids:
            assert (await h.store.get_run(run_id)).status == "interrupted"
            assert (await h.store.events(run_id))[-1].kind == "slack_unsettled"
        assert all(has_cancel(slack.message(CHANNEL, r.ts)) for r in roots)  # still "running"

    slack.heal()
    model = await scripted_model([])
    async with running_bot(slack, model.url, [], tmp_path) as h:
        for root in roots:
            await slack.wait_for(lambda root=root: not has_cancel(slack.message(CHANNEL, root.ts)))
            assert "interrupted" in slack.message(CHANNEL, root.ts).text
            notes = await slack.wait_for(lambda root=root: [
                m for m in slack.thread(CHANNEL, root.ts) if "budo shut down" in m.text])
            assert len(notes) == 1
        await slack.wait_for(lambda: not h.bot.handlers.tasks)
        for run_id in ids:
            assert (await h.store.events(run_id))[-1].kind == "slack_settled"
    async with running_bot(slack, model.url, [], tmp_path) as h:   # told once, not again
        await slack.wait_for(lambda: not h.bot.handlers.tasks)
        for root in roots:
            notes = [m for m in slack.thread(CHANNEL, root.ts) if "budo shut down" in m.text]
            assert len(notes) == 1


async def test_a_queued_run_can_be_cancelled_before_it_starts(slack, scripted_model,
                                                             tmp_path: Path):
    release = asyncio.Event()

    async def get_pods(namespace: str) -> ToolResult:
        await release.wait()
        return ToolResult(True, "checkoutservice-7d9f8-abcde   1/1    Running")

    tools = [ToolSpec("get_pods", "list pods", {"type": "object", "properties": {
        "namespace": {"type": "string"}}}, get_pods)]
    model = await scripted_model([{"calls": [{"tool": "get_pods", "args": {"namespace": "shop"}}]},
                                  {"answer": VERDICT}])
    async with running_bot(slack, model.url, tools, tmp_path, max_runs=1) as h:
        first, second = await ask(h, 2)
        await slack.wait_for(lambda: h.bot.runs.queued_count == 1)
        reply = await h.sim.block_action("budo_cancel", run_id_of(second), user_id="U_ASK1",
                                         channel_id=CHANNEL, message_ts=second.ts)
        assert reply.status == 200
        await slack.wait_for(lambda: not has_cancel(slack.message(CHANNEL, second.ts)))
        assert "cancelled by <@U_ASK1>" in slack.message(CHANNEL, second.ts).text
        record = await h.store.get_run(run_id_of(second))
        assert record.status == "cancelled" and h.bot.runs.queued_count == 0
        release.set()
        await h.run_finished(run_id_of(first), wait_s=20)
        assert (await h.store.get_run(run_id_of(first))).status == "succeeded"
        kinds = [e.kind for e in await h.store.events(run_id_of(second))]
        assert "run_started" not in kinds and kinds[-1] == "cancelled"
