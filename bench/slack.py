"""The Slack bot's speed: ack latency, per-step overhead, 100 concurrent runs.

Everything runs on loopback in one process: the Slack emulator (scenarios/slack_emulator), the
bot (BudoBot on aiohttp) and in-process zero-latency models and tools, so the figures are
the bot's own cost (plus the emulator sharing the event loop, which only makes them worse).

1. Ack latency: 200 signed `/budo help` requests (answered in the ack) and 200 `/budo runs`
   (ack, then a task queries the store and answers via response_url) — p50/p99 from send to
   full response. Target p99 < 50 ms.
2. Overhead per agent step: run_investigation with a zero-latency model (that yields, as an
   HTTP call does) and tool, with no sinks vs with the AuditSink alone, the bot's
   SlackEventSink alone, and both, timed until the Slack trail is drained; median over runs of
   (time with − time without) / steps. Target < 5 ms median.
3. 100 concurrent runs (one channel each, 5 tool calls, 20 ms model latency) started by
   signed slash commands: event-loop lag p99 (a 10 ms ticker), every tool message and verdict
   present in Slack and every event in the audit, peak RSS. Target lag p99 < 50 ms.

    python bench/slack.py [--runs 100] [--acks 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent import (
    ApprovalDecision,
    ApprovalRequest,
    Budgets,
    Completion,
    Event,
    ToolCall,
    ToolResult,
    ToolSpec,
    Usage,
    run_investigation,
)
from bot import BudoBot, RunThread, SlackEventSink, SlackPoster, make_web_client, open_server
from budo.config import Settings
from scenarios.slack_emulator import BOT_TOKEN, SlackClientSim, SlackEmulator
from storage import AuditSink, Store

SECRET = "bench-signing-secret"
ANSWER = ("ROOT CAUSE: checkoutservice-1 has a typo in PAYMENT_SERVICE_ADDR.\nEVIDENCE:\n"
          "- get_pods shows checkoutservice-1 Running\nFIX: fix the env var\nCONFIDENCE: high")


class InstantModel:
    """A scripted model with no latency (or ``delay_s``): ``steps`` tool calls, then answer."""

    model = "instant"

    def __init__(self, steps: int, delay_s: float = 0.0) -> None:
        self.steps, self.delay_s = steps, delay_s

    async def complete(self, messages: list[dict[str, Any]], tools: Any = None,
                       tool_choice: Any = None) -> Completion:
        # Always yield, as a real (HTTP) model call does: the sinks' own tasks run meanwhile.
        await asyncio.sleep(self.delay_s)
        done = sum(1 for m in messages if m.get("role") == "tool")
        usage = Usage(100, 20)
        if done >= self.steps or not tools:
            return Completion(ANSWER, [], usage)
        call = ToolCall(f"call-{done}", "get_pods", {"namespace": f"ns{done}"})
        return Completion("Looking at the pods.", [call], usage)


async def get_pods(namespace: str) -> ToolResult:
    return ToolResult(True, f"checkoutservice-1 1/1 Running ({namespace})")


TOOLS = [ToolSpec("get_pods", "list pods", {"type": "object", "properties": {
    "namespace": {"type": "string"}}}, get_pods)]


class NoApprovals:
    async def request(self, req: ApprovalRequest) -> ApprovalDecision:
        return ApprovalDecision(False, None, "denied")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def settings_for(slack: SlackEmulator, db: str) -> Settings:
    return Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SECRET,
                    slack_api_url=slack.api_url, db_path=db, oncall_users=("U_LEAD",),
                    max_turns=20, max_runs=10_000)  # concurrency is measured, not the cap


async def bench_acks(slack: SlackEmulator, tmp: str, count: int) -> None:
    settings = settings_for(slack, os.path.join(tmp, "acks.db"))
    store = await Store.open(settings.db_path)
    bot = BudoBot(settings, store, model_factory=lambda _s: InstantModel(1),
                  toolbox_factory=lambda _s: TOOLS)
    serving = await open_server(bot, "127.0.0.1", 0)
    sim = SlackClientSim(f"http://127.0.0.1:{serving.port}/slack/events", SECRET, emulator=slack)
    try:
        for text in ("help", "runs"):
            await sim.slash_command(text)  # warm-up: connection, first dispatch
            timings = []
            for _ in range(count):
                reply = await sim.slash_command(text)
                assert reply.status == 200, reply
                timings.append(reply.elapsed * 1000)
            print(f"ack /budo {text:<5} n={count}: p50 {pct(timings, 0.5):.2f} ms, "
                  f"p99 {pct(timings, 0.99):.2f} ms, max {max(timings):.2f} ms "
                  f"(target p99 < 50 ms)")
        await bot.handlers.drain(grace_s=10)
    finally:
        await sim.close()
        await serving.close(grace=1)
        await store.close()


class NullSink:
    async def emit(self, event: Event) -> None:
        return None


async def bench_step_overhead(slack: SlackEmulator, tmp: str, steps: int = 20,
                              rounds: int = 15) -> None:
    settings = settings_for(slack, os.path.join(tmp, "steps.db"))
    store = await Store.open(settings.db_path)
    poster = SlackPoster(make_web_client(settings), rate_per_channel=1000, burst=1000)
    budgets = Budgets(max_turns=steps + 2)

    async def one(kind: str, index: int) -> float:
        run_id = f"r-{kind}-{index}"
        sinks: list[Any] = [NullSink()]
        sink = None
        if kind == "audit":
            record = await store.start_run(source="slack", question="bench")
            run_id = record.id
            sinks = [AuditSink(store)]
        elif kind != "none":
            root = await poster.post("CSTEP", "root")
            thread = RunThread(run_id, "CSTEP", root, root, "bench", "U1")
            sink = SlackEventSink(poster, thread)
            sinks = [sink]
            if kind == "slack+audit":
                record = await store.start_run(source="slack", question="bench")
                run_id = record.id
                sinks = [AuditSink(store), sink]
        started = time.perf_counter()
        outcome = await run_investigation("bench", run_id=run_id, model=InstantModel(steps),
                                          tools=TOOLS, sinks=sinks, approver=NoApprovals(),
                                          budgets=budgets)
        if sink is not None:
            await sink.close()  # timed: the run is done when its trail is in Slack
        elapsed = time.perf_counter() - started
        assert outcome.status == "succeeded", outcome
        return elapsed

    results: dict[str, list[float]] = {"none": [], "audit": [], "slack": [], "slack+audit": []}
    for index in range(rounds):
        for kind in results:
            results[kind].append(await one(kind, index))
    base = statistics.median(results["none"])
    for kind in ("audit", "slack", "slack+audit"):
        per_step = [(t - base) / steps * 1000 for t in results[kind]]
        print(f"overhead per step, {kind:<11} ({steps} steps x {rounds} runs): median "
              f"{statistics.median(per_step):.3f} ms, p90 {pct(per_step, 0.9):.3f} ms "
              f"(loop alone {base / steps * 1000:.3f} ms/step; target < 5 ms)")
    await poster.aclose()
    await store.close()


async def bench_concurrent(slack: SlackEmulator, tmp: str, runs: int, steps: int = 5) -> None:
    settings = settings_for(slack, os.path.join(tmp, "many.db"))
    store = await Store.open(settings.db_path)
    bot = BudoBot(settings, store, model_factory=lambda _s: InstantModel(steps, 0.02),
                  toolbox_factory=lambda _s: TOOLS, update_interval=2.0)
    serving = await open_server(bot, "127.0.0.1", 0)
    sim = SlackClientSim(f"http://127.0.0.1:{serving.port}/slack/events", SECRET, emulator=slack)
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append((time.perf_counter() - before - 0.01) * 1000)

    channels = [f"CRUN{i:04d}" for i in range(runs)]
    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    try:
        replies = await asyncio.gather(*(sim.slash_command("investigate bench", channel_id=c)
                                         for c in channels))
        assert all(r.status == 200 for r in replies)
        acks = [r.elapsed * 1000 for r in replies]

        def verdicts() -> int:
            return sum(1 for c in channels for m in slack.channel_messages(c)
                       if m.text.startswith("🧭 Verdict"))
        await slack.wait_for(lambda: verdicts() == runs, timeout=120)
        await slack.wait_for(lambda: not bot.runs.active, timeout=30)
        wall = time.perf_counter() - started
    finally:
        stop.set()
        await tick
    missing_tools = 0
    for channel in channels:
        root = next(m for m in slack.channel_messages(channel)
                    if m.text.startswith("🔍 Investigating"))
        tools = [m for m in slack.thread(channel, root.ts) if m.text.startswith("✅ get_pods")]
        missing_tools += steps - len(tools)
    records = await store.list_runs(limit=runs * 2)
    expected_events = 1 + steps * 4 + 2 + 1  # started, (request+reply+tool x2) x steps, last
    short = sum(1 for r in records if r.event_count < expected_events or r.status != "succeeded")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{runs} concurrent runs ({steps} tool calls each, 20 ms model latency, one channel "
          f"each): all verdicts in {wall:.1f} s; concurrent ack p99 {pct(acks, 0.99):.1f} ms")
    print(f"  event-loop lag: p50 {pct(lags, 0.5):.2f} ms, p99 {pct(lags, 0.99):.2f} ms, max "
          f"{max(lags):.1f} ms (target p99 < 50 ms)")
    print(f"  lost: {missing_tools} tool messages, {short} runs short of events or not "
          f"succeeded, {len(slack.limits.rejected_by_post_rate)} posts rejected by the "
          f"per-channel limit; peak RSS {rss_mb:.0f} MB (whole process, emulator included)")
    await sim.close()
    await serving.close(grace=1)
    await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--acks", type=int, default=200)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, {platform.system()} {platform.release()}")
    with tempfile.TemporaryDirectory() as tmp:
        async with SlackEmulator() as slack:
            await bench_acks(slack, tmp, args.acks)
            # Unpaced: the trail drains quickly between rounds (the overhead is timed apart).
            await bench_step_overhead(slack, tmp)
        async with SlackEmulator() as slack:
            slack.limit_post_rate(per_second=1.0, burst=3)  # Slack's per-channel post limit
            await bench_concurrent(slack, tmp, args.runs)


if __name__ == "__main__":
    asyncio.run(main())
