"""The hash chain catches tampering; the database refuses edits; bad files and a full disk
give one clear StoreError and leave nothing half-written."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sqlite3
from pathlib import Path

import pytest

from agent.events import ToolFinished
from budo.errors import StoreError
from storage import Store
from storage.chain import GENESIS, canonical_json, event_hash
from tests.fixtures.store import record_checkout_typo_run


def _tamper(path: str, sql: str, params: tuple = ()) -> None:
    """What someone with the file can do: drop the append-only guards, edit, and put the
    guards back so the schema looks untouched."""
    with sqlite3.connect(path) as conn:
        guards = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name "
                              "IN ('events_no_update', 'events_no_delete')").fetchall()
        conn.execute("DROP TRIGGER IF EXISTS events_no_update")
        conn.execute("DROP TRIGGER IF EXISTS events_no_delete")
        conn.execute(sql, params)
        for (create,) in guards:
            conn.execute(create)


async def _recorded(path: str) -> str:
    async with await Store.open(path) as store:
        return (await record_checkout_typo_run(store)).id


async def test_hash_is_sha256_of_canonical_json_chained_from_genesis(store: Store) -> None:
    run = await record_checkout_typo_run(store)
    events = await store.events(run.id)
    assert events[0].prev_hash == GENESIS
    for prev, event in itertools.pairwise(events):
        assert event.prev_hash == prev.hash
    first = events[0]
    body = {"run_id": first.run_id, "seq": 1, "at": first.at, "kind": first.kind,
            "actor": first.actor, "payload": first.payload, "prev_hash": GENESIS}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert first.hash == hashlib.sha256(text.encode()).hexdigest()
    assert canonical_json({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    result = await store.verify(run.id)
    assert (result.ok, result.events, result.first_bad_seq) == (True, len(events), None)
    assert result.head_hash == events[-1].hash == (await store.get_run(run.id)).head_hash


async def test_events_are_append_only_in_the_schema(store_path: str) -> None:
    run_id = await _recorded(store_path)
    with sqlite3.connect(store_path) as conn:
        for sql in ("UPDATE events SET actor = 'x' WHERE run_id = ?",
                    "DELETE FROM events WHERE run_id = ?"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(sql, (run_id,))


async def test_verify_names_the_first_modified_event(store_path: str) -> None:
    run_id = await _recorded(store_path)
    _tamper(store_path, "UPDATE events SET payload = json_set(payload, '$.output', "
            "'all pods healthy') WHERE run_id = ? AND seq = 5", (run_id,))
    async with await Store.open(store_path) as store:
        result = await store.verify(run_id)
    assert not result.ok and result.first_bad_seq == 5
    assert "event 5 (tool_finished) was modified" in result.detail


async def test_verify_catches_a_rehashed_edit_and_deleted_rows(store_path: str) -> None:
    run_id = await _recorded(store_path)
    # Recomputing the edited row's own hash is not enough: the next link breaks.
    async with await Store.open(store_path) as store:
        events = await store.events(run_id)
    e = events[2]
    forged = event_hash(run_id=run_id, seq=3, at=e.at, kind=e.kind, actor="someone-else",
                        payload=e.payload, prev_hash=e.prev_hash)
    _tamper(store_path, "UPDATE events SET actor = 'someone-else', hash = ? "
            "WHERE run_id = ? AND seq = 3", (forged, run_id))
    async with await Store.open(store_path) as store:
        result = await store.verify(run_id)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "does not link" in result.detail

    other = await _recorded(store_path)
    _tamper(store_path, "DELETE FROM events WHERE run_id = ? AND seq = 7", (other,))
    async with await Store.open(store_path) as store:
        assert (await store.verify(other)).first_bad_seq == 7
    third = await _recorded(store_path)
    _tamper(store_path, "DELETE FROM events WHERE run_id = ? AND seq >= 20", (third,))
    async with await Store.open(store_path) as store:
        result = await store.verify(third)
    assert (result.ok, result.first_bad_seq) == (False, 20)
    assert "removed" in result.detail


async def test_disk_full_is_a_clear_error_and_writes_nothing(store_path: str) -> None:
    async with await Store.open(store_path) as store:
        run = await store.start_run(source="terminal", question="q")
        await store.record(run.id, "note", {"text": "fits"})
        pages = (await store.connection.execute_fetchall("PRAGMA page_count"))[0][0]
        # A tiny "filesystem": the DB may not grow past its current size.
        await store.connection.execute(f"PRAGMA max_page_count = {pages}")
        huge = ToolFinished(run_id=run.id, turn=1, call_id="c1", tool="logs", ok=True,
                            duration_s=0.1, output="x" * 200_000)
        with pytest.raises(StoreError, match=r"^disk full") as caught:
            await store.append(huge)
        assert isinstance(caught.value.__cause__, sqlite3.Error)
        with pytest.raises(StoreError, match=r"^disk full"):
            await store.create_approval(run.id, "delete_pod", {"blob": "y" * 100_000}, 60)
        # Nothing half-written: the chain still ends at the last good event, and the
        # store still works for what fits.
        assert [e.kind for e in await store.events(run.id)] == ["note"]
        assert (await store.verify(run.id)).ok
        assert await store.approvals(run.id) == []
        await store.record(run.id, "note", {"text": "small"})
        assert (await store.verify(run.id)).events == 2


@pytest.mark.parametrize("content", [b"this is not a database, it is a text file\n" * 200,
                                     b"SQLite format 3\x00" + b"\xff" * 4000])
async def test_a_file_that_is_not_sqlite_is_refused_in_one_line(tmp_path: Path,
                                                                content: bytes) -> None:
    bad = tmp_path / "budo.db"
    bad.write_bytes(content)
    with pytest.raises(StoreError) as caught:
        await Store.open(str(bad))
    message = str(caught.value)
    assert "\n" not in message and str(bad) in message
    assert "not a SQLite database" in message or "corrupt" in message
    assert bad.read_bytes() == content  # untouched


async def test_a_read_only_directory_is_refused_in_one_line(readonly_dir: Path) -> None:
    with pytest.raises(StoreError, match=r"not writable|read-only") as caught:
        await Store.open(str(readonly_dir / "budo.db"))
    assert "\n" not in str(caught.value)
    with pytest.raises(StoreError, match="cannot create the directory"):
        await Store.open(str(readonly_dir / "sub" / "budo.db"))
    assert os.listdir(readonly_dir) == []


async def test_a_directory_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        await Store.open(str(tmp_path))
