"""On-call approvals, cancel and restart, over signed HTTP into the real app."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from tests.bot_harness import (
    BYSTANDER,
    CHANNEL,
    ONCALL_USER,
    REQUESTER,
    VERDICT,
    FakeCluster,
    Harness,
    run_id_of,
    running_bot,
)

POD = "checkoutservice-7d9f8-abcde"
DELETE_SCRIPT = [
    {"say": "The pod looks wedged; a restart should clear it.",
     "calls": [{"tool": "delete_pod", "args": {"pod": POD, "namespace": "shop"}}]},
    {"answer": VERDICT},
]


def approval_value(blocks) -> str:
    actions = next(b for b in blocks if b["type"] == "actions")
    values = {e["action_id"]: e["value"] for e in actions["elements"]}
    assert values["budo_approve"] == values["budo_deny"]
    return values["budo_approve"]


class Card:
    """The approval card as first posted (the emulator updates its Message in place)."""

    def __init__(self, message) -> None:
        self.ts = message.ts
        self.blocks = copy.deepcopy(message.blocks)
        self.approval_id = approval_value(self.blocks)


async def start_and_wait_for_card(h: Harness):
    await h.sim.slash_command("investigate checkout is down", user_id=REQUESTER)
    root = await h.root_message()
    card = await h.slack.wait_for(lambda: h.card(root.ts), message="no approval card")
    return root, Card(card)


async def click(h: Harness, action: str, card, user: str):
    reply = await h.sim.block_action(action, card.approval_id, user_id=user,
                                     channel_id=CHANNEL, message_ts=card.ts)
    assert reply.status == 200
    return reply


async def ephemeral_for(h: Harness, user: str, count: int = 1):
    found = await h.slack.wait_for(lambda: len(h.slack.ephemerals(CHANNEL, user)) >= count
                                   and h.slack.ephemerals(CHANNEL, user),
                                   message=f"no ephemeral for {user}")
    return found[count - 1].text


async def test_only_on_call_approves_and_approval_deletes_the_pod(slack, scripted_model,
                                                                 tmp_path: Path):
    cluster = FakeCluster()
    model = await scripted_model(DELETE_SCRIPT)
    async with running_bot(slack, model.url, cluster.tools(), tmp_path,
                           approval_timeout=30.0) as h:
        root, card = await start_and_wait_for_card(h)
        card_text = json.dumps(card.blocks)
        assert f"delete pod {POD} in namespace shop" in card_text
        assert "a restart should clear it" in card_text          # why the model asked
        assert "<!subteam^S0ONCALL>" in card_text and "Expires at" in card_text

        # A bystander and the requester are refused, privately; nothing changes.
        await click(h, "budo_approve", card, BYSTANDER)
        assert "only on-call" in await ephemeral_for(h, BYSTANDER)
        await click(h, "budo_approve", card, REQUESTER)
        assert "Nothing changed" in await ephemeral_for(h, REQUESTER)
        assert cluster.deletions == []
        assert slack.message(CHANNEL, card.ts).blocks == card.blocks
        run_id = run_id_of(root)
        refused = [e for e in await h.store.events(run_id) if e.kind == "approval_refused"]
        assert [e.actor for e in refused] == [BYSTANDER, REQUESTER]

        # The on-call member (via the usergroup) approves: the pod goes, the card says so.
        await click(h, "budo_approve", card, ONCALL_USER)
        await h.top_level("🧭 Verdict")
        assert cluster.deletions == [("shop", POD)]
        closed = slack.message(CHANNEL, card.ts)
        assert f"✅ Approved by <@{ONCALL_USER}> at " in json.dumps(closed.blocks,
                                                                    ensure_ascii=False)
        assert "budo_approve" not in json.dumps(closed.blocks)

        # A second click is answered and changes nothing.
        await click(h, "budo_deny", card, "U_LEAD")
        assert "already closed" in await ephemeral_for(h, "U_LEAD")
        assert cluster.deletions == [("shop", POD)]
        approvals = await h.store.approvals(run_id)
        assert [(a.status, a.decided_by) for a in approvals] == [("approved", ONCALL_USER)]


async def test_deny_keeps_the_pod_and_the_run_goes_on(slack, scripted_model, tmp_path: Path):
    cluster = FakeCluster()
    model = await scripted_model(DELETE_SCRIPT)
    async with running_bot(slack, model.url, cluster.tools(), tmp_path) as h:
        _, card = await start_and_wait_for_card(h)
        await click(h, "budo_deny", card, "U_LEAD")
        await h.top_level("🧭 Verdict")
        assert cluster.deletions == []
        closed = json.dumps(slack.message(CHANNEL, card.ts).blocks, ensure_ascii=False)
        assert "🚫 Denied by <@U_LEAD>" in closed
        # The model was told the action was denied.
        tool_message = model.requests[-1]["messages"][-1]
        assert tool_message["role"] == "tool" and "denied" in tool_message["content"]


async def test_expired_approval_is_a_denial_and_late_clicks_change_nothing(slack, scripted_model,
                                                                          tmp_path: Path):
    cluster = FakeCluster()
    model = await scripted_model(DELETE_SCRIPT)
    async with running_bot(slack, model.url, cluster.tools(), tmp_path,
                           approval_timeout=0.5) as h:
        _, card = await start_and_wait_for_card(h)
        await h.top_level("🧭 Verdict")
        closed = json.dumps(slack.message(CHANNEL, card.ts).blocks, ensure_ascii=False)
        assert "⌛ Expired — denied" in closed
        await click(h, "budo_approve", card, ONCALL_USER)
        assert "Expired" in await ephemeral_for(h, ONCALL_USER)
        assert cluster.deletions == []


async def test_the_requester_may_approve_when_they_are_the_only_on_call(slack, scripted_model,
                                                                       tmp_path: Path):
    cluster = FakeCluster()
    model = await scripted_model(DELETE_SCRIPT)
    async with running_bot(slack, model.url, cluster.tools(), tmp_path,
                           oncall_users=(REQUESTER,), oncall_usergroup=None) as h:
        _, card = await start_and_wait_for_card(h)
        await click(h, "budo_approve", card, REQUESTER)
        await h.top_level("🧭 Verdict")
        assert cluster.deletions == [("shop", POD)]


async def test_cancel_stops_the_run_and_says_so(slack, scripted_model, tmp_path: Path):
    model = await scripted_model([
        {"calls": [{"tool": "get_pods", "args": {"namespace": "shop"}}]},
        {"fault": "stall", "seconds": 20},
    ])
    async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path) as h:
        await h.sim.slash_command("investigate checkout is down", user_id=REQUESTER)
        root = await h.root_message()
        run_id = run_id_of(root)
        await slack.wait_for(lambda: len(model.requests) == 2, message="model not asked twice")

        await h.sim.block_action("budo_cancel", run_id, user_id=BYSTANDER, message_ts=root.ts)
        assert "cancel" in (await ephemeral_for(h, BYSTANDER)).lower()
        assert run_id in h.bot.runs.active

        # The run id is not enough: the button must be on the run's own message.
        await h.sim.block_action("budo_cancel", run_id, user_id=REQUESTER, message_ts="1.2")
        assert "not on that run's message" in await ephemeral_for(h, REQUESTER)
        assert run_id in h.bot.runs.active

        await h.sim.block_action("budo_cancel", run_id, user_id=REQUESTER, message_ts=root.ts)
        cancelled = await h.top_level("🛑 Investigation cancelled")
        assert f"cancelled by <@{REQUESTER}>" in cancelled.text
        await h.run_finished(run_id)
        assert (await h.store.get_run(run_id)).status == "cancelled"
        final = slack.message(CHANNEL, root.ts)
        assert "cancelled" in final.text and "budo_cancel" not in json.dumps(final.blocks)


async def test_shutdown_interrupts_and_a_click_after_restart_changes_nothing(
        slack, scripted_model, tmp_path: Path):
    cluster = FakeCluster()
    model = await scripted_model(DELETE_SCRIPT)
    async with running_bot(slack, model.url, cluster.tools(), tmp_path,
                           approval_timeout=30.0) as h:
        root, card = await start_and_wait_for_card(h)
        run_id = run_id_of(root)
    # Leaving the block stopped the bot with a 0.5 s grace: the run was interrupted.
    interrupted = [m for m in slack.channel_messages(CHANNEL)
                   if m.text.startswith("⚠️ Investigation interrupted")]
    assert len(interrupted) == 1
    closed = json.dumps(slack.message(CHANNEL, card.ts).blocks, ensure_ascii=False)
    assert "budo_approve" not in closed

    async with running_bot(slack, model.url, cluster.tools(), tmp_path) as h2:
        assert (await h2.store.get_run(run_id)).status == "interrupted"
        await click(h2, "budo_approve", card, ONCALL_USER)
        assert "Nothing changed" in await ephemeral_for(h2, ONCALL_USER)
        assert cluster.deletions == []


async def test_a_click_counts_only_from_its_own_card(slack, scripted_model, tmp_path: Path):
    cluster = FakeCluster()
    model = await scripted_model(DELETE_SCRIPT)
    async with running_bot(slack, model.url, cluster.tools(), tmp_path,
                           approval_timeout=30.0) as h:
        slack.add_channel("C_OTHER", "elsewhere")
        root, card = await start_and_wait_for_card(h)
        run_id = run_id_of(root)
        # The right approval id, pressed on another message and from another channel.
        await h.sim.block_action("budo_approve", card.approval_id, user_id=ONCALL_USER,
                                 channel_id=CHANNEL, message_ts=root.ts)
        await h.sim.block_action("budo_approve", card.approval_id, user_id=ONCALL_USER,
                                 channel_id="C_OTHER", message_ts=card.ts)
        assert "not on this approval's card" in await ephemeral_for(h, ONCALL_USER)
        await slack.wait_for(lambda: len(slack.ephemerals("C_OTHER", ONCALL_USER)) == 1,
                             message="no answer in the other channel")
        assert cluster.deletions == []
        assert slack.message(CHANNEL, card.ts).blocks == card.blocks   # still open
        refused = [e for e in await h.store.events(run_id) if e.kind == "approval_refused"]
        assert len(refused) == 2 and all("card" in e.payload["reason"] for e in refused)
        # The card itself still works.
        await click(h, "budo_approve", card, ONCALL_USER)
        await h.top_level("🧭 Verdict")
        assert cluster.deletions == [("shop", POD)]
