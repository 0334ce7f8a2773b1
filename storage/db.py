"""The SQLite connection: pragmas, numbered migrations, and sqlite error translation.

One long-lived aiosqlite connection per process, in WAL mode with foreign keys on. Migrations
are numbered, recorded in ``schema_migrations`` and applied on every open; each runs in its
own transaction, so a crash mid-migration leaves the previous version intact.

Rules that matter live in the schema, not in Python: one running run per Slack thread is a
partial unique index, statuses are CHECK constraints, events cannot outlive their run.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiosqlite

from budo.errors import StoreError
from storage.chain import sql_event_hash
from storage.migrations_security import MIGRATIONS as SECURITY_MIGRATIONS

# (version, name, statements). Never edit a released entry: add a new one.
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "runs, events, approvals", [
        """CREATE TABLE runs (
            id          TEXT PRIMARY KEY,
            source      TEXT NOT NULL CHECK (source IN ('slack', 'terminal')),
            channel     TEXT,
            thread_ts   TEXT,
            requester   TEXT,
            question    TEXT NOT NULL,
            namespace   TEXT,
            model       TEXT,
            status      TEXT NOT NULL DEFAULT 'running' CHECK (status IN
                        ('running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
            started_at  REAL NOT NULL,
            ended_at    REAL,
            turns       INTEGER NOT NULL DEFAULT 0,
            tokens      INTEGER NOT NULL DEFAULT 0,
            verdict     TEXT,
            event_count INTEGER NOT NULL DEFAULT 0,
            head_hash   TEXT NOT NULL
        )""",
        # At most one running investigation per Slack thread. NULL channel/thread (terminal
        # runs, or a Slack run before its root message is posted) never conflicts.
        """CREATE UNIQUE INDEX runs_one_running_per_thread ON runs (channel, thread_ts)
           WHERE status = 'running'""",
        "CREATE INDEX runs_started ON runs (started_at)",
        "CREATE INDEX runs_thread ON runs (channel, thread_ts, started_at)",
        """CREATE TABLE events (
            run_id    TEXT NOT NULL REFERENCES runs (id),
            seq       INTEGER NOT NULL,
            at        REAL NOT NULL,
            kind      TEXT NOT NULL,
            actor     TEXT,
            payload   TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash      TEXT NOT NULL,
            PRIMARY KEY (run_id, seq)
        ) WITHOUT ROWID""",
        """CREATE TABLE approvals (
            id           TEXT PRIMARY KEY,
            run_id       TEXT NOT NULL REFERENCES runs (id),
            tool         TEXT NOT NULL,
            args         TEXT NOT NULL,
            fingerprint  TEXT NOT NULL,
            requested_at REAL NOT NULL,
            expires_at   REAL NOT NULL,
            status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                         ('pending', 'approved', 'denied', 'expired')),
            decided_by   TEXT,
            decided_at   REAL,
            message_ts   TEXT
        )""",
        # The run's chain head follows every insert, in the inserting statement itself.
        """CREATE TRIGGER events_advance_head AFTER INSERT ON events BEGIN
            UPDATE runs SET event_count = NEW.seq, head_hash = NEW.hash WHERE id = NEW.run_id;
        END""",
        # The trail is append-only. (Someone with the file can drop these; the hash chain
        # is what catches that.)
        """CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN
            SELECT RAISE(ABORT, 'audit events are append-only');
        END""",
        """CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN
            SELECT RAISE(ABORT, 'audit events are append-only');
        END""",
        "CREATE INDEX approvals_pending ON approvals (status) WHERE status = 'pending'",
        "CREATE INDEX approvals_run ON approvals (run_id)",
    ]),
    *SECURITY_MIGRATIONS,
]
LATEST_VERSION = MIGRATIONS[-1][0]


def describe_sqlite_error(exc: sqlite3.Error, path: str) -> str:
    """One line a human can act on, from a sqlite3 error and the database path."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return f"disk full: cannot write to the audit database {path} (nothing was written)"
    if name.startswith("SQLITE_NOTADB") or "not a database" in text:
        return f"{path} is not a SQLite database (wrong file or corrupt); set BUDO_DB or --db"
    if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
        return f"the audit database {path} is corrupt ({text}); restore it from a backup"
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return f"the audit database {path} is read-only (check file and directory permissions)"
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        where = Path(path).parent
        return (f"cannot open the audit database {path}: directory {where} missing or not "
                "writable")
    if name.startswith("SQLITE_BUSY") or "locked" in text:
        return f"the audit database {path} is locked by another process; try again"
    if name.startswith("SQLITE_IOERR") or "disk I/O" in text:
        return f"I/O error on the audit database {path}: {text}"
    return f"audit database {path}: {text}"


@contextmanager
def translated(path: str) -> Iterator[None]:
    """Turn sqlite3 errors into StoreError (cause kept for the log)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(describe_sqlite_error(exc, path)) from exc


async def connect(path: str, *, synchronous: str = "NORMAL",
                  key: bytes | None = None) -> aiosqlite.Connection:
    """Open ``path`` (":memory:" allowed), set pragmas and apply pending migrations.

    synchronous=NORMAL in WAL mode: a commit survives the process being killed (it is in the
    WAL file before COMMIT returns), though not necessarily a power cut; FULL adds an fsync
    per commit for that. Raises StoreError with a one-line reason.
    """
    if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise StoreError(f"unknown synchronous mode {synchronous!r}")
    path = prepare_path(path)
    conn: aiosqlite.Connection | None = None
    try:
        with translated(path):
            # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves.
            conn = await aiosqlite.connect(
                path, isolation_level=None, uri=path.startswith("file:")
            )
            await conn.execute("PRAGMA busy_timeout = 5000")
            # The first real read ("file is not a database" surfaces here), before we
            # write anything into a file that may belong to someone else.
            await refuse_foreign_database(conn, path)
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            await conn.execute("PRAGMA foreign_keys = ON")
            # Appends hash inside the INSERT (one statement, one thread hop, atomic).
            # ``key`` (BUDO_AUDIT_KEY) makes every link an HMAC (storage/chain.py).
            await conn.create_function("budo_event_hash", 7,
                                       functools.partial(sql_event_hash, key=key),
                                       deterministic=True)
            await migrate(conn, path)
    except BaseException:
        if conn is not None:
            await conn.close()
        raise
    return conn


async def connect_reader(path: str) -> aiosqlite.Connection:
    """A second connection to ``path`` (already opened and migrated by ``connect``) for
    reads only: query_only, so a bug cannot write through it."""
    conn: aiosqlite.Connection | None = None
    try:
        with translated(path):
            conn = await aiosqlite.connect(path, isolation_level=None)
            await conn.execute("PRAGMA busy_timeout = 5000")
            await conn.execute("PRAGMA query_only = ON")
    except BaseException:
        if conn is not None:
            await conn.close()
        raise
    return conn


def prepare_path(path: str) -> str:
    """Expand ~ and create the parent directory (a local stat/mkdir: not worth a thread)."""
    if path == ":memory:" or path.startswith("file:"):
        return path
    target = Path(path).expanduser()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the directory for the audit database {path}: {exc.strerror}"
        ) from exc
    if target.is_dir():
        raise StoreError(f"{path} is a directory, not an audit database")
    return str(target)


async def refuse_foreign_database(conn: aiosqlite.Connection, path: str) -> None:
    rows = await conn.execute_fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    tables = {r[0] for r in rows}
    if tables and "schema_migrations" not in tables:
        raise StoreError(
            f"{path} is a SQLite database but not a budo audit database (it has tables "
            f"{', '.join(sorted(tables)[:3])}); set BUDO_DB or --db"
        )


async def applied_versions(conn: aiosqlite.Connection) -> set[int]:
    rows = await conn.execute_fetchall("SELECT version FROM schema_migrations")
    return {int(r[0]) for r in rows}


async def migrate(conn: aiosqlite.Connection, path: str) -> list[int]:
    """Apply missing migrations, each in its own IMMEDIATE transaction (so two processes
    opening the same new file do not both apply one). Returns the versions applied now."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    done = await applied_versions(conn)
    if done and max(done) > LATEST_VERSION:
        raise StoreError(
            f"the audit database {path} has schema version {max(done)}, newer than this budo "
            f"understands ({LATEST_VERSION}); upgrade budo"
        )
    applied: list[int] = []
    for version, name, statements in MIGRATIONS:
        if version in done:
            continue
        await conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-check under the write lock: another process may have just applied it.
            if version in await applied_versions(conn):
                await conn.execute("ROLLBACK")
                continue
            for statement in statements:
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, time.time()),
            )
            await conn.execute("COMMIT")
        except BaseException:
            await rollback_quietly(conn)
            raise
        applied.append(version)
    return applied


async def rollback_quietly(conn: aiosqlite.Connection) -> None:
    """Roll back if a transaction is open; the original error is the one worth reporting."""
    try:
        if conn.in_transaction:
            await conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass
