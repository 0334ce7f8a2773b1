"""`budo eval`: can this model do the job? Run bundled incidents against the configured model and
score each verdict by the scenario's expected regexes.

No human is in an eval, so mutating calls are denied (and counted). A model that never makes a
tool call is reported as such: that is the most common failure of small local models, and the
answer a user choosing a model needs. Per run it also counts what the client and loop had to
do to get there: compactions (the conversation outgrew the model's context), nudges (replies that
were neither a tool call nor an answer, or were cut off) and truncations (the server silently
dropped part of the prompt, or the answer stayed cut off).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, replace

from agent import ApprovalDecision, ApprovalRequest, Budgets, ChatModel, Event, run_investigation
from budo import wiring
from budo.config import Settings
from budo.harness import replayed_incident


@dataclass
class EvalResult:
    scenario: str
    run: int
    passed: bool
    status: str           # succeeded | failed | cancelled
    turns: int
    tokens: int
    seconds: float
    tool_calls: int
    note: str             # why it failed, in a few words
    compactions: int = 0  # the context budget shortened older tool results
    nudges: int = 0       # non-answers the loop asked again about
    truncations: int = 0  # server truncated the prompt, or the answer stayed cut off


class _Count:
    def __init__(self) -> None:
        self.tool_calls = 0
        self.recovered = 0
        self.compactions = self.nudges = self.truncations = 0

    async def emit(self, event: Event) -> None:
        if event.kind == "tool_requested":
            self.tool_calls += 1
        self.compactions += event.kind == "context_compacted"
        self.nudges += event.kind == "model_nudged"
        self.truncations += event.kind == "context_truncated"
        if event.kind == "verdict" and getattr(event, "verdict", {}).get("cut_off"):
            self.truncations += 1
        if event.kind == "model_reply" and getattr(event, "recovered_from_text", False):
            self.recovered += 1


class _DenyAll:
    async def request(self, req: ApprovalRequest) -> ApprovalDecision:
        return ApprovalDecision(False, None, "eval: no human to approve; denied")


async def evaluate_one(name: str, model: ChatModel, budgets: Budgets, run_no: int = 1
                       ) -> EvalResult:
    counter = _Count()
    started = time.monotonic()
    async with replayed_incident(name) as incident:
        outcome = await run_investigation(
            incident.scenario.question, run_id=f"eval-{name}-{run_no}", model=model,
            tools=incident.tools, sinks=[counter], approver=_DenyAll(), budgets=budgets,
            namespace=incident.scenario.namespace)
        unmet = incident.scenario.check_verdict(outcome.verdict) if outcome.verdict else []
    passed = outcome.status == "succeeded" and not unmet
    if outcome.status != "succeeded":
        note = outcome.reason or outcome.status
    elif counter.tool_calls == 0:
        note = "made no tool calls (this model cannot use tools here)"
    elif unmet:
        note = "missed: " + "; ".join(unmet)
    else:
        note = "ok" + (f" ({counter.recovered} calls recovered from text)"
                       if counter.recovered else "")
    return EvalResult(name, run_no, passed, outcome.status, outcome.turns, outcome.tokens,
                      round(time.monotonic() - started, 2), counter.tool_calls, note,
                      counter.compactions, counter.nudges, counter.truncations)


def render_table(results: list[EvalResult], model: str) -> str:
    lines = [f"model: {model}",
             f"{'scenario':<22} {'run':>3}  {'result':<6} {'turns':>5} {'tokens':>7} "
             f"{'secs':>6} {'calls':>5} {'compact':>7} {'nudges':>6} {'trunc':>5}  note"]
    for r in results:
        lines.append(f"{r.scenario:<22} {r.run:>3}  {'PASS' if r.passed else 'FAIL':<6} "
                     f"{r.turns:>5} {r.tokens:>7} {r.seconds:>6.1f} {r.tool_calls:>5} "
                     f"{r.compactions:>7} {r.nudges:>6} {r.truncations:>5}  {r.note[:80]}")
    passed = sum(r.passed for r in results)
    rate = 100 * passed / len(results) if results else 0.0
    lines.append(f"pass rate: {passed}/{len(results)} ({rate:.0f}%); compactions "
                 f"{sum(r.compactions for r in results)}, nudges "
                 f"{sum(r.nudges for r in results)}, truncations "
                 f"{sum(r.truncations for r in results)}")
    if any(r.truncations for r in results):
        lines.append("the server truncated prompts or answers: raise its context "
                     "(OLLAMA_CONTEXT_LENGTH, --max-model-len, -c) and BUDO_CONTEXT_TOKENS")
    if results and all(r.tool_calls == 0 for r in results):
        lines.append("this model made no tool calls in any run: it cannot drive budo's tools "
                     "(try a larger or tool-tuned model, e.g. qwen2.5:14b)")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", action="append", dest="scenarios", metavar="NAME",
                        help="a bundled scenario (repeatable; default: all)")
    parser.add_argument("--runs", type=int, default=1, help="runs per scenario (default 1)")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.add_argument("--max-turns", type=int, help="override BUDO_MAX_TURNS")


async def run(args: argparse.Namespace) -> int:
    from scenarios import bundled_scenarios

    settings = Settings.from_env()
    names = args.scenarios or bundled_scenarios()
    unknown = [n for n in names if n not in bundled_scenarios()]
    if unknown:
        print(f"budo eval: unknown scenario(s) {', '.join(unknown)}; bundled: "
              f"{', '.join(bundled_scenarios())}", file=sys.stderr)
        return 2
    if args.runs < 1 or (args.max_turns is not None and args.max_turns < 1):
        print("budo eval: --runs and --max-turns must be at least 1", file=sys.stderr)
        return 2
    budgets = wiring.budgets(settings)
    if args.max_turns:
        budgets = replace(budgets, max_turns=args.max_turns)
    async with wiring.chat_model(settings) as model:
        await model.check()  # unreachable / not pulled: one line from the CLI, exit 2
        results = await evaluate(names, model, budgets, args.runs)
    if args.json:
        print(json.dumps({"model": settings.llm_model, "results": [asdict(r) for r in results],
                          "passed": sum(r.passed for r in results), "total": len(results)},
                         indent=2))
    else:
        print(render_table(results, settings.llm_model))
    return 0 if all(r.passed for r in results) else 1


async def evaluate(names: list[str], model: ChatModel, budgets: Budgets, runs: int = 1
                   ) -> list[EvalResult]:
    results: list[EvalResult] = []
    for name in names:
        for run_no in range(1, runs + 1):
            results.append(await evaluate_one(name, model, budgets, run_no))
    return results

