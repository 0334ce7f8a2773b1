"""The audit store: runs, hash-chained events and approvals in SQLite (aiosqlite).

    store = await Store.open(settings.db_path)       # migrations + restart recovery
    sink = AuditSink(store)                           # give it to run_investigation(sinks=...)
"""

from budo.errors import ApprovalNotFound
from storage.chain import VerifyResult
from storage.deliveries import first_delivery
from storage.export import export_jsonl, export_markdown
from storage.records import (
    ApprovalRecord,
    DecideResult,
    RunRecord,
    StoredEvent,
)
from storage.sink import AuditSink
from storage.store import Store

__all__ = [
    "ApprovalNotFound",
    "ApprovalRecord",
    "AuditSink",
    "DecideResult",
    "RunRecord",
    "Store",
    "StoredEvent",
    "VerifyResult",
    "export_jsonl",
    "export_markdown",
    "first_delivery",
]
