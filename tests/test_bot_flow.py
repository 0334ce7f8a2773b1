"""The bot end to end over HTTP: signed requests in, the Slack emulator's state out."""

from __future__ import annotations

import json
from pathlib import Path

from scenarios.slack_emulator import validate_blocks
from tests.bot_harness import CHANNEL, REQUESTER, VERDICT, FakeCluster, run_id_of, running_bot

QUESTION = "why is checkout returning 500s?"


def blocks_text(blocks: list[dict] | None) -> str:
    return json.dumps(blocks or [], ensure_ascii=False)


async def test_investigate_posts_root_thread_trail_and_top_level_verdict(slack, scripted_model,
                                                                        tmp_path: Path):
    model = await scripted_model([
        {"say": "Let me look at the pods first.",
         "calls": [{"tool": "get_pods", "args": {"namespace": "shop"}}]},
        {"calls": [{"tool": "get_logs",
                    "args": {"pod": "checkoutservice-7d9f8-abcde", "namespace": "shop"}}]},
        {"answer": VERDICT},
    ])
    async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path) as h:
        reply = await h.sim.slash_command(f"investigate {QUESTION}", user_id=REQUESTER)
        assert reply.status == 200
        assert reply.elapsed < 3.0

        root = await h.root_message()
        assert QUESTION in root.text and f"<@{REQUESTER}>" in root.text
        run_id = run_id_of(root)
        verdict = await h.top_level("🧭 Verdict")
        await h.run_finished(run_id)

        # The evidence trail: reasoning, then one message per tool call, updated on finish.
        thread = slack.thread(CHANNEL, root.ts)
        texts = [m.text for m in thread]
        assert texts[0].startswith("💭 Let me look at the pods first.")
        calls = [m for m in thread if "get_pods" in m.text or "get_logs" in m.text]
        assert [("get_pods" in m.text) for m in calls] == [True, False]
        for message in calls:
            assert message.text.startswith("✅"), message.text
            assert len(slack.updates(CHANNEL, message.ts)) == 2  # posted, then finished
            assert "```" in blocks_text(message.blocks)
        logs_message = calls[1]
        # The preview is short; the full output (80 lines) lives in the audit and export.
        assert "full output in the audit" in blocks_text(logs_message.blocks)

        # The verdict sits at the channel's top level, linking evidence to the tool calls.
        body = blocks_text(verdict.blocks)
        assert "ROOT CAUSE" in body and "EVIDENCE" in body and "FIX" in body
        assert run_id in body and "confidence" in body
        link = f"/archives/{CHANNEL}/p{logs_message.ts.replace('.', '')}?thread_ts={root.ts}"
        assert link in body
        assert verdict.thread_ts is None

        # The root message ends with the outcome and loses its Cancel button.
        final = slack.message(CHANNEL, root.ts)
        assert final is not None and "verdict posted" in final.text
        assert "budo_cancel" not in blocks_text(final.blocks)
        assert len(slack.updates(CHANNEL, root.ts)) >= 2

        record = await h.store.get_run(run_id)
        assert record.status == "succeeded" and record.thread_ts == root.ts
        for message in slack.bot_messages(CHANNEL):
            assert validate_blocks(message.blocks or []) == []


async def test_help_and_unknown_subcommands_answer_privately_in_the_ack(slack, scripted_model,
                                                                       tmp_path: Path):
    model = await scripted_model([])
    async with running_bot(slack, model.url, [], tmp_path) as h:
        for text in ("", "help", "frobnicate now", "investigate", "export ../etc/passwd"):
            reply = await h.sim.slash_command(text)
            assert reply.status == 200
            answer = reply.json()
            assert answer["response_type"] == "ephemeral"
            assert "/budo investigate" in answer["text"]
        assert slack.channel_messages(CHANNEL) == []
        assert "Unknown subcommand `frobnicate`" in (
            await h.sim.slash_command("frobnicate")).json()["text"]


async def test_bad_signature_and_stale_timestamp_are_rejected(slack, scripted_model,
                                                             tmp_path: Path):
    model = await scripted_model([])
    async with running_bot(slack, model.url, [], tmp_path) as h:
        assert (await h.sim.slash_command("help", bad_signature=True)).status == 401
        assert (await h.sim.slash_command("help", stale=True)).status == 401
        assert (await h.sim.url_verification("c-123", bad_signature=True)).status == 401
        challenge = await h.sim.url_verification("c-123")
        assert challenge.status == 200 and "c-123" in challenge.body
        assert slack.channel_messages(CHANNEL) == []
