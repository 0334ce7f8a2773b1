"""The fix, end to end through Slack: signed requests into the real Bolt app, the Slack
emulator, the replay API and the scripted model playing checkout-typo's golden path, which
ends by asking for set_env."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from kubernetes import client, config

from agent.kube import Cluster
from agent.tools import build_toolbox
from bot.blocks import approval_card, verification_message
from scenarios import load_scenario
from tests.bot_harness import CHANNEL, ONCALL_USER, REQUESTER, run_id_of, running_bot

DIFF = "env PAYMENT_SERVICE_ADDR: paymetnservce:50051 → paymentservice:50051"
SYMPTOM = "lookup paymetnservce"


def real_patches(server) -> list[str]:
    return [r.path for r in server.requests if r.method == "PATCH" and "dryRun" not in r.query]


async def start(replay, scripted_model, slack, tmp_path: Path, **overrides):
    scenario = load_scenario("checkout-typo")
    # The load generator's failed checkouts, every 0.1 s instead of 2 s: the test is short.
    scenario.remedies[0]["symptoms"]["shop/frontend/server"]["every"] = "0.1s"
    server = await replay(scenario)
    server.state.rollouts.start_delay = 0.2
    model = await scripted_model(scenario.script)
    tools = build_toolbox(Cluster.from_kubeconfig(str(server.kubeconfig)), poll_s=0.05)
    bot = running_bot(slack, model.url, tools, tmp_path, approval_timeout=30.0,
                      verify_timeout=10.0, **overrides)
    return scenario, server, bot


async def frontend_errors(server) -> int:
    api = client.CoreV1Api(config.new_client_from_config(config_file=str(server.kubeconfig)))
    pod = server.scenario.pod_for("frontend")
    text = await asyncio.to_thread(api.read_namespaced_pod_log, pod, "shop")
    return text.count(SYMPTOM)


async def env_value(server) -> str:
    api = client.AppsV1Api(config.new_client_from_config(config_file=str(server.kubeconfig)))
    raw = await asyncio.to_thread(api.read_namespaced_deployment, "checkoutservice", "shop",
                                  _preload_content=False)
    containers = json.loads(raw.data)["spec"]["template"]["spec"]["containers"]
    return next(e["value"] for e in containers[0]["env"] if e["name"] == "PAYMENT_SERVICE_ADDR")


async def card_of(h, scenario):
    await h.sim.slash_command(f"investigate {scenario.question}", user_id=REQUESTER)
    root = await h.root_message()
    card = await h.slack.wait_for(lambda: h.card(root.ts), timeout=15, message="no card")
    return root, card, card.blocks[-1]["elements"][0]["value"]


async def test_approved_set_env_fixes_checkout_and_the_thread_shows_the_rollout(
        slack, scripted_model, replay, tmp_path: Path):
    scenario, server, bot = await start(replay, scripted_model, slack, tmp_path)
    async with bot as h:
        before = await frontend_errors(server)
        root, card, approval_id = await card_of(h, scenario)
        shown = json.dumps(card.blocks, ensure_ascii=False)
        assert DIFF in shown and "Now: deployment/checkoutservice in shop: 1/1 ready" in shown
        assert real_patches(server) == []                         # the card came first
        await asyncio.sleep(0.35)
        assert await frontend_errors(server) > before              # checkout still failing

        await h.sim.block_action("budo_approve", approval_id, user_id=ONCALL_USER,
                                 message_ts=card.ts)
        verdict = await h.top_level("🧭 Verdict", wait_s=20)
        assert real_patches(server) == ["/apis/apps/v1/namespaces/shop/deployments/checkoutservice"]
        assert await env_value(server) == "paymentservice:50051"

        thread = slack.thread(CHANNEL, root.ts)
        rolled = [m for m in thread if m.text.startswith("✅ rolled out: 1/1 ready in ")]
        assert len(rolled) == 1 and "set env PAYMENT_SERVICE_ADDR" in rolled[0].text
        tool = next(m for m in thread if "set_env" in m.text and m.text[:1] in "✅❌")
        assert tool.text.startswith("✅")
        closed = json.dumps(slack.message(CHANNEL, card.ts).blocks, ensure_ascii=False)
        assert f"Approved by <@{ONCALL_USER}>" in closed and DIFF in closed
        body = json.dumps(verdict.blocks, ensure_ascii=False)
        assert "*ACTION*" in body and "rolled out: 1/1 ready" in body

        # The fix holds: no new failed checkout once the fixed pods are serving.
        settled = await frontend_errors(server)
        await asyncio.sleep(0.4)
        assert await frontend_errors(server) == settled
        run_id = run_id_of(root)
        kinds = [e.kind for e in await h.store.events(run_id)]
        assert "verified" in kinds and kinds.index("verified") < kinds.index("verdict")


async def test_denied_set_env_sends_no_real_request(slack, scripted_model, replay,
                                                   tmp_path: Path):
    scenario, server, bot = await start(replay, scripted_model, slack, tmp_path)
    async with bot as h:
        _, card, approval_id = await card_of(h, scenario)
        assert DIFF in json.dumps(card.blocks, ensure_ascii=False)
        await h.sim.block_action("budo_deny", approval_id, user_id=ONCALL_USER,
                                 message_ts=card.ts)
        verdict = await h.top_level("🧭 Verdict", wait_s=20)
        assert real_patches(server) == [] and server.state.rollouts.writes == []
        assert await env_value(server) == "paymetnservce:50051"
        assert "*ACTION*" not in json.dumps(verdict.blocks)


async def test_a_deployment_changed_between_card_and_click_is_not_patched(
        slack, scripted_model, replay, tmp_path: Path):
    scenario, server, bot = await start(replay, scripted_model, slack, tmp_path)
    async with bot as h:
        root, card, approval_id = await card_of(h, scenario)
        api = client.AppsV1Api(config.new_client_from_config(config_file=str(server.kubeconfig)))
        await asyncio.to_thread(api.patch_namespaced_deployment, "checkoutservice", "shop",
                                {"spec": {"template": {"spec": {"containers": [
                                    {"name": "server", "env": [{"name": "PAYMENT_SERVICE_ADDR",
                                                                "value": "payments:50051"}]}]}}}},
                                _content_type="application/strategic-merge-patch+json")
        await h.sim.block_action("budo_approve", approval_id, user_id=ONCALL_USER,
                                 message_ts=card.ts)
        await h.top_level("🧭 Verdict", wait_s=20)
        assert await env_value(server) == "payments:50051"        # theirs, not ours
        assert [w.name for w in server.state.rollouts.writes] == ["checkoutservice"]
        tool = next(m for m in slack.thread(CHANNEL, root.ts)
                    if "set_env" in m.text and m.text[:1] in "✅❌")
        assert tool.text.startswith("❌") and "changed since it was approved" in tool.text


def test_everything_from_the_cluster_on_the_card_is_escaped():
    hostile = "<!channel> <http://evil|click> & co"
    _, card = approval_card("a1", f"set env X={hostile}", hostile, "<@U1>", 0.0, None,
                            changes=[f"env X: {hostile} → ok"], current=hostile)
    _, thread = verification_message(hostile, False, hostile, [hostile])
    for text in (json.dumps(card), json.dumps(thread)):
        assert "<!channel>" not in text and "<http://evil" not in text
        assert "&lt;!channel&gt;" in text and "&amp; co" in text


async def test_a_failed_verification_is_a_red_line_in_the_thread(slack, scripted_model, replay,
                                                                 tmp_path: Path):
    server = await replay("crashloop-redis")
    server.state.rollouts.start_delay = 0.1
    model = await scripted_model([
        {"say": "Restart cartservice.", "calls": [{"tool": "rollout_restart", "args": {
            "namespace": "shop", "kind": "deployment", "name": "cartservice"}}]},
        {"answer": "ROOT CAUSE: cartservice runs redis:alpine\nFIX: roll it back"}])
    tools = build_toolbox(Cluster.from_kubeconfig(str(server.kubeconfig)), poll_s=0.05)
    async with running_bot(slack, model.url, tools, tmp_path, approval_timeout=30.0,
                           verify_timeout=0.4) as h:
        await h.sim.slash_command("investigate the cart is broken", user_id=REQUESTER)
        root = await h.root_message()
        card = await slack.wait_for(lambda: h.card(root.ts), message="no card")
        await h.sim.block_action("budo_approve", card.blocks[-1]["elements"][0]["value"],
                                 user_id=ONCALL_USER, message_ts=card.ts)
        verdict = await h.top_level("🧭 Verdict", wait_s=20)
        thread = slack.thread(CHANNEL, root.ts)
        failed = [m for m in thread if m.text.startswith("❌ not ready after 0.4 s")]
        assert len(failed) == 1 and "CrashLoopBackOff" in json.dumps(failed[0].blocks)
        body = json.dumps(verdict.blocks, ensure_ascii=False)
        assert "❌ rollout restart deployment/cartservice" in body
        assert "not ready after 0.4 s" in body
        assert len(server.state.rollouts.writes) == 1
