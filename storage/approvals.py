"""Approvals: created pending, decided exactly once — the database decides who won.

``decide_approval`` is one conditional UPDATE (``WHERE status='pending' AND expires_at >
now``): under concurrent clicks, from one process or several, exactly one row update
happens; everyone else reads back who decided and when. Unknown ids raise
``ApprovalNotFound`` (a StoreError).
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from budo.errors import ApprovalNotFound, RunNotFound, StoreError
from storage.base import StoreBase, constraint, new_id, one
from storage.chain import canonical_json, fingerprint
from storage.records import (
    APPROVAL_COLUMNS,
    ApprovalRecord,
    DecideResult,
    approval_from_row,
)


class ApprovalStore(StoreBase):
    async def create_approval(
        self, run_id: str, tool: str, args: dict[str, Any], ttl_s: float
    ) -> ApprovalRecord:
        if ttl_s <= 0:
            raise StoreError(f"approval ttl must be greater than 0 seconds, got {ttl_s}")
        args = json.loads(canonical_json(args))
        now = time.time()

        def insert(db: sqlite3.Connection) -> ApprovalRecord:
            if one(db, "SELECT 1 FROM runs WHERE id = ?", (run_id,)) is None:
                raise RunNotFound(run_id)
            for _ in range(5):
                approval_id = new_id("a")
                try:
                    db.execute(
                        f"INSERT INTO approvals ({APPROVAL_COLUMNS}) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', NULL, NULL, NULL)",
                        (approval_id, run_id, tool, canonical_json(args),
                         fingerprint(tool, args), now, now + ttl_s),
                    )
                except sqlite3.IntegrityError as exc:
                    if constraint(exc) == "approvals.id":
                        continue  # 1 in 16M: pick another id
                    raise
                return _approval(db, approval_id)
            raise StoreError("could not allocate an approval id; try again")

        return await self._transaction(insert)

    async def set_approval_message(self, approval_id: str, message_ts: str) -> None:
        def update(db: sqlite3.Connection) -> None:
            cursor = db.execute("UPDATE approvals SET message_ts = ? WHERE id = ?",
                                (message_ts, approval_id))
            if cursor.rowcount == 0:
                raise ApprovalNotFound(approval_id)

        await self._transaction(update)

    async def decide_approval(self, approval_id: str, approved: bool, user: str) -> DecideResult:
        """Exactly one caller per approval gets ``won=True``. A click after ``expires_at``
        loses and finds the approval ``expired``."""
        now = time.time()

        def decide(db: sqlite3.Connection) -> DecideResult:
            cursor = db.execute(
                "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ? "
                "WHERE id = ? AND status = 'pending' AND expires_at > ?",
                ("approved" if approved else "denied", user, now, approval_id, now),
            )
            won = cursor.rowcount == 1
            if not won:
                # Too late: record the expiry now so every later reader agrees.
                db.execute(
                    "UPDATE approvals SET status = 'expired', decided_at = ? "
                    "WHERE id = ? AND status = 'pending' AND expires_at <= ?",
                    (now, approval_id, now),
                )
            return DecideResult(won=won, approval=_approval(db, approval_id))

        return await self._transaction(decide)

    async def expire_approval(self, approval_id: str) -> ApprovalRecord:
        """The timeout path: pending -> expired, once. Returns the state now (which may be
        approved/denied if a click won the race)."""
        now = time.time()

        def expire(db: sqlite3.Connection) -> ApprovalRecord:
            db.execute("UPDATE approvals SET status = 'expired', decided_at = ? "
                       "WHERE id = ? AND status = 'pending'", (now, approval_id))
            return _approval(db, approval_id)

        return await self._transaction(expire)

    async def get_approval(self, approval_id: str) -> ApprovalRecord:
        async with self._read() as db:
            row = await self._one(
                db, f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?", (approval_id,)
            )
        if row is None:
            raise ApprovalNotFound(approval_id)
        return approval_from_row(row)

    async def approvals(self, run_id: str) -> list[ApprovalRecord]:
        async with self._read() as db:
            rows = await self._all(
                db, f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE run_id = ? "
                "ORDER BY requested_at", (run_id,),
            )
        return [approval_from_row(r) for r in rows]


def _approval(db: sqlite3.Connection, approval_id: str) -> ApprovalRecord:
    row = one(db, f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?", (approval_id,))
    if row is None:
        raise ApprovalNotFound(approval_id)
    return approval_from_row(row)
