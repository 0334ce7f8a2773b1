"""The four remediation actions through the real loop, our model client against the scripted
model, and the real kubernetes client against the replay API: for each, a good call (card with
the dry run's diff, one stored PATCH, a verified rollout), an invalid argument (no request, no
card), a dry run the API refuses (no card), a conflict between card and click (nothing
applied) and a failed verification (the model is told)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from agent.loop import Budgets
from agent.protocols import ApprovalDecision, ApprovalRequest
from tests.agent_run import run_agent

DATA = Path(__file__).parent / "data"
CHECKOUT_FIX = {"namespace": "shop", "kind": "deployment", "name": "checkoutservice",
                "container": "server", "env_name": "PAYMENT_SERVICE_ADDR",
                "value": "paymentservice:50051"}


class Approver:
    """On-call as an async callback: records each request, may act before answering."""

    def __init__(self, approve: bool = True,
                 before: Callable[[ApprovalRequest], Awaitable[None]] | None = None) -> None:
        self.approve, self.before = approve, before
        self.requests: list[ApprovalRequest] = []

    async def request(self, req: ApprovalRequest) -> ApprovalDecision:
        self.requests.append(req)
        if self.before is not None:
            await self.before(req)
        return ApprovalDecision(self.approve, "U_ONCALL", "approved" if self.approve
                                else "denied")


async def act(replay, scripted_model, scenario: str | Path, tool: str, args: dict[str, Any],
              approver: Approver | None = None, verify_timeout: float = 10.0,
              namespaces: tuple[str, ...] = (), deny: str | None = None,
              on_card: Callable[[Any], Awaitable[None]] | None = None,
              start_delay: float = 0.1, tool_timeout: float = 30.0):
    server = await replay(scenario)
    server.state.rollouts.start_delay = start_delay
    server.faults.deny_writes = deny
    if on_card is not None:
        approver = Approver(True, lambda _req: on_card(server))
    model = await scripted_model([{"say": "Fixing it.", "calls": [{"tool": tool, "args": args}]},
                                  {"answer": "ROOT CAUSE: see the action\nFIX: done"}])
    approver = approver or Approver()
    outcome, trail = await run_agent(
        server, model.url, "fix it", run_id="r-act", approver=approver, namespace="shop",
        namespaces=namespaces, toolbox={"max_replicas": 5, "poll_s": 0.05},
        budgets=Budgets(verify_timeout=verify_timeout, tool_timeout=tool_timeout))
    assert outcome.status == "succeeded"
    finished = trail.of("tool_finished")[0]
    sent_back = next(m for m in model.requests[1]["messages"] if m["role"] == "tool")["content"]
    return server, trail, approver, finished, sent_back


def patches(server, dry: bool) -> list[str]:
    return [r.path for r in server.requests
            if r.method == "PATCH" and ("dryRun=All" in r.query) == dry]


def deployment(server, name: str) -> dict[str, Any]:
    api = client.AppsV1Api(config.new_client_from_config(config_file=str(server.kubeconfig)))
    return json.loads(api.read_namespaced_deployment(name, "shop", _preload_content=False).data)


async def read(server, name: str) -> dict[str, Any]:
    return await asyncio.to_thread(deployment, server, name)


def env(obj: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in
            obj["spec"]["template"]["spec"]["containers"][0].get("env", [])}


# --- good calls -------------------------------------------------------------------------------


async def test_set_env_shows_the_diff_applies_one_patch_and_verifies(replay, scripted_model):
    server, trail, approver, finished, sent = await act(
        replay, scripted_model, "checkout-typo", "set_env", CHECKOUT_FIX)
    card = trail.of("approval_requested")[0]
    assert card.changes == ["env PAYMENT_SERVICE_ADDR: paymetnservce:50051 → paymentservice:50051"]
    assert card.current.startswith("deployment/checkoutservice in shop: 1/1 ready")
    assert approver.requests[0].preview.changes == card.changes
    assert patches(server, dry=True) == patches(server, dry=False) == [
        "/apis/apps/v1/namespaces/shop/deployments/checkoutservice"]
    assert env(await read(server, "checkoutservice"))["PAYMENT_SERVICE_ADDR"] == \
        "paymentservice:50051"
    verified = trail.of("verified")[0]
    assert verified.ok and verified.outcome.startswith("rolled out: 1/1 ready in ")
    kinds = [e.kind for e in trail.events]
    assert kinds.index("verified") < kinds.index("tool_finished")
    assert finished.ok and "VERIFIED: rolled out" in sent


async def test_verification_has_its_own_budget_and_waits_for_ready_pods(replay,
                                                                       scripted_model):
    # New pods take 1 s to start; the per-tool budget is 0.5 s: the PATCH fits in it, the
    # watch does not have to, and it must not say "rolled out" before the pods are Ready.
    _, trail, _, finished, _ = await act(replay, scripted_model, "checkout-typo", "set_env",
                                         CHECKOUT_FIX, start_delay=1.0, tool_timeout=0.5)
    verified = trail.of("verified")[0]
    assert verified.ok and verified.duration_s >= 0.9
    assert finished.ok


@pytest.mark.parametrize(("scenario", "tool", "args", "change"), [
    ("checkout-typo", "scale", {"namespace": "shop", "kind": "deploy", "name": "checkoutservice",
                                "replicas": 3}, "replicas 1 → 3"),
    ("checkout-typo", "rollout_restart", {"namespace": "shop", "kind": "deployment",
                                          "name": "checkoutservice"},
     "pod annotation kubectl.kubernetes.io/restartedAt: (none) → "),
    ("crashloop-redis", "rollout_undo", {"namespace": "shop", "name": "cartservice"},
     "image redis:alpine → us-central1-docker.pkg.dev/google-samples/microservices-demo/"
     "cartservice:v0.10.2"),
])
async def test_each_action_previews_applies_and_verifies(replay, scripted_model, scenario, tool,
                                                        args, change):
    server, trail, _, finished, sent = await act(replay, scripted_model, scenario, tool, args)
    card = trail.of("approval_requested")[0]
    assert any(c.startswith(change) for c in card.changes), card.changes
    assert len(patches(server, dry=True)) == len(patches(server, dry=False)) == 1
    assert len(server.state.rollouts.writes) == 1
    assert trail.of("verified")[0].ok, trail.of("verified")[0]
    assert finished.ok and "VERIFIED: rolled out" in sent


@pytest.mark.parametrize(("tool", "args", "change"), [
    ("set_env", {"namespace": "shop", "kind": "statefulset", "name": "orders-db",
                 "container": "server", "env_name": "POSTGRES_DB", "value": "orders2"},
     "env POSTGRES_DB: orders → orders2"),
    ("scale", {"namespace": "shop", "kind": "sts", "name": "orders-db", "replicas": 3},
     "replicas 2 → 3"),
    ("rollout_restart", {"namespace": "shop", "kind": "statefulset", "name": "orders-db"},
     "pod annotation kubectl.kubernetes.io/restartedAt"),
    ("rollout_restart", {"namespace": "shop", "kind": "daemonset", "name": "node-agent"},
     "pod annotation kubectl.kubernetes.io/restartedAt"),
    ("set_env", {"namespace": "shop", "kind": "ds", "name": "node-agent", "container": "agent",
                 "env_name": "LOG_LEVEL", "value": "debug"}, "env LOG_LEVEL: info → debug"),
])
async def test_statefulsets_and_daemonsets(replay, scripted_model, tool, args, change):
    server, trail, _, finished, sent = await act(replay, scripted_model,
                                                 DATA / "stateful-shop.yaml", tool, args)
    card = trail.of("approval_requested")[0]
    assert any(c.startswith(change) for c in card.changes), card.changes
    assert len(patches(server, dry=False)) == 1
    assert trail.of("verified")[0].ok, trail.of("verified")[0]
    assert finished.ok and "VERIFIED: rolled out" in sent


async def test_a_denied_action_sends_no_real_request(replay, scripted_model):
    server, trail, _, finished, sent = await act(
        replay, scripted_model, "checkout-typo", "set_env", CHECKOUT_FIX, Approver(False))
    assert trail.of("approval_requested")[0].changes
    assert patches(server, dry=True) and patches(server, dry=False) == []
    assert server.state.rollouts.writes == [] and not trail.of("verified")
    assert not finished.ok and "denied" in sent


# --- invalid arguments: no request, no card ----------------------------------------------------


@pytest.mark.parametrize(("tool", "args", "message"), [
    ("set_env", {**CHECKOUT_FIX, "env_name": "1PAYMENT"}, "not a valid environment variable"),
    ("set_env", {**CHECKOUT_FIX, "env_name": ".."}, "not a valid environment variable"),
    ("set_env", {**CHECKOUT_FIX, "container": "Server"}, "not a valid Kubernetes name"),
    ("scale", {"namespace": "shop", "kind": "deployment", "name": 7, "replicas": 1},
     "must be a name"),
    ("set_env", {**CHECKOUT_FIX, "value": "password=hunter2hunter2"}, "looks like a secret"),
    ("set_env", {**CHECKOUT_FIX, "kind": "pod"}, "kind must be one of"),
    ("scale", {"namespace": "shop", "kind": "deployment", "name": "checkoutservice",
               "replicas": 6}, "between 0 and 5 (BUDO_MAX_REPLICAS)"),
    ("scale", {"namespace": "shop", "kind": "daemonset", "name": "x", "replicas": 1},
     "kind must be one of deployment, statefulset"),
    ("rollout_restart", {"namespace": "shop", "kind": "deployment", "name": ".."},
     "not a valid Kubernetes object name"),
    ("rollout_undo", {"namespace": "kube-system", "name": "coredns"}, "outside BUDO_NAMESPACES"),
    ("rollout_undo", {"namespace": "shop", "name": "cartservice", "to_revision": 0},
     "to_revision must be 1 or more"),
])
async def test_an_invalid_call_costs_no_request_and_no_card(replay, scripted_model, tool, args,
                                                           message):
    server, trail, approver, finished, _ = await act(
        replay, scripted_model, "checkout-typo", tool, args, namespaces=("shop",))
    assert not finished.ok and message in (finished.error or "")
    assert server.requests == [] and approver.requests == []
    assert not trail.of("approval_requested")


# --- dry runs the API refuses: no card ----------------------------------------------------------


@pytest.mark.parametrize(("tool", "args"), [
    ("set_env", CHECKOUT_FIX),
    ("scale", {"namespace": "shop", "kind": "deployment", "name": "checkoutservice",
               "replicas": 4}),
    ("rollout_restart", {"namespace": "shop", "kind": "deployment", "name": "checkoutservice"}),
    ("rollout_undo", {"namespace": "shop", "name": "checkoutservice"}),
])
async def test_a_refused_dry_run_is_the_result_and_posts_no_card(replay, scripted_model, tool,
                                                                args):
    server, trail, approver, finished, sent = await act(
        replay, scripted_model, "checkout-typo", tool, args,
        deny="changes in shop need a change ticket")
    assert not finished.ok and "admission webhook" in (finished.error or "")
    assert "change ticket" in sent
    assert approver.requests == [] and not trail.of("approval_requested")
    assert patches(server, dry=False) == [] and len(patches(server, dry=True)) == 1


# --- conflicts: the object changed between card and click ----------------------------------------


async def _someone_else_edits(server, name: str) -> None:
    api = client.AppsV1Api(config.new_client_from_config(config_file=str(server.kubeconfig)))
    await asyncio.to_thread(api.patch_namespaced_deployment, name, "shop",
                            {"metadata": {"annotations": {"edited-by": "someone-else"}}},
                            _content_type="application/merge-patch+json")


@pytest.mark.parametrize(("scenario", "tool", "args"), [
    ("checkout-typo", "set_env", CHECKOUT_FIX),
    ("checkout-typo", "scale", {"namespace": "shop", "kind": "deployment",
                                "name": "checkoutservice", "replicas": 2}),
    ("checkout-typo", "rollout_restart", {"namespace": "shop", "kind": "deployment",
                                          "name": "checkoutservice"}),
    ("crashloop-redis", "rollout_undo", {"namespace": "shop", "name": "cartservice"}),
])
async def test_an_object_changed_after_the_card_is_not_patched(replay, scripted_model, scenario,
                                                              tool, args):
    server, trail, _, finished, _ = await act(
        replay, scripted_model, scenario, tool, args,
        on_card=lambda server: _someone_else_edits(server, args["name"]))
    assert not finished.ok and "changed since it was approved" in (finished.error or "")
    assert [w.name for w in server.state.rollouts.writes] == [args["name"]]  # only theirs
    assert not trail.of("verified")
    after = await read(server, args["name"])
    assert after["metadata"]["annotations"]["edited-by"] == "someone-else"
    assert "restartedAt" not in json.dumps(after["spec"]["template"])


# --- failed verification: applied, rolled out, not Ready ---------------------------------------


@pytest.mark.parametrize(("scenario", "tool", "args"), [
    ("crashloop-redis", "rollout_restart", {"namespace": "shop", "kind": "deployment",
                                            "name": "cartservice"}),
    ("crashloop-redis", "scale", {"namespace": "shop", "kind": "deployment",
                                  "name": "cartservice", "replicas": 2}),
    ("crashloop-redis", "set_env", {"namespace": "shop", "kind": "deployment",
                                    "name": "cartservice", "container": "server",
                                    "env_name": "REDIS_ADDR", "value": "redis-cart:6380"}),
    (DATA / "undo-still-broken.yaml", "rollout_undo", {"namespace": "shop",
                                                       "name": "cartservice"}),
])
async def test_a_failed_verification_reaches_the_model(replay, scripted_model, scenario, tool,
                                                      args):
    server, trail, _, finished, sent = await act(replay, scripted_model, scenario, tool, args,
                                                 verify_timeout=0.4)
    verified = trail.of("verified")[0]
    assert not verified.ok and verified.outcome.startswith("not ready after 0.4 s")
    assert any("CrashLoopBackOff" in d for d in verified.details), verified.details
    assert len(server.state.rollouts.writes) == 1          # it was applied
    assert not finished.ok and "the verification failed" in sent
    assert "The change IS applied" in sent
