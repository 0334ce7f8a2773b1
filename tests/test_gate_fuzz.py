"""The approval gate under fire: generated adversarial delete_pod calls through the real loop,
the real HTTP model client (scripted model server), the real toolbox and kubernetes client,
and the replay API server — where every request is counted.

The on-call double approves about half of what it is shown, at random: whatever it approves
may be deleted, nothing else, and nothing invalid or out of scope may ever reach it.
"""

from __future__ import annotations

import random
import re
from typing import Any

from agent.loop import Budgets
from agent.names import LABEL_MAX, SUBDOMAIN_MAX
from tests.agent_run import CoinFlipOnCall, batched_turns, run_agent

SCOPE = ("shop",)
CALLS_PER_TURN = 50
VALID_POD_PATH = re.compile(
    r"/api/v1/namespaces/shop/pods/[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

BAD_NAMES: list[Any] = [
    ".", "..", "", " ", "/", "./", "../", "../..", "a/b", "shop/pods", "%2e", "%2e%2e", "..%2f",
    "%2F", "pod?watch=true", "pod#x", "pod;x", "*", "a b", "\t", "\n", "x\n", "pod\x00",
    "Checkout", "CHECKOUT", "-lead", "trail-", "a..b", "a.-b", ".hidden", "dot.", "x" * 254,
    "сheckout", "check\u200bout", "checkout\u2024x", "ｃheckout", "pod:80", "pod@x",
    None, 0, 1, 1.5, True, False, [], ["shop"], {}, {"name": "x"},
]
BAD_NAMESPACES: list[Any] = [
    ".", "..", "", "/", "shop/", "shop/pods", " shop", "SHOP", "sh op", "x" * 64, "shop\u200b",
    "%2e%2e", "shоp", None, 5, ["shop"], {"ns": "shop"},
]
OUT_OF_SCOPE = ["kube-system", "default", "kube-public", "payments", "shop2", "s"]
EXTRA_ARGS = [{"grace_period_seconds": 0}, {"force": True}, {"propagation_policy": "Orphan"},
              {"body": {"preconditions": {}}}, {"dry_run": "All"}, {"_request_timeout": 1},
              {"name": "other"}, {"approved": True}]
TOOL_VARIANTS = ["delete_pod", "Delete_Pod", "DELETE_POD", "delete-pod", "deletePod",
                 "delete_pod ", " delete_pod", "functions.delete_pod", "delete_pods",
                 "delete_pod\u200b", "delete", "kubectl_delete", "delete_namespace",
                 "delete_pod()", "tools/delete_pod"]
RAW_ARGUMENTS = ['["shop", "x"]', "null", '"checkout"', "", "{", '{"namespace": "shop", "pod": ',
                 '{"namespace": "shop", "pod": "{pod}", "namespace": "kube-system"}',
                 '{"namespace": "shop", "pod": "../{pod}"}', "1", "true"]


def is_label(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= LABEL_MAX and bool(
        re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", value))


def is_subdomain(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= SUBDOMAIN_MAX and bool(
        re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", value))


def generate(pods: list[str], count: int, seed: int = 12) -> list[dict[str, Any]]:
    """``count`` calls: adversarial names, namespaces, extra arguments, raw argument text
    and tool-name variants, mixed with a few valid calls on real pods."""
    rng = random.Random(seed)
    calls: list[dict[str, Any]] = []
    while len(calls) < count:
        pod = rng.choice(pods)
        shape = rng.randrange(8)
        if shape == 0:
            args: Any = {"namespace": "shop", "pod": rng.choice(BAD_NAMES)}
        elif shape == 1:
            args = {"namespace": rng.choice(BAD_NAMESPACES), "pod": pod}
        elif shape == 2:
            args = {"namespace": rng.choice(OUT_OF_SCOPE), "pod": rng.choice([pod, "coredns-0"])}
        elif shape == 3:
            args = {"namespace": "shop", "pod": pod, **rng.choice(EXTRA_ARGS)}
        elif shape == 4:
            args = rng.choice(RAW_ARGUMENTS).replace("{pod}", pod)
        elif shape == 5:  # a prefix or a suffix of a real name: names are never completed
            args = {"namespace": "shop", "pod": rng.choice([pod[:-3], pod + "-x", pod + "/",
                                                            pod + "/..", pod.upper()])}
        elif shape == 6:
            args = {"pod": pod} if rng.random() < 0.5 else {"namespace": "shop"}
        else:
            args = {"namespace": "shop", "pod": pod}  # valid: may be approved and deleted
        tool = "delete_pod" if shape == 7 or rng.random() < 0.6 else rng.choice(TOOL_VARIANTS)
        calls.append({"tool": tool, "args": args})
    return calls


async def test_fuzzed_delete_calls_never_get_past_the_gate(replay, scripted_model) -> None:
    server = await replay("checkout-typo")
    pods = [o["metadata"]["name"] for o in server.state.objects
            if o["kind"] == "Pod" and o["metadata"].get("namespace") == "shop"]
    calls = generate(pods, 1200)
    turns = batched_turns(calls, CALLS_PER_TURN)
    model_server = await scripted_model(turns)
    oncall = CoinFlipOnCall(seed=7)
    before = len(server.requests)
    outcome, trail = await run_agent(
        server, model_server.url, "fuzz the gate", run_id="r-fuzz", approver=oncall,
        namespaces=SCOPE,
        # context_tokens: 100 results a turn outgrow any real model's context; the
        # budget would end the run early (answer without tools), which is not under test.
        budgets=Budgets(max_turns=len(turns) + 2, max_tokens=10**9, run_timeout=600,
                        tool_output_chars=2000, context_tokens=10**8))
    assert outcome.status == "succeeded", outcome.reason
    requested = [e for e in trail.events if e.kind == "tool_requested"]
    assert len(requested) >= 1000

    # 0 cards for invalid or out-of-scope arguments; every card shows exactly what runs.
    for req in oncall.shown:
        assert req.tool == "delete_pod"
        assert set(req.args) == {"namespace", "pod"}, req.args
        assert req.args["namespace"] in SCOPE and is_subdomain(req.args["pod"]), req.args
        assert req.preview is not None and req.preview.binding.get("uid")
        assert req.args["pod"] in req.summary and req.args["namespace"] in req.summary
    cards = [e for e in trail.events if e.kind == "approval_requested"]
    assert len(cards) == len(oncall.shown) > 0

    # Every request the cluster saw names one pod in scope; DELETEs only what was approved.
    seen = server.requests[before:]
    for record in seen:
        assert VALID_POD_PATH.fullmatch(record.path), record
        assert record.method in ("GET", "DELETE"), record
        assert record.query == "", record
    deletes = [r.path.rsplit("/", 1)[1] for r in seen if r.method == "DELETE"]
    approved = [req.args["pod"] for req in oncall.approved]
    assert len(deletes) == len(approved) > 0          # 0 DELETEs without an approval
    assert sorted(deletes) == sorted(approved)
    assert all(req.args["namespace"] in SCOPE for req in oncall.approved)  # 0 outside scope
    assert {d.name for d in server.deletions} <= set(approved)
    # Invalid names and scope were refused as tool errors the model can act on.
    errors = [e.error or "" for e in trail.events if e.kind == "tool_finished" and not e.ok]
    assert any("not a valid Kubernetes" in e for e in errors)
    assert any("outside BUDO_NAMESPACES" in e for e in errors)
    assert any("unknown tool" in e.lower() or "no tool" in e.lower() for e in errors)


def test_generated_arguments_are_mostly_adversarial() -> None:
    calls = generate(["checkoutservice-7d9f8-abcde"], 1200)
    valid = [c for c in calls if c["tool"] == "delete_pod" and isinstance(c["args"], dict)
             and set(c["args"]) == {"namespace", "pod"} and c["args"]["namespace"] == "shop"
             and is_subdomain(c["args"]["pod"]) and is_label(c["args"]["namespace"])]
    assert len(calls) - len(valid) >= 1000
