"""Schema added for issue 12 (security), kept apart from db.py's list so each change stays
small: exactly-once Slack deliveries, and how each run's chain is keyed."""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (2, "slack deliveries (exactly-once runs)", [
        # One row per Slack event_id / trigger_id / signed-body hash already handled.
        """CREATE TABLE deliveries (
            key TEXT PRIMARY KEY,
            at  REAL NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX deliveries_at ON deliveries (at)",
    ]),
]
