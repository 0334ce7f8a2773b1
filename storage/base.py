"""What every part of the store shares: the connection, one lock, and transactions whose
sqlite errors come out as StoreError."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite

from budo.errors import StoreError
from storage.db import describe_sqlite_error, rollback_quietly


def new_id(prefix: str) -> str:
    """Short, human-friendly, hard to guess: r-7f3a2c, a-1b2c3d."""
    return f"{prefix}-{secrets.token_hex(3)}"


class StoreBase:
    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self.path = path
        self._conn = conn
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

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One IMMEDIATE transaction: committed when the block ends, rolled back (nothing
        written) on any error. sqlite errors become StoreError."""
        if self.refusal:
            raise StoreError(self.refusal)
        async with self._lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                await self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                await rollback_quietly(self._conn)
                raise StoreError(describe_sqlite_error(exc, self.path)) from exc
            except BaseException:
                await rollback_quietly(self._conn)
                raise

    @asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[aiosqlite.Connection]:
        """For a single statement, atomic on its own: no BEGIN/COMMIT round trips. Still
        under the lock, so it never lands inside another task's open transaction."""
        if self.refusal:
            raise StoreError(self.refusal)
        async with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                await rollback_quietly(self._conn)
                raise StoreError(describe_sqlite_error(exc, self.path)) from exc

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise StoreError(describe_sqlite_error(exc, self.path)) from exc

    async def _one(
        self, db: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()
    ) -> tuple[Any, ...] | None:
        rows = await db.execute_fetchall(sql, tuple(params))
        return tuple(rows[0]) if rows else None

    async def _all(
        self, db: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()
    ) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in await db.execute_fetchall(sql, tuple(params))]
