"""`budo investigate`: the agent in a terminal, recorded in the audit store like a Slack run.

Approval in a terminal: a y/N prompt on the controlling TTY. No TTY (a pipe, CI, cron) means
nobody can be asked, so the mutation is denied and the output says so.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TextIO

from agent import (
    ApprovalDecision,
    ApprovalRequest,
    Budgets,
    ChatModel,
    EventSink,
    RunOutcome,
    ToolSpec,
    format_args,
    run_investigation,
    terminal_safe,
)
from budo import wiring
from budo.config import Settings
from budo.console import TerminalSink


@dataclass
class TerminalApprover:
    """Asks on stdin when it is a TTY; otherwise denies, saying why. ``auto_approve`` (the
    demo's --approve) says yes without asking, and says so."""

    stdin: TextIO | None = None
    out: TextIO | None = None
    user: str = "terminal user"
    auto_approve: bool = False

    async def request(self, req: ApprovalRequest) -> ApprovalDecision:
        stdin = self.stdin or sys.stdin
        out = self.out or sys.stdout
        if self.auto_approve:
            return ApprovalDecision(True, self.user, "approved (--approve)")
        if not stdin.isatty():
            return ApprovalDecision(False, None, "no TTY to ask for approval: denied")
        # Every piece is outside text (the model's arguments, the cluster's values in the
        # diff): shown, never obeyed, so nothing in it can redraw the question being asked.
        diff = "".join(f"\n  │      {terminal_safe(c)}"
                       for c in (req.preview.changes if req.preview else []))
        call = terminal_safe(f"{req.summary} [{req.tool}({format_args(req.args)})]")
        prompt = (f"  │  Approve {call}?{diff}\n  │  [y/N] " if diff else
                  f"  │  Approve {call}? [y/N] ")
        print(prompt, end="", file=out, flush=True)
        answer = await asyncio.to_thread(stdin.readline)
        if answer.strip().lower() in {"y", "yes"}:
            return ApprovalDecision(True, self.user, "approved")
        return ApprovalDecision(False, self.user, "denied at the prompt")


async def investigate(
    question: str,
    *,
    model: ChatModel,
    tools: Sequence[ToolSpec],
    db_path: str,
    budgets: Budgets,
    namespace: str | None = None,
    sinks: Sequence[EventSink] = (),
    approver: TerminalApprover | None = None,
    requester: str = "terminal",
    audit_key: str | None = None,
) -> RunOutcome:
    """One recorded run: open the store, start the run, loop with the audit sink first (so a
    step is committed before it is shown), close the store."""
    from storage import AuditSink, Store

    store = await Store.open(db_path, audit_key=audit_key)
    try:
        run = await store.start_run(source="terminal", question=question, requester=requester,
                                    namespace=namespace, model=getattr(model, "model", None))
        return await run_investigation(
            question, run_id=run.id, model=model, tools=tools,
            sinks=[AuditSink(store), *sinks], approver=approver or TerminalApprover(),
            budgets=budgets, namespace=namespace, requester=requester,
        )
    finally:
        await store.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("question", help='what is wrong, e.g. "checkout is failing"')
    parser.add_argument("--namespace", "-n", help="the namespace to start from")
    parser.add_argument("--max-turns", type=int, help="model turns (default BUDO_MAX_TURNS=15)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default KUBECONFIG)")


async def run(args: argparse.Namespace) -> int:
    from agent import Cluster, build_toolbox

    settings = Settings.from_env()
    if not args.question.strip():
        print("budo investigate: the question is empty", file=sys.stderr)
        return 2
    if args.max_turns is not None and args.max_turns < 1:
        print("budo investigate: --max-turns must be at least 1", file=sys.stderr)
        return 2
    budgets = wiring.budgets(settings)
    if args.max_turns:
        budgets = replace(budgets, max_turns=args.max_turns)
    cluster = Cluster.from_kubeconfig(args.kubeconfig or settings.kubeconfig,
                                      namespaces=settings.namespaces)
    async with wiring.chat_model(settings, connect_retries=1) as model:
        outcome = await investigate(
            args.question, model=model, tools=build_toolbox(cluster, settings.max_replicas),
            db_path=settings.db_path,
            budgets=budgets, namespace=args.namespace, sinks=[TerminalSink()],
            audit_key=settings.audit_key,
        )
    return exit_code(outcome)


def exit_code(outcome: RunOutcome) -> int:
    """0 with a verdict; otherwise one line on stderr and 1 (failed) or 130 (stopped)."""
    if outcome.status == "succeeded":
        return 0
    print(f"budo: no verdict: {terminal_safe(outcome.reason or '')} (run {outcome.run_id}; "
          f"`budo export {outcome.run_id}` for the trail)", file=sys.stderr)
    return 130 if outcome.status in ("cancelled", "interrupted") else 1
