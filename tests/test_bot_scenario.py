"""The canonical incident end to end through Slack: replay cluster + scripted model + the bot."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from agent.kube import Cluster
from agent.tools import build_toolbox
from scenarios import load_scenario
from scenarios.slack_emulator import validate_blocks
from tests.bot_harness import CHANNEL, ONCALL_USER, REQUESTER, run_id_of, running_bot

SCENARIO = load_scenario("checkout-typo")


async def test_golden_script_threads_the_evidence_and_exports_into_the_thread(
        slack, scripted_model, replay, tmp_path: Path):
    server = await replay("checkout-typo")
    cluster = Cluster.from_kubeconfig(str(server.kubeconfig))
    model = await scripted_model(SCENARIO.script)
    # Nobody answers the set_env card: it expires (approval_timeout) and counts as a denial.
    async with running_bot(slack, model.url, build_toolbox(cluster), tmp_path,
                           approval_timeout=0.3) as h:
        await h.sim.slash_command(f"investigate {SCENARIO.question}", user_id=REQUESTER)
        root = await h.root_message()
        run_id = run_id_of(root)
        verdict = await h.top_level("🧭 Verdict")
        await h.run_finished(run_id)

        thread = slack.thread(CHANNEL, root.ts)
        tool_messages = [m for m in thread if m.text.startswith(("✅", "❌"))]
        expected = [turn["calls"][0]["tool"] for turn in SCENARIO.script if "calls" in turn]
        assert [m.text.split()[1] for m in tool_messages] == expected
        reasoning = [m for m in thread if m.text.startswith("💭")]
        assert len(reasoning) == len(expected)

        body = json.dumps(verdict.blocks, ensure_ascii=False)
        assert "paymetnservce" in body and "set env deploy/checkoutservice" in body
        by_tool = {m.text.split()[1]: m.ts.replace(".", "") for m in tool_messages}
        assert f"p{by_tool['logs']}?thread_ts=" in body        # frontend logs item
        assert f"p{by_tool['describe']}?thread_ts=" in body    # deployment env item
        assert verdict.thread_ts is None
        assert validate_blocks(verdict.blocks) == []

        # /budo runs lists it; /budo export uploads both files into the run's thread.
        runs = await h.sim.slash_command("runs", user_id=REQUESTER)
        assert runs.status == 200
        listed = await slack.wait_for(lambda: [p for p in slack.response_posts
                                               if run_id in p.body.get("text", "")])
        assert listed[0].body["response_type"] == "ephemeral"
        await h.sim.slash_command("export", user_id=REQUESTER)
        files = await slack.wait_for(lambda: len(slack.files) == 2 and slack.files)
        assert {f.filename for f in files} == {f"budo-{run_id}.md", f"budo-{run_id}.jsonl"}
        assert all(f.channel == CHANNEL and f.thread_ts == root.ts for f in files)
        markdown = next(f.text for f in files if f.filename.endswith(".md"))
        assert f"# Investigation {run_id}" in markdown and "paymetnservce" in markdown
        trail = [json.loads(line) for line in
                 next(f.text for f in files if f.filename.endswith(".jsonl")).splitlines()]
        assert trail[0]["kind"] == "run_started" and trail[-2]["kind"] == "verdict"
        assert trail[-1]["kind"] == "outcome_delivered" and trail[-1]["payload"]["via"] == "channel"
        assert await slack.wait_for(lambda: [p for p in slack.response_posts
                                             if "Uploaded" in p.body.get("text", "")])


@pytest.mark.parametrize("decision", ["budo_approve", "budo_deny"])
async def test_delete_pod_waits_for_on_call(slack, scripted_model, replay, tmp_path: Path,
                                            decision: str):
    server = await replay("checkout-typo")
    pod = SCENARIO.pod_for("checkoutservice")
    script = [
        *copy.deepcopy(SCENARIO.script[:1]),
        {"say": "checkoutservice may be wedged; restarting its pod could help.",
         "calls": [{"tool": "delete_pod", "args": {"namespace": "shop", "pod": pod}}]},
        copy.deepcopy(SCENARIO.script[-1]),
    ]
    model = await scripted_model(script)
    tools = build_toolbox(Cluster.from_kubeconfig(str(server.kubeconfig)))
    async with running_bot(slack, model.url, tools, tmp_path, approval_timeout=30.0) as h:
        await h.sim.slash_command(f"investigate {SCENARIO.question}", user_id=REQUESTER)
        root = await h.root_message()
        card = await slack.wait_for(lambda: h.card(root.ts), message="no approval card")
        assert f"delete pod {pod} in namespace shop" in json.dumps(card.blocks)
        approval_id = card.blocks[-1]["elements"][0]["value"]
        assert server.deletions == []
        await h.sim.block_action(decision, approval_id, user_id=ONCALL_USER, message_ts=card.ts)
        await h.top_level("🧭 Verdict")
        deleted = [(d.namespace, d.name) for d in server.deletions]
        assert deleted == ([("shop", pod)] if decision == "budo_approve" else [])
        delete_message = next(m for m in slack.thread(CHANNEL, root.ts)
                              if "delete_pod" in m.text)
        assert delete_message.text.startswith("✅" if decision == "budo_approve" else "❌")
