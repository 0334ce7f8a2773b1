"""Slack deliveries already handled (bot/inbound.py): one row per event_id, trigger_id or
signed-body hash, so a retry or a replay is dropped even after a restart. Rows older than a
day are pruned on insert: Slack retries within the hour, signed requests expire in 5 min."""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage.base import StoreBase

KEEP_S = 86_400.0


async def first_delivery(store: StoreBase, key: str, now: float | None = None) -> bool:
    """True the first time ``key`` is seen (recorded, committed), False ever after."""
    at = time.time() if now is None else now

    def work(db: sqlite3.Connection) -> bool:
        cursor = db.execute("INSERT OR IGNORE INTO deliveries (key, at) VALUES (?, ?)",
                            (key, at))
        if cursor.rowcount != 1:
            return False
        db.execute("DELETE FROM deliveries WHERE at < ?", (at - KEEP_S,))
        return True

    return await store._transaction(work)
