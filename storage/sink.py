"""AuditSink: the agent loop's events, committed to the store before the loop moves on.

It is also the one place that decides a run's final status: each terminal event the loop
emits maps to one status, written with the event in one transaction. (Restart recovery, in
the store, ends the runs whose process died before any terminal event.)
"""

from __future__ import annotations

from agent import Event, RunCancelled, RunFailed, RunInterrupted, VerdictReached
from storage.records import RunStatus, StoredEvent
from storage.store import Store

FINAL_STATUS: dict[type[Event], RunStatus] = {
    VerdictReached: "succeeded",
    RunFailed: "failed",
    RunCancelled: "cancelled",
    RunInterrupted: "interrupted",
}


class AuditSink:
    """Implements ``agent.protocols.EventSink``. ``actor`` overrides the per-event default
    (requester / approver / "agent")."""

    def __init__(self, store: Store, actor: str | None = None) -> None:
        self.store = store
        self.actor = actor
        self.last: StoredEvent | None = None

    async def emit(self, event: Event) -> None:
        status = FINAL_STATUS.get(type(event))
        if status is None:
            self.last = await self.store.append(event, self.actor)
            return
        assert isinstance(event, VerdictReached | RunFailed | RunCancelled | RunInterrupted)
        self.last = await self.store.append_final(
            event, status, turns=event.turns, tokens=event.tokens,
            verdict=event.verdict if isinstance(event, VerdictReached) else None,
            actor=self.actor)
