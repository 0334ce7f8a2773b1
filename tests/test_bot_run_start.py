"""The moment a run starts: Slack shows the root message (and its Cancel button) before it has
answered budo's chat.postMessage, so a click can arrive before budo knows the message's ts."""

from __future__ import annotations

import json
from pathlib import Path

from tests.bot_harness import (
    BYSTANDER,
    CHANNEL,
    REQUESTER,
    VERDICT,
    FakeCluster,
    run_id_of,
    running_bot,
)


async def test_a_cancel_pressed_before_slack_answers_the_root_post_cancels_the_run(
        slack, scripted_model, tmp_path: Path):
    model = await scripted_model([{"answer": VERDICT}])
    async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path) as h:
        slack.answer_slowly("chat.postMessage", 0.25)
        await h.sim.slash_command("investigate checkout is down", user_id=REQUESTER)
        root = await h.root_message()
        run_id = run_id_of(root)
        assert not slack.calls_to("chat.postMessage")  # Slack has not answered budo yet

        await h.sim.block_action("budo_cancel", run_id, user_id=REQUESTER, message_ts=root.ts)
        cancelled = await h.top_level("🛑 Investigation cancelled")
        assert f"cancelled by <@{REQUESTER}>" in cancelled.text
        # The task was cancelled before its first step: it is still ended, not left running.
        await h.run_finished(run_id)
        record = await h.store.get_run(run_id)
        assert record.status == "cancelled" and record.thread_ts == root.ts
        assert model.requests == []
        assert not slack.ephemerals(CHANNEL, REQUESTER)  # no "not running" answer
        final = slack.message(CHANNEL, root.ts)
        assert final is not None and "cancelled" in final.text
        assert "budo_cancel" not in json.dumps(final.blocks)
        kinds = [e.kind for e in await h.store.events(run_id)]
        assert kinds.count("cancel_requested") == 1
        assert kinds.index("cancel_requested") < kinds.index("cancelled")  # the run's end


async def test_a_bystander_cannot_cancel_a_starting_run(slack, scripted_model, tmp_path: Path):
    model = await scripted_model([{"answer": VERDICT}])
    async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path) as h:
        slack.answer_slowly("chat.postMessage", 0.25)
        await h.sim.slash_command("investigate checkout is down", user_id=REQUESTER)
        root = await h.root_message()
        run_id = run_id_of(root)
        await h.sim.block_action("budo_cancel", run_id, user_id=BYSTANDER, message_ts=root.ts)
        refusal = await slack.wait_for(lambda: slack.ephemerals(CHANNEL, BYSTANDER),
                                       message="no answer to the bystander")
        assert "Only the person who asked or on-call" in refusal[0].text
        await h.top_level("🧭 Verdict")
        await h.run_finished(run_id)
        assert (await h.store.get_run(run_id)).status == "succeeded"
