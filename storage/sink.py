"""AuditSink: the agent loop's events, committed to the store before the loop moves on."""

from __future__ import annotations

from agent.events import Event, RunCancelledEvent, RunFailed, VerdictReached
from storage.records import StoredEvent
from storage.store import Store


class AuditSink:
    """Implements ``agent.protocols.EventSink``. A terminal event (verdict, failed,
    cancelled) also ends the run — status, turns, tokens, verdict — in the same transaction.
    ``actor`` overrides the per-event default (requester / approver / "agent")."""

    def __init__(self, store: Store, actor: str | None = None) -> None:
        self.store = store
        self.actor = actor
        self.last: StoredEvent | None = None

    async def emit(self, event: Event) -> None:
        finish = None
        if isinstance(event, VerdictReached):
            finish = ("succeeded", event.turns, event.tokens, event.verdict)
        elif isinstance(event, RunFailed):
            finish = ("failed", event.turns, event.tokens, None)
        elif isinstance(event, RunCancelledEvent):
            finish = ("cancelled", event.turns, event.tokens, None)
        self.last = await self.store.append(event, self.actor, finish=finish)
