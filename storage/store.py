"""The audit store: runs and their hash-chained events (approvals live in approvals.py).

Every write is one IMMEDIATE transaction committed before the call returns, so whatever the
bot has shown is already on disk when the next step starts (kill -9 loses nothing shown).
"""

from __future__ import annotations

import json
import sqlite3
import time
from types import TracebackType
from typing import Any

from agent import ApprovalDecided, Event, RunInterrupted, RunStarted
from budo.errors import RunAlreadyActive, RunNotFound, StoreError
from storage.approvals import ApprovalStore
from storage.base import all_rows, constraint, new_id, one
from storage.chain import GENESIS, ChainRow, VerifyResult, canonical_json, verify_chain
from storage.chain import audit_key as audit_key_bytes
from storage.db import connect, connect_reader, translated
from storage.integrity import schema_problems
from storage.records import (
    EVENT_COLUMNS,
    RUN_COLUMNS,
    RUN_STATUSES,
    RunRecord,
    StoredEvent,
    event_from_row,
    run_from_row,
)

FINAL_STATUSES = frozenset(RUN_STATUSES) - {"running"}
RESTART_REASON = "budo restarted while this was in progress"


class Store(ApprovalStore):
    """Open with ``await Store.open(path)``; one per process, shared by every task."""

    recovered: list[str]
    audit_key: bytes | None = None
    tampered: list[str]

    @classmethod
    async def open(
        cls, path: str, *, recover: bool = True, synchronous: str = "NORMAL",
        audit_key: str | None = None,
    ) -> Store:
        """Connect, migrate, and (``recover=True``, the bot's case) mark runs left running
        ``interrupted`` and pending approvals ``expired``, each with an audit event; their
        run ids land in ``store.recovered``. Read-only tools (the CLI) pass ``recover=False``
        so they never interrupt a live bot's runs. ``audit_key`` (BUDO_AUDIT_KEY) keys the
        chain. A file whose schema or triggers differ from the migrations' is refused for
        writing (one line); read-only opens keep it in ``store.tampered``."""
        key = audit_key_bytes(audit_key)
        conn = await connect(path, synchronous=synchronous, key=key)
        store = cls(conn, path)
        store.audit_key = key
        store.recovered = []
        try:
            store.tampered = await schema_problems(conn)
            if store.tampered:
                store.refusal = (f"the audit database {path} was altered outside budo "
                                 f"({'; '.join(store.tampered)}); refusing to write to it — "
                                 "run `budo audit verify` and restore it from a backup")
                if recover:
                    raise StoreError(store.refusal)
            # A file gets a second connection for reads: in WAL mode they see every committed
            # write and never wait for the writer. (":memory:" is one private database.)
            if path != ":memory:" and not path.startswith("file:"):
                store._reader = await connect_reader(path)
            if recover:
                store.recovered = await store._recover()
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        with translated(self.path):
            if self._reader is not self._conn:
                await self._reader.close()
            await self._conn.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- runs -------------------------------------------------------------------------------

    async def start_run(
        self, *, source: str, question: str, channel: str | None = None,
        thread_ts: str | None = None, requester: str | None = None,
        namespace: str | None = None, model: str | None = None,
    ) -> RunRecord:
        """Raises RunAlreadyActive(run_id of the running one) if (channel, thread_ts) has a
        running run — the partial unique index decides, even across processes."""
        if source not in ("slack", "terminal"):
            raise StoreError(f"run source must be slack or terminal, got {source!r}")

        def insert(db: sqlite3.Connection) -> RunRecord:
            for _ in range(5):
                run_id = new_id("r")
                try:
                    db.execute(
                        f"INSERT INTO runs ({RUN_COLUMNS}) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, NULL, 0, 0, NULL, 0, ?)",
                        (run_id, source, channel, thread_ts, requester, question, namespace,
                         model, time.time(), GENESIS),
                    )
                except sqlite3.IntegrityError as exc:
                    if constraint(exc) == "runs.id":
                        continue  # 1 in 16M: pick another id
                    raise _thread_busy(db, exc, channel, thread_ts) from exc
                return _run(db, run_id)
            raise StoreError("could not allocate a run id; try again")

        return await self._transaction(insert)

    async def set_thread(self, run_id: str, channel: str, thread_ts: str) -> None:
        """Attach the Slack thread once the root message is posted (same uniqueness rule)."""

        def update(db: sqlite3.Connection) -> None:
            try:
                cursor = db.execute("UPDATE runs SET channel = ?, thread_ts = ? WHERE id = ?",
                                    (channel, thread_ts, run_id))
            except sqlite3.IntegrityError as exc:
                raise _thread_busy(db, exc, channel, thread_ts) from exc
            if cursor.rowcount == 0:
                raise RunNotFound(run_id)

        await self._transaction(update)

    async def finish_run(
        self, run_id: str, status: str, *, turns: int, tokens: int,
        verdict: dict[str, Any] | None = None,
    ) -> RunRecord:
        _check_final(status)

        def finish(db: sqlite3.Connection) -> RunRecord:
            _finish(db, run_id, status, turns, tokens, verdict, time.time())
            return _run(db, run_id)

        return await self._transaction(finish)

    async def get_run(self, run_id: str) -> RunRecord:
        async with self._read() as db:
            row = await self._one(db, f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise RunNotFound(run_id)
        return run_from_row(row)

    async def list_runs(self, limit: int = 20, channel: str | None = None) -> list[RunRecord]:
        """Newest first."""
        where, params = ("WHERE channel = ?", [channel]) if channel is not None else ("", [])
        async with self._read() as db:
            rows = await self._all(
                db, f"SELECT {RUN_COLUMNS} FROM runs {where} "
                "ORDER BY started_at DESC, rowid DESC LIMIT ?", [*params, max(0, limit)],
            )
        return [run_from_row(r) for r in rows]

    async def latest_run(self, channel: str) -> RunRecord | None:
        runs = await self.list_runs(limit=1, channel=channel)
        return runs[0] if runs else None

    async def running_run(self, channel: str, thread_ts: str) -> RunRecord | None:
        return await self._run_where("channel = ? AND thread_ts = ? AND status = 'running'",
                                     (channel, thread_ts))

    async def run_for_thread(self, channel: str, thread_ts: str) -> RunRecord | None:
        """The latest run in that thread, whatever its status (for follow-ups)."""
        return await self._run_where("channel = ? AND thread_ts = ?", (channel, thread_ts))

    async def _run_where(self, where: str, params: tuple[Any, ...]) -> RunRecord | None:
        async with self._read() as db:
            row = await self._one(
                db, f"SELECT {RUN_COLUMNS} FROM runs WHERE {where} "
                "ORDER BY started_at DESC, rowid DESC LIMIT 1", params,
            )
        return run_from_row(row) if row else None

    # --- events -----------------------------------------------------------------------------

    async def append(self, event: Event, actor: str | None = None) -> StoredEvent:
        """Append an agent event to its run's chain; committed before this returns."""
        who = default_actor(event) if actor is None else actor
        payload = event.payload()
        return await self._transaction(
            lambda db: _append(db, event.run_id, event.at, event.kind, who, payload))

    async def append_final(
        self, event: Event, status: str, *, turns: int, tokens: int,
        verdict: dict[str, Any] | None = None, actor: str | None = None,
    ) -> StoredEvent:
        """Append a run's terminal event and end the run (``status``, turns, tokens, verdict)
        in the same transaction, so a crash cannot split the two. The run ended when its
        terminal event happened."""
        _check_final(status)
        who = default_actor(event) if actor is None else actor
        payload = event.payload()

        def end(db: sqlite3.Connection) -> StoredEvent:
            stored = _append(db, event.run_id, event.at, event.kind, who, payload)
            _finish(db, event.run_id, status, turns, tokens, verdict, event.at)
            return stored

        return await self._transaction(end)

    async def record(
        self, run_id: str, kind: str, payload: dict[str, Any], actor: str | None = None
    ) -> StoredEvent:
        """A non-agent audit event: approval_refused, cancel_requested, follow_up, ..."""
        at = time.time()
        return await self._transaction(lambda db: _append(db, run_id, at, kind, actor, payload))

    async def events(self, run_id: str) -> list[StoredEvent]:
        await self.get_run(run_id)  # RunNotFound for unknown ids
        async with self._read() as db:
            rows = await self._all(
                db, f"SELECT {EVENT_COLUMNS} FROM events WHERE run_id = ? ORDER BY seq",
                (run_id,),
            )
        return [event_from_row(r) for r in rows]

    async def verify(self, run_id: str, expect: str | None = None) -> VerifyResult:
        """Recompute the run's chain from the stored rows; first broken event if any."""
        run = await self.get_run(run_id)
        async with self._read() as db:
            rows = await self._all(
                db, "SELECT seq, at, kind, actor, payload, prev_hash, hash FROM events "
                "WHERE run_id = ? ORDER BY seq", (run_id,),
            )
        return verify_chain(run_id, [ChainRow(*r) for r in rows],
                            head_hash=run.head_hash, event_count=run.event_count,
                            key=self.audit_key, expect=expect)

    # --- restart recovery -------------------------------------------------------------------

    async def _recover(self) -> list[str]:
        def recover(db: sqlite3.Connection) -> list[str]:
            now = time.time()
            pending = all_rows(db, "SELECT id, run_id, tool FROM approvals "
                               "WHERE status = 'pending' ORDER BY requested_at")
            for approval_id, run_id, tool in pending:
                db.execute("UPDATE approvals SET status = 'expired', decided_at = ? "
                           "WHERE id = ?", (now, approval_id))
                _append(db, run_id, now, "expired", "budo",
                        {"approval_id": approval_id, "tool": tool, "reason": RESTART_REASON})
            running = [r[0] for r in all_rows(
                db, "SELECT id FROM runs WHERE status = 'running' ORDER BY started_at")]
            for run_id in running:
                _append(db, run_id, now, "interrupted", "budo", {"reason": RESTART_REASON})
                db.execute("UPDATE runs SET status = 'interrupted', ended_at = ? WHERE id = ?",
                           (now, run_id))
            return running

        return await self._transaction(recover)


# --- the statements, run inside a write transaction (storage.base.StoreBase._transaction) ---


def _run(db: sqlite3.Connection, run_id: str) -> RunRecord:
    row = one(db, f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
    if row is None:
        raise RunNotFound(run_id)
    return run_from_row(row)


def _thread_busy(db: sqlite3.Connection, exc: sqlite3.IntegrityError, channel: str | None,
                 thread_ts: str | None) -> Exception:
    """The one-running-run-per-thread index refused: say which run holds the thread."""
    if constraint(exc) != "runs.channel, runs.thread_ts":
        return exc
    row = one(db, "SELECT id FROM runs WHERE channel = ? AND thread_ts = ? "
              "AND status = 'running'", (channel, thread_ts))
    return RunAlreadyActive(row[0] if row else "unknown")


def _check_final(status: str) -> None:
    if status not in FINAL_STATUSES:
        raise StoreError(f"a run needs a final status {sorted(FINAL_STATUSES)}, not {status!r}")


def _finish(db: sqlite3.Connection, run_id: str, status: str, turns: int, tokens: int,
            verdict: dict[str, Any] | None, ended_at: float) -> None:
    cursor = db.execute(
        "UPDATE runs SET status = ?, ended_at = ?, turns = ?, tokens = ?, verdict = ? "
        "WHERE id = ?",
        (status, ended_at, turns, tokens,
         canonical_json(verdict) if verdict is not None else None, run_id),
    )
    if cursor.rowcount == 0:
        raise RunNotFound(run_id)


def _append(db: sqlite3.Connection, run_id: str, at: float, kind: str, actor: str | None,
            payload: dict[str, Any]) -> StoredEvent:
    # One statement: next seq and prev_hash come from the run's head, the hash from
    # budo_event_hash (storage.chain), and a trigger advances the head.
    payload_text = canonical_json(payload)
    row = db.execute(
        "INSERT INTO events (run_id, seq, at, kind, actor, payload, prev_hash, hash) "
        "SELECT id, event_count + 1, :at, :kind, :actor, :payload, head_hash, "
        "budo_event_hash(id, event_count + 1, :at, :kind, :actor, :payload, head_hash) "
        "FROM runs WHERE id = :run_id RETURNING seq, prev_hash, hash",
        {"run_id": run_id, "at": at, "kind": kind, "actor": actor, "payload": payload_text},
    ).fetchone()
    if row is None:
        raise RunNotFound(run_id)
    seq, prev_hash, digest = row
    return StoredEvent(run_id, seq, at, kind, actor, json.loads(payload_text), prev_hash, digest)


def default_actor(event: Event) -> str:
    """Who did it: the requester starts a run, the approver decides, budo interrupts (as it
    does on restart), the agent does the rest."""
    if isinstance(event, RunStarted) and event.requester:
        return event.requester
    if isinstance(event, ApprovalDecided):
        return event.decided_by or "budo"
    if isinstance(event, RunInterrupted):
        return "budo"
    return "agent"
