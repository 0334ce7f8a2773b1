"""`budo demo`: the canonical incident end to end, on any machine, in one command.

A replayed `checkout-typo` cluster is served in-process; the agent investigates it through the
real tools, guards, approval gate and audit store, rendered in the terminal the way the Slack
thread shows it. The model is the one at BUDO_LLM_URL when it answers; otherwise the scenario's
scripted golden path plays the model's part (and the output says so in one line).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from agent import terminal_safe
from budo import wiring
from budo.config import Settings
from budo.console import TerminalSink
from budo.harness import configured_model_status, replayed_incident, scripted_model
from budo.terminal import TerminalApprover, investigate

DEFAULT_SCENARIO = "checkout-typo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", default=DEFAULT_SCENARIO,
                        help=f"bundled incident to replay (default {DEFAULT_SCENARIO}); "
                        "see `budo sandbox --list`")
    parser.add_argument("--scripted", action="store_true",
                        help="play the scripted golden path even if a model answers")
    parser.add_argument("--approve", action="store_true",
                        help="approve the proposed fix without asking, then watch it roll out "
                        "(the replay cluster is in memory; nothing real changes)")


MUTATING = ("delete_pod", "rollout_restart", "rollout_undo", "scale", "set_env")


def with_approval_step(turns: list[Any], namespace: str, pod: str | None) -> list[Any]:
    """The golden path, plus one restart request before the answer when it proposes no action
    itself, so the demo always shows the approval card and the gate (at a terminal you decide;
    without one it is denied; --approve says yes)."""
    if pod is None or any(c.get("tool") in MUTATING for t in turns
                          for c in (t.get("calls") or []) if isinstance(t, dict)):
        return list(turns)
    step = {
        "say": "Before concluding: a restart would show whether the pod caches a stale address. "
               "Requesting one (it needs an on-call approval).",
        "calls": [{"tool": "delete_pod", "args": {"namespace": namespace, "pod": pod}}],
    }
    return [*turns[:-1], step, turns[-1]]


def run(args: argparse.Namespace) -> int | Coroutine[Any, Any, int]:
    """Check the arguments synchronously, then hand the CLI the demo coroutine to run."""
    from scenarios import bundled_scenarios

    if args.scenario not in bundled_scenarios() and not os.path.isfile(args.scenario):
        print(f"budo demo: unknown scenario {args.scenario!r}; bundled: "
              f"{', '.join(bundled_scenarios())}", file=sys.stderr)
        return 2
    return demo(args, Settings.from_env())


async def demo(args: argparse.Namespace, settings: Settings) -> int:
    out = sys.stdout
    async with replayed_incident(args.scenario) as incident:
        scenario = incident.scenario
        print(f"budo demo · incident {scenario.name!r}: {scenario.title}", file=out)
        print(f"replay cluster at {incident.server.url} (the real kubernetes client talks to it)",
              file=out)
        answers, status = (False, "--scripted given") if args.scripted else (
            await configured_model_status(settings))
        status = terminal_safe(status)  # may quote the model server's own words
        sink = TerminalSink(out, requester="you (demo)")
        approver = TerminalApprover(auto_approve=args.approve,
                                    user="you (--approve)" if args.approve else "terminal user")
        budgets = wiring.budgets(settings)
        if answers:
            print(f"model: {status}", file=out)
            async with wiring.chat_model(settings) as model:
                outcome = await investigate(
                    scenario.question, model=model, tools=incident.tools,
                    db_path=settings.db_path, budgets=budgets, namespace=scenario.namespace,
                    sinks=[sink], approver=approver, requester="demo",
                    audit_key=settings.audit_key)
        else:
            print(f"model: none ({status}); playing the scripted golden path — only the model's "
                  "choices are scripted: tools, guards, approval gate and audit run for real.",
                  file=out)
            turns = with_approval_step(list(scenario.script), scenario.namespace,
                                       _a_pod_to_restart(incident))
            async with scripted_model(turns) as model:
                outcome = await investigate(
                    scenario.question, model=model, tools=incident.tools,
                    db_path=settings.db_path, budgets=budgets, namespace=scenario.namespace,
                    sinks=[sink], approver=approver, requester="demo",
                    audit_key=settings.audit_key)
        deleted = [f"{d.namespace}/{d.name}" for d in incident.server.deletions]
        patched = [f"{w.kind.lower()}/{w.name} in {w.namespace}"
                   for w in incident.server.state.rollouts.writes]
    print(file=out)
    how = "approved with --approve" if args.approve else "approved at the prompt"
    if deleted:
        print(f"cluster: deleted {', '.join(deleted)} ({how})", file=out)
    if patched:
        print(f"cluster: patched {', '.join(patched)} ({how}; the replay cluster only)",
              file=out)
    return await _summarise(outcome, scenario, settings.db_path, settings.audit_key)


def _a_pod_to_restart(incident: Any) -> str | None:
    """The first pod of the workload the golden path describes (the suspect)."""
    scenario = incident.scenario
    suspect = next((c["args"].get("name") for t in scenario.script for c in (t.get("calls") or [])
                    if c.get("tool") == "describe"), None)
    pods = scenario.pod_names(scenario.namespace)
    return (scenario.pod_for(suspect, scenario.namespace) if suspect else None) or (
        pods[0] if pods else None)


async def _summarise(outcome: Any, scenario: Any, db_path: str,
                     audit_key: str | None = None) -> int:
    from storage import Store, export_markdown

    store = await Store.open(db_path, audit_key=audit_key)
    try:
        run = await store.get_run(outcome.run_id)
        events = await store.events(outcome.run_id)
        check = await store.verify(outcome.run_id)
        timeline = Path(db_path).parent / f"{outcome.run_id}.md"
        if db_path != ":memory:":
            timeline.write_text(export_markdown(run, events), encoding="utf-8")
    finally:
        await store.close()
    chain = "hash chain OK" if check.ok else f"hash chain BROKEN at event {check.first_bad_seq}"
    print(f"audit: run {outcome.run_id}, {len(events)} events, {chain}; postmortem timeline "
          f"written to {timeline} (again any time: budo export {outcome.run_id})")
    if outcome.status == "cancelled":  # Ctrl-C mid-run: the same 130 as everywhere else
        print(f"✗ interrupted: {outcome.reason}")
        return 130
    if outcome.status != "succeeded":
        print(f"✗ no verdict: {terminal_safe(outcome.reason)}")
        return 1
    unmet = scenario.check_verdict(outcome.verdict)
    if unmet:
        print(f"✗ the verdict misses the expected diagnosis: {terminal_safe('; '.join(unmet))}")
        return 1
    print("✓ the verdict matches the expected diagnosis")
    return 0
