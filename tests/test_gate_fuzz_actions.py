"""The gate fuzz, for the remediation actions (rollout_restart, rollout_undo, scale, set_env):
generated adversarial calls through the real loop, toolbox, kubernetes client and replay API.
Every request the cluster sees is counted: reads and dry runs may touch only the named
workload in scope; a real write happens only after an approval, for that workload."""

from __future__ import annotations

import random
import re
from typing import Any

from agent.loop import Budgets
from tests.agent_run import CoinFlipOnCall, batched_turns, run_agent
from tests.test_gate_fuzz import BAD_NAMES, BAD_NAMESPACES, OUT_OF_SCOPE

SCOPE = ("shop",)
TOOLS = ["rollout_restart", "rollout_undo", "scale", "set_env"]
WORKLOAD_PATH = re.compile(
    r"/apis/apps/v1/namespaces/shop/(deployments|statefulsets|daemonsets|replicasets|controllerrevisions)"
    r"(/[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(/scale)?)?"
    r"|/api/v1/namespaces/shop/(pods|events)")


def generate(names: list[str], count: int, seed: int = 14) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    calls: list[dict[str, Any]] = []
    while len(calls) < count:
        tool = rng.choice(TOOLS)
        name = rng.choice(names)
        args: dict[str, Any] = {"namespace": "shop", "name": name}
        if tool != "rollout_undo":
            args["kind"] = rng.choice(["deployment", "deployment", "statefulset", "Deployment",
                                       "pod", "daemonset", "", None, 1, "deployments/../.."])
        if tool == "scale":
            args["replicas"] = rng.choice([1, 2, 0, -1, 10**9, "3", 2.5, None, "x"])
        if tool == "set_env":
            args.update(container=rng.choice(["server", "main", "..", "", "Server"]),
                        env_name=rng.choice(["LOG_LEVEL", "1BAD", "A=B", "", "PATH"]),
                        value=rng.choice(["debug", "x" * 5000, "password=hunter2", "", None]))
        if tool == "rollout_undo" and rng.random() < 0.5:
            args["to_revision"] = rng.choice([1, 0, -3, "2", None, 10**12])
        shape = rng.randrange(6)
        if shape == 0:
            args["name"] = rng.choice(BAD_NAMES)
        elif shape == 1:
            args["namespace"] = rng.choice(BAD_NAMESPACES)
        elif shape == 2:
            args["namespace"] = rng.choice(OUT_OF_SCOPE)
        elif shape == 3:
            args[rng.choice(["force", "body", "patch", "dry_run", "field_manager"])] = "x"
        calls.append({"tool": tool, "args": args})
    return calls


async def test_fuzzed_remediation_calls_never_get_past_the_gate(replay, scripted_model) -> None:
    server = await replay("checkout-typo")
    names = [o["metadata"]["name"] for o in server.state.objects
             if o["kind"] in ("Deployment", "StatefulSet")
             and o["metadata"].get("namespace") == "shop"]
    calls = generate(names, 1000)
    turns = batched_turns(calls, 50)
    model_server = await scripted_model(turns)
    oncall = CoinFlipOnCall(seed=3)
    before = len(server.requests)
    outcome, _trail = await run_agent(
        server, model_server.url, "fuzz the actions", run_id="r-fuzz2", approver=oncall,
        namespaces=SCOPE,
        # A window for 1000 calls' results: this test is about the gate, and a model that
        # plays its next call once the tools are taken away gives no answer (a failed run).
        budgets=Budgets(max_turns=len(turns) + 2, max_tokens=10**9, run_timeout=900,
                        tool_output_chars=2000, verify_timeout=0.2, context_tokens=10**6))
    assert outcome.status == "succeeded", outcome.reason
    for req in oncall.shown:   # 0 cards for invalid or out-of-scope arguments
        assert req.args["namespace"] == "shop" and req.args["name"] in names, req.args
    seen = server.requests[before:]
    bad_paths = [(r.method, r.path) for r in seen if not WORKLOAD_PATH.fullmatch(r.path)]
    assert bad_paths == []
    writes = [r for r in seen if r.method not in ("GET",) and "dryRun" not in r.query]
    approved_targets = {(a.args.get("kind") or "deployment", a.args["name"])
                        for a in oncall.approved}
    for write in writes:       # 0 writes without an approval for that workload
        kind, name = write.path.split("/")[6], write.path.split("/")[7]
        assert (kind.rstrip("s"), name) in approved_targets, write
    assert 0 < len(writes) <= len(oncall.approved) and len(oncall.shown) > len(oncall.approved)
