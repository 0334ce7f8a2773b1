"""The audit store's speed and size.

1. Durable append rate through AuditSink on a WAL file DB: each emit commits before it
   returns (what the agent loop waits for). Measured with synchronous=NORMAL — the default:
   in WAL mode a commit is in the WAL file before COMMIT returns, so it survives kill -9 of
   the process (tests/test_store.py proves that); only a power cut / kernel crash can lose
   the last commits — and with FULL (an fsync per commit, survives power loss) for
   comparison. Target >= 2,000 events/s with NORMAL.
2. Export of a 10,000-event run: reading the events back plus rendering Markdown, and JSONL.
   Target < 1 s.
3. DB size per 1,000 events, for the mix the canonical checkout-typo run produces (tool
   outputs of a few hundred bytes to ~10 KB).

    python bench/audit.py [--events 5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.events import Event, VerdictReached
from storage import AuditSink, Store, export_jsonl, export_markdown
from tests.fixtures.store import checkout_typo_events


def workload(run_id: str, count: int, t0: float) -> list[Event]:
    """``count`` events cycling through the canonical trail (without its verdict)."""
    trail = [e for e in checkout_typo_events(run_id, t0) if not isinstance(e, VerdictReached)]
    events: list[Event] = []
    while len(events) < count:
        for event in trail[: count - len(events)]:
            events.append(type(event)(**{**vars(event), "at": t0 + len(events) * 0.01}))
    return events


async def append_rate(directory: str, count: int, synchronous: str) -> float:
    path = os.path.join(directory, f"append-{synchronous}-{time.monotonic_ns()}.db")
    async with await Store.open(path, synchronous=synchronous) as store:
        run = await store.start_run(source="terminal", question="bench")
        events = workload(run.id, count, run.started_at)
        sink = AuditSink(store)
        start = time.perf_counter()
        for event in events:
            await sink.emit(event)
        elapsed = time.perf_counter() - start
        assert (await store.verify(run.id)).ok
    return count / elapsed


async def build_run(path: str, count: int) -> str:
    async with await Store.open(path) as store:
        run = await store.start_run(source="slack", question="bench export",
                                    channel="C1", thread_ts="1.1", requester="U1")
        sink = AuditSink(store)
        for event in workload(run.id, count - 1, run.started_at):
            await sink.emit(event)
        await sink.emit(VerdictReached(run_id=run.id, at=run.started_at + count * 0.01,
                                       verdict={"root_cause": "typo", "evidence": ["x"],
                                                "fix": "fix it", "confidence": "high"},
                                       turns=count // 10, tokens=count * 100,
                                       truncated=False))
        await store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return run.id


async def export_times(path: str, run_id: str) -> tuple[float, float, int, int]:
    async with await Store.open(path, recover=False) as store:
        start = time.perf_counter()
        run = await store.get_run(run_id)
        events = await store.events(run_id)
        md = export_markdown(run, events)
        md_s = time.perf_counter() - start
        start = time.perf_counter()
        events = await store.events(run_id)
        jsonl = export_jsonl(events)
        jsonl_s = time.perf_counter() - start
    return md_s, jsonl_s, len(md), len(jsonl)


async def main(count: int, repeat: int, export_events: int) -> None:
    cores = os.cpu_count()
    print(f"machine: {platform.machine()} {cores} cores, Python {platform.python_version()}, "
          f"SQLite {__import__('sqlite3').sqlite_version}, {platform.system()}")
    with tempfile.TemporaryDirectory(prefix="budo-bench-") as directory:
        for mode in ("NORMAL", "FULL"):
            rates = [await append_rate(directory, count, mode) for _ in range(repeat)]
            verdict = ""
            if mode == "NORMAL":
                verdict = "  (target >= 2,000: " + \
                    ("met)" if statistics.median(rates) >= 2000 else "MISSED)")
            print(f"append via AuditSink, WAL synchronous={mode}: median "
                  f"{statistics.median(rates):,.0f} events/s over {repeat}x{count} "
                  f"(min {min(rates):,.0f}, max {max(rates):,.0f}){verdict}")

        path = os.path.join(directory, "export.db")
        run_id = await build_run(path, export_events)
        results = [await export_times(path, run_id) for _ in range(repeat)]
        md_s = statistics.median(r[0] for r in results)
        jsonl_s = statistics.median(r[1] for r in results)
        target = "met" if max(md_s, jsonl_s) < 1 else "MISSED"
        print(f"export of a {export_events:,}-event run (read + render), median of {repeat}: "
              f"markdown {md_s:.3f} s ({results[0][2] / 1e6:.1f} MB), "
              f"jsonl {jsonl_s:.3f} s ({results[0][3] / 1e6:.1f} MB)  "
              f"(target < 1 s: {target})")
        size = Path(path).stat().st_size  # noqa: ASYNC240 (one stat, after timing)
        print(f"DB size: {size / 1e6:.1f} MB for {export_events:,} events = "
              f"{size / export_events * 1000 / 1e6:.2f} MB per 1,000 events "
              f"(canonical mix; JSONL of the same is {results[0][3] / 1e6:.1f} MB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="events per append run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--export-events", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.repeat, args.export_events))
