"""What every part of the store shares: the connection, one lock, one write path, and reads
whose sqlite errors come out as StoreError.

Writes are datasette style: a plain function over the sqlite3 connection runs inside one
``BEGIN IMMEDIATE … COMMIT`` in a single hop to the connection's thread (not one hop per
statement), and the integrity errors it cares about it translates itself, right where SQLite
raises them, into typed errors (budo/errors.py).
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiosqlite

from budo.errors import StoreError
from storage.db import translated

T = TypeVar("T")
Row = tuple[Any, ...]


def new_id(prefix: str) -> str:
    """Short, human-friendly, hard to guess: r-7f3a2c, a-1b2c3d."""
    return f"{prefix}-{secrets.token_hex(3)}"


def constraint(exc: sqlite3.IntegrityError) -> str:
    """The columns a UNIQUE constraint names ("runs.channel, runs.thread_ts"), else ''.
    SQLite reports which constraint failed only in the message text: this is the one place
    that reads it."""
    prefix = "UNIQUE constraint failed: "
    text = str(exc)
    return text[len(prefix):] if text.startswith(prefix) else ""


def one(db: sqlite3.Connection, sql: str, params: Iterable[Any] = ()) -> Row | None:
    row = db.execute(sql, tuple(params)).fetchone()
    return tuple(row) if row is not None else None


def all_rows(db: sqlite3.Connection, sql: str, params: Iterable[Any] = ()) -> list[Row]:
    return [tuple(r) for r in db.execute(sql, tuple(params)).fetchall()]


class StoreBase:
    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self.path = path
        self._conn = conn
        self._reader = conn  # Store.open adds a read-only connection for a file database
        # One connection is one transaction at a time: coroutines take turns. Other
        # processes are kept out by BEGIN IMMEDIATE + busy_timeout at the SQLite level.
        self._lock = asyncio.Lock()
        # Set when the file's schema/triggers are not what the migrations made: every
        # write is refused with this one line (storage/integrity.py).
        self.refusal: str | None = None

    @property
    def connection(self) -> aiosqlite.Connection:
        """The raw connection, for tests and benchmarks that need a PRAGMA."""
        return self._conn

    async def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(db)`` inside one IMMEDIATE transaction, in one hop to the connection's
        thread: committed when it returns, rolled back (nothing written) when it raises.
        BudoErrors it raises pass through; other sqlite errors become StoreError."""
        if self.refusal:
            raise StoreError(self.refusal)

        def run() -> T:
            db = self._conn._conn  # aiosqlite's sqlite3 connection, used in its own thread
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
                db.execute("COMMIT")
                return result
            except BaseException:
                if db.in_transaction:
                    try:
                        db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # the original error is the one worth reporting
                raise

        async with self._lock:
            with translated(self.path):
                # aiosqlite's own hop to its thread (what its execute() uses), for a function.
                result: T = await self._conn._execute(run)  # type: ignore[no-untyped-call]
                return result

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        if self._reader is not self._conn:  # its own connection: no need to wait for writes
            with translated(self.path):
                yield self._reader
            return
        async with self._lock:
            with translated(self.path):
                yield self._conn

    async def _one(
        self, db: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()
    ) -> Row | None:
        rows = list(await db.execute_fetchall(sql, tuple(params)))
        return tuple(rows[0]) if rows else None

    async def _all(
        self, db: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()
    ) -> list[Row]:
        return [tuple(r) for r in await db.execute_fetchall(sql, tuple(params))]
