"""The plain records the store hands out, built from rows. No I/O here."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Literal

RunStatus = Literal["running", "succeeded", "failed", "cancelled", "interrupted"]
RUN_STATUSES = ("running", "succeeded", "failed", "cancelled", "interrupted")
ApprovalStatus = Literal["pending", "approved", "denied", "expired"]


@dataclass(frozen=True)
class RunRecord:
    id: str
    source: str
    channel: str | None
    thread_ts: str | None
    requester: str | None
    question: str
    namespace: str | None
    model: str | None
    status: str
    started_at: float
    ended_at: float | None
    turns: int
    tokens: int
    verdict: dict[str, Any] | None
    event_count: int = 0
    head_hash: str = ""

    @property
    def headline(self) -> str:
        """The verdict's first line (root cause), or '' when there is none."""
        if not self.verdict:
            return ""
        text = str(self.verdict.get("root_cause") or self.verdict.get("summary") or "")
        first = text.strip().splitlines()[0] if text.strip() else ""
        return first[:200]

    @property
    def duration_s(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


RUN_COLUMNS = ("id, source, channel, thread_ts, requester, question, namespace, model, status, "
               "started_at, ended_at, turns, tokens, verdict, event_count, head_hash")


def run_from_row(row: sqlite3.Row | tuple[Any, ...]) -> RunRecord:
    values = list(row)
    values[13] = json.loads(values[13]) if values[13] else None
    return RunRecord(*values)


@dataclass(frozen=True)
class StoredEvent:
    run_id: str
    seq: int
    at: float
    kind: str
    actor: str | None
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "seq": self.seq, "at": self.at, "kind": self.kind,
            "actor": self.actor, "payload": self.payload, "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


EVENT_COLUMNS = "run_id, seq, at, kind, actor, payload, prev_hash, hash"


def event_from_row(row: tuple[Any, ...]) -> StoredEvent:
    run_id, seq, at, kind, actor, payload, prev_hash, digest = row
    return StoredEvent(run_id, seq, at, kind, actor, json.loads(payload), prev_hash, digest)


@dataclass(frozen=True)
class ApprovalRecord:
    id: str
    run_id: str
    tool: str
    args: dict[str, Any]
    fingerprint: str
    requested_at: float
    expires_at: float
    status: str
    decided_by: str | None
    decided_at: float | None
    message_ts: str | None


APPROVAL_COLUMNS = ("id, run_id, tool, args, fingerprint, requested_at, expires_at, status, "
                    "decided_by, decided_at, message_ts")


def approval_from_row(row: tuple[Any, ...]) -> ApprovalRecord:
    values = list(row)
    values[3] = json.loads(values[3])
    return ApprovalRecord(*values)


@dataclass(frozen=True)
class DecideResult:
    """``won`` is True for exactly one caller per approval. ``approval`` is its state now:
    who decided and when, or status "expired" when the click came too late."""

    won: bool
    approval: ApprovalRecord
