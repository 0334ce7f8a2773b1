"""The audit store: migrations, runs, the one-running-run-per-thread rule, restart recovery,
and that every appended event is on disk before append returns (kill -9 loses nothing)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent.events import RunCancelled, RunFailed, RunInterrupted, RunStarted
from budo.errors import RunAlreadyActive, RunNotFound, StoreError
from storage import AuditSink, Store
from storage.db import LATEST_VERSION, MIGRATIONS
from tests.fixtures.store import QUESTION, VERDICT, record_checkout_typo_run


def _tables(path: str) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")
        return {r[0] for r in rows}


async def test_migrations_create_schema_from_empty_and_rerun_is_a_no_op(store_path: str) -> None:
    async with await Store.open(store_path):
        pass
    assert {"runs", "events", "approvals", "schema_migrations",
            "runs_one_running_per_thread"} <= _tables(store_path)
    async with await Store.open(store_path) as store:
        run = await store.start_run(source="terminal", question="q")
    async with await Store.open(store_path) as store:  # third open: data intact
        assert (await store.get_run(run.id)).question == "q"
    with sqlite3.connect(store_path) as conn:
        versions = conn.execute("SELECT version FROM schema_migrations").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert versions == [(v,) for v, _, _ in MIGRATIONS] and versions[-1] == (LATEST_VERSION,)
    assert mode == "wal"


async def test_a_database_from_a_newer_budo_is_refused(store_path: str) -> None:
    async with await Store.open(store_path):
        pass
    with sqlite3.connect(store_path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 0)")
    with pytest.raises(StoreError, match="newer than this budo"):
        await Store.open(store_path)


def test_someone_elses_sqlite_file_is_refused_untouched(store_path: str) -> None:
    Path(store_path).parent.mkdir(parents=True)
    with sqlite3.connect(store_path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    before = Path(store_path).read_bytes()
    with pytest.raises(StoreError, match=r"not a budo audit database .*invoices"):
        asyncio.run(Store.open(store_path))
    assert Path(store_path).read_bytes() == before


async def test_start_run_returns_a_short_id_and_a_running_record(store: Store) -> None:
    run = await store.start_run(source="slack", question=QUESTION, channel="C1",
                                thread_ts="1.1", requester="U1", namespace="shop", model="m")
    assert run.id.startswith("r-") and len(run.id) == 8
    assert (run.status, run.turns, run.tokens, run.verdict, run.ended_at) == \
        ("running", 0, 0, None, None)
    assert await store.running_run("C1", "1.1") == run
    with pytest.raises(StoreError, match="slack or terminal"):
        await store.start_run(source="email", question="q")


async def test_second_run_in_a_thread_is_refused_with_the_running_id(store: Store) -> None:
    first = await store.start_run(source="slack", question="a", channel="C1", thread_ts="1.1")
    with pytest.raises(RunAlreadyActive) as caught:
        await store.start_run(source="slack", question="b", channel="C1", thread_ts="1.1")
    assert caught.value.run_id == first.id
    # Another thread, and terminal runs (no channel), never conflict.
    await store.start_run(source="slack", question="c", channel="C1", thread_ts="2.2")
    await store.start_run(source="terminal", question="d")
    await store.start_run(source="terminal", question="e")
    # Once it finishes, the thread is free again.
    await store.finish_run(first.id, "succeeded", turns=1, tokens=10)
    await store.start_run(source="slack", question="f", channel="C1", thread_ts="1.1")


async def test_concurrent_starts_in_one_thread_across_connections_one_wins(
    store_path: str,
) -> None:
    # Four processes' worth of connections: the partial unique index decides, not Python.
    stores = [await Store.open(store_path) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(s.start_run(source="slack", question=f"q{i}", channel="C9", thread_ts="9.9")
              for i, s in enumerate(stores * 5)),
            return_exceptions=True,
        )
    finally:
        for s in stores:
            await s.close()
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1 and len(losers) == 19
    assert all(isinstance(e, RunAlreadyActive) and e.run_id == winners[0].id for e in losers)


async def test_set_thread_respects_the_unique_index(store: Store) -> None:
    busy = await store.start_run(source="slack", question="a", channel="C1", thread_ts="1.1")
    late = await store.start_run(source="slack", question="b")  # root message not posted yet
    with pytest.raises(RunAlreadyActive) as caught:
        await store.set_thread(late.id, "C1", "1.1")
    assert caught.value.run_id == busy.id
    await store.set_thread(late.id, "C1", "3.3")
    assert (await store.get_run(late.id)).thread_ts == "3.3"
    with pytest.raises(RunNotFound):
        await store.set_thread("r-000000", "C1", "4.4")


async def test_run_queries_newest_first(store: Store) -> None:
    a = await store.start_run(source="slack", question="a", channel="C1", thread_ts="1")
    await store.finish_run(a.id, "failed", turns=1, tokens=5)
    b = await store.start_run(source="slack", question="b", channel="C1", thread_ts="1")
    c = await store.start_run(source="slack", question="c", channel="C2", thread_ts="2")
    assert [r.id for r in await store.list_runs()] == [c.id, b.id, a.id]
    assert [r.id for r in await store.list_runs(limit=2)] == [c.id, b.id]
    assert [r.id for r in await store.list_runs(channel="C1")] == [b.id, a.id]
    assert (await store.latest_run("C1")).id == b.id  # type: ignore[union-attr]
    assert await store.latest_run("C3") is None
    assert (await store.run_for_thread("C1", "1")).id == b.id  # type: ignore[union-attr]
    assert (await store.running_run("C1", "1")).id == b.id  # type: ignore[union-attr]
    assert await store.running_run("C2", "nope") is None
    with pytest.raises(RunNotFound, match="r-ffffff"):
        await store.get_run("r-ffffff")
    with pytest.raises(StoreError, match="final status"):
        await store.finish_run(b.id, "running", turns=0, tokens=0)


async def test_sink_records_the_trail_and_finishes_the_run(store: Store) -> None:
    run = await record_checkout_typo_run(store)
    assert (run.status, run.turns, run.tokens, run.verdict) == ("succeeded", 5, 11_303, VERDICT)
    assert run.headline.startswith("Revision 14 of deployment checkoutservice")
    events = await store.events(run.id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].kind == "run_started" and events[0].actor == "U0ONCALL"
    assert events[-1].kind == "verdict"
    assert run.ended_at == events[-1].at  # the run ended when its verdict was reached
    decided = next(e for e in events if e.kind == "approval_decided")
    assert decided.actor == "U0ONCALL" and decided.payload["approved"] is True


@pytest.mark.parametrize(("event_type", "status"), [(RunFailed, "failed"),
                                                     (RunCancelled, "cancelled")])
async def test_sink_ends_failed_and_cancelled_runs(store: Store, event_type, status) -> None:
    run = await store.start_run(source="terminal", question="q")
    extra = {"error_type": "ModelUnreachable"} if event_type is RunFailed else {}
    await AuditSink(store, actor="cli").emit(
        event_type(run_id=run.id, reason="stopped", turns=2, tokens=99, **extra))
    done = await store.get_run(run.id)
    assert (done.status, done.turns, done.tokens, done.verdict) == (status, 2, 99, None)
    assert (await store.events(run.id))[0].actor == "cli"


async def test_sink_ends_an_interrupted_run_as_budo(store: Store) -> None:
    run = await store.start_run(source="slack", question="q", channel="C1", thread_ts="1.0")
    await AuditSink(store).emit(RunInterrupted(run_id=run.id, reason="shutdown", turns=3,
                                               tokens=7))
    done = await store.get_run(run.id)
    assert (done.status, done.turns, done.tokens) == ("interrupted", 3, 7)
    (event,) = await store.events(run.id)
    assert (event.kind, event.actor, event.payload["reason"]) == ("interrupted", "budo",
                                                                   "shutdown")
    assert done.ended_at == event.at


async def test_events_for_unknown_runs_are_refused(store: Store) -> None:
    with pytest.raises(RunNotFound):
        await store.append(RunStarted(run_id="r-nope00", question="q", namespace=None,
                                      model="m", max_turns=1, tools=[]))
    with pytest.raises(RunNotFound):
        await store.record("r-nope00", "follow_up", {"text": "hi"})
    with pytest.raises(RunNotFound):
        await store.events("r-nope00")


async def test_restart_marks_running_runs_interrupted_and_expires_approvals(
    store_path: str,
) -> None:
    async with await Store.open(store_path) as store:
        live = await store.start_run(source="slack", question="q", channel="C1", thread_ts="1")
        done = await store.start_run(source="terminal", question="q2")
        await store.finish_run(done.id, "succeeded", turns=1, tokens=1)
        approval = await store.create_approval(live.id, "delete_pod", {"name": "p"}, ttl_s=600)
        assert store.recovered == []
    async with await Store.open(store_path) as store:
        assert store.recovered == [live.id]
        assert (await store.get_run(live.id)).status == "interrupted"
        assert (await store.get_run(done.id)).status == "succeeded"
        assert (await store.get_approval(approval.id)).status == "expired"
        kinds = [e.kind for e in await store.events(live.id)]
        assert kinds == ["expired", "interrupted"]
        assert (await store.verify(live.id)).ok
        # The thread is free for a new investigation.
        await store.start_run(source="slack", question="again", channel="C1", thread_ts="1")
    # A read-only opener (the CLI) must not interrupt a live bot's runs.
    async with await Store.open(store_path, recover=False) as store:
        assert store.recovered == []
        running = await store.running_run("C1", "1")
        assert running is not None and running.status == "running"


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KILLER = textwrap.dedent("""
    import asyncio, os, signal, sys
    from agent.events import ModelRequest
    from storage import AuditSink, Store

    async def main():
        store = await Store.open(sys.argv[1])
        run = await store.start_run(source="terminal", question="crash test")
        sink = AuditSink(store)
        for turn in range(1, 51):
            await sink.emit(ModelRequest(run_id=run.id, turn=turn, messages=1, chars=10,
                                         tools_offered=1))
            print(run.id, turn, flush=True)  # "shown" only after emit returned
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
""")


@pytest.mark.slow  # a subprocess
async def test_kill_minus_nine_loses_nothing_already_shown(store_path: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLER, store_path, stdout=subprocess.PIPE,
        cwd=REPO,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == -9
    shown = out.decode().split()
    run_id, last_turn = shown[-2], int(shown[-1])
    async with await Store.open(store_path) as store:
        events = await store.events(run_id)
        assert [e.payload["turn"] for e in events[:last_turn]] == list(range(1, last_turn + 1))
        assert store.recovered == [run_id]
        assert (await store.verify(run_id)).ok


async def test_a_file_store_reads_on_its_own_read_only_connection(store_path: str) -> None:
    async with await Store.open(store_path) as store:
        assert store._reader is not store.connection
        run = await store.start_run(source="slack", question="q", channel="C1", thread_ts="1")
        await store.record(run.id, "follow_up", {"text": "and?"})
        # Every committed write is visible to the reader at once.
        assert (await store.get_run(run.id)).event_count == 1
        assert [e.kind for e in await store.events(run.id)] == ["follow_up"]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await store._reader.execute("DELETE FROM runs")
