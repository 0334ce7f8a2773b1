"""Follow-ups: an @mention in a finished run's thread continues that run's conversation.

The last ``KEPT`` conversations stay in memory; an older one (or any after a restart) is
rebuilt from the stored question and verdict, which is what the model needs to go on.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from agent import past_conversation
from storage import RunRecord

KEPT = 200  # follow-up contexts kept in memory (older ones are rebuilt from the store)


class FollowUps:
    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._conversations: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    def remember(self, run_id: str, messages: list[dict[str, Any]]) -> None:
        self._conversations[run_id] = messages
        while len(self._conversations) > self.kept:
            self._conversations.popitem(last=False)

    def history_for(self, previous: RunRecord) -> list[dict[str, Any]]:
        """The earlier run's conversation; rebuilt from its question and verdict when it is
        no longer in memory."""
        kept = self._conversations.get(previous.id)
        if kept is not None:
            return list(kept)
        answer = previous.headline or f"(that run ended {previous.status} without a verdict)"
        if previous.verdict:
            answer = str(previous.verdict.get("raw") or previous.verdict.get("root_cause")
                         or answer)
        return past_conversation(previous.question, previous.namespace, answer)
