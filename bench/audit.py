"""The audit store's speed and size.

1. Durable append rate through AuditSink on a WAL file DB: each emit commits before it
   returns (what the agent loop waits for). Measured with synchronous=NORMAL — the default:
   in WAL mode a commit is in the WAL file before COMMIT returns, so it survives kill -9 of
   the process (tests/test_store.py proves that); only a power cut / kernel crash can lose
   the last commits — and with FULL (an fsync per commit, survives power loss) for
   comparison, and NORMAL with the chain keyed by BUDO_AUDIT_KEY (HMAC-SHA256, as the
   manifests deploy). Each is also given as a ratio to the baseline measured in the same run: raw
   sqlite3, same pragmas, same rows (canonical JSON + SHA-256 or HMAC chain), one transaction per
   event, no asyncio — what budo's store costs on top of SQLite itself.
   Target >= 2,000 events/s with NORMAL.
2. Export of a 10,000-event run: reading the events back plus rendering Markdown, and JSONL.
   Target < 1 s.
3. DB size per 1,000 events, for the mix an investigation produces (tool outputs of a few
   hundred bytes to ~10 KB; bench's own trail of real tool names, not the tests' fixture).

    python bench/audit.py [--events 5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent import (
    Event,
    ModelReply,
    ModelRequest,
    RunStarted,
    ToolFinished,
    ToolRequested,
    VerdictReached,
)
from storage import AuditSink, Store, export_jsonl, export_markdown

TOOLS = ["get_pods", "logs", "describe", "get_events"]
LOG_LINE = "2025-06-15T15:12:00Z ERROR dial tcp: lookup paymentservcie: no such host\n"
OUTPUT_CHARS = (300, 2_000, 10_000)  # a pod table, a describe, a log tail


def workload(run_id: str, count: int, t0: float) -> list[Event]:
    """``count`` events as an investigation emits them: run started, then per turn a model
    request and reply and one tool call with an output of a few hundred bytes to ~10 KB."""
    events: list[Event] = [RunStarted(run_id=run_id, at=t0, question="checkout is failing",
                                      namespace="shop", model="qwen2.5:14b", max_turns=15,
                                      tools=TOOLS, requester="U1")]
    turn = 0
    while len(events) < count:
        turn += 1
        tool, size = TOOLS[turn % len(TOOLS)], OUTPUT_CHARS[turn % len(OUTPUT_CHARS)]
        args = {"namespace": "shop", "pod": f"checkoutservice-7d9c6b5f4-{turn:05d}"}
        output = (LOG_LINE * (size // len(LOG_LINE) + 1))[:size]
        call_id = f"c{turn}"
        events += [
            ModelRequest(run_id=run_id, turn=turn, messages=2 * turn, chars=900 * turn,
                         tools_offered=len(TOOLS)),
            ModelReply(run_id=run_id, turn=turn, duration_s=2.4, prompt_tokens=1200 + turn,
                       completion_tokens=40, tokens_estimated=False,
                       content="Checking the pods next.",
                       tool_calls=[{"id": call_id, "name": tool, "arguments": args}]),
            ToolRequested(run_id=run_id, turn=turn, call_id=call_id, tool=tool, args=args,
                          mutating=False),
            ToolFinished(run_id=run_id, turn=turn, call_id=call_id, tool=tool, ok=True,
                         duration_s=0.1, output=output, sent_chars=size),
        ]
    return [type(e)(**{**vars(e), "at": t0 + i * 0.01}) for i, e in enumerate(events[:count])]


def raw_sqlite_rate(directory: str, events: list[Event], synchronous: str,
                    key: str | None = None) -> float:
    """The baseline: plain sqlite3 on a WAL file with the same pragmas, the same rows and
    chain hash, one IMMEDIATE transaction per event, no event loop and no thread hop."""
    path = os.path.join(directory, f"raw-{synchronous}-{time.monotonic_ns()}.db")
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = WAL", f"synchronous = {synchronous}", "foreign_keys = ON"):
        db.execute(f"PRAGMA {pragma}")
    db.execute("CREATE TABLE events (run_id TEXT NOT NULL, seq INTEGER NOT NULL, "
               "at REAL NOT NULL, kind TEXT NOT NULL, actor TEXT, payload TEXT NOT NULL, "
               "prev_hash TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (run_id, seq)) "
               "WITHOUT ROWID")
    prev = "0" * 64
    start = time.perf_counter()
    for seq, event in enumerate(events, 1):
        payload = json.dumps(event.payload(), sort_keys=True, separators=(",", ":"),
                             ensure_ascii=False)
        body = json.dumps({"run_id": event.run_id, "seq": seq, "at": event.at,
                           "kind": event.kind, "actor": "agent", "prev_hash": prev},
                          sort_keys=True, separators=(",", ":")) + payload
        digest = (hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest() if key
                  else hashlib.sha256(body.encode()).hexdigest())
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (event.run_id, seq, event.at, event.kind, "agent", payload, prev, digest))
        db.execute("COMMIT")
        prev = digest
    elapsed = time.perf_counter() - start
    db.close()
    return len(events) / elapsed


async def append_rate(directory: str, count: int, synchronous: str,
                      key: str | None = None) -> float:
    path = os.path.join(directory, f"append-{synchronous}-{time.monotonic_ns()}.db")
    async with await Store.open(path, synchronous=synchronous, audit_key=key) as store:
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
        # The manifests deploy with BUDO_AUDIT_KEY set: the keyed chain (HMAC-SHA256) is the
        # production path; its baseline computes the same HMAC.
        for mode, key in (("NORMAL", None), ("FULL", None), ("NORMAL", "bench-audit-key")):
            rates, raw = [], []
            for _ in range(repeat):  # interleaved, so both see the same machine load
                rates.append(await append_rate(directory, count, mode, key))
                raw.append(raw_sqlite_rate(directory, workload("r-raw", count, time.time()),
                                           mode, key))
            verdict = ""
            if mode == "NORMAL":
                verdict = "  (target >= 2,000: " + \
                    ("met)" if statistics.median(rates) >= 2000 else "MISSED)")
            keyed = ", keyed (HMAC, as deployed)" if key else ""
            print(f"append via AuditSink, WAL synchronous={mode}{keyed}: median "
                  f"{statistics.median(rates):,.0f} events/s over {repeat}x{count} "
                  f"(min {min(rates):,.0f}, max {max(rates):,.0f}) = "
                  f"{statistics.median(rates) / statistics.median(raw):.2f}x raw sqlite3 "
                  f"({statistics.median(raw):,.0f} events/s){verdict}")

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
              f"(investigation mix; JSONL of the same is {results[0][3] / 1e6:.1f} MB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="events per append run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--export-events", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.repeat, args.export_events))
