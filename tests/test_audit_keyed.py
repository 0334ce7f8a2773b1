"""The audit chain against someone who holds the database file but not BUDO_AUDIT_KEY:
every rewrite they can compute is caught by `budo audit verify` (the real CLI dispatcher),
an unkeyed chain says so, `--expect` pins the head hash posted in Slack, and a file whose
guards were dropped is refused for writing."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

from budo.cli import main
from budo.errors import StoreError
from storage import Store
from storage.chain import GENESIS, event_hash
from tests.fixtures.store import record_checkout_typo_run

KEY = "k3y-0f-the-0n-call-team-7f1c9e4b"


def record(path: str, key: str | None) -> tuple[str, str]:
    async def go() -> tuple[str, str]:
        async with await Store.open(path, audit_key=key) as store:
            run = await record_checkout_typo_run(store)
            return run.id, (await store.get_run(run.id)).head_hash
    return asyncio.run(go())


def rewrite(path: str, run_id: str, seq: int, actor: str, key: bytes | None) -> str:
    """Edit one event and recompute every link after it (and the run's head) the way an
    attacker would: plain SHA-256, or HMAC with a key they guessed. Returns the new head."""
    with sqlite3.connect(path) as conn:
        guards = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND "
                              "name LIKE 'events_no_%'").fetchall()
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("DROP TRIGGER events_no_delete")
        conn.execute("UPDATE events SET actor = ? WHERE run_id = ? AND seq = ?",
                      (actor, run_id, seq))
        prev = GENESIS
        rows = conn.execute("SELECT seq, at, kind, actor, payload FROM events WHERE run_id = ? "
                            "ORDER BY seq", (run_id,)).fetchall()
        for number, at, kind, who, payload in rows:
            digest = event_hash(run_id=run_id, seq=number, at=at, kind=kind, actor=who,
                                payload=json.loads(payload), prev_hash=prev, key=key)
            conn.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE run_id = ? AND "
                         "seq = ?", (prev, digest, run_id, number))
            prev = digest
        conn.execute("UPDATE runs SET head_hash = ? WHERE id = ?", (prev, run_id))
        for (create,) in guards:
            conn.execute(create)
    return prev


def verify(capsys, path: str, run_id: str, *extra: str) -> tuple[int, str]:
    code = main(["audit", "verify", run_id, "--db", path, *extra])
    return code, capsys.readouterr().out.strip()


def test_keyed_chain_verifies_only_with_the_key(store_path, capsys, monkeypatch) -> None:
    run_id, head = record(store_path, KEY)
    monkeypatch.setenv("BUDO_AUDIT_KEY", KEY)
    code, out = verify(capsys, store_path, run_id, "--expect", head)
    assert code == 0 and "HMAC-SHA256 keyed" in out and "matches the expected hash" in out
    monkeypatch.delenv("BUDO_AUDIT_KEY")
    code, out = verify(capsys, store_path, run_id)
    assert code == 1 and "set BUDO_AUDIT_KEY" in out


@pytest.mark.parametrize("forger_key", [None, b"a-guess-at-the-key-000", b""])
def test_a_rewrite_without_the_key_never_verifies(store_path, capsys, monkeypatch,
                                                  forger_key) -> None:
    run_id, _ = record(store_path, KEY)
    rewrite(store_path, run_id, 12, "mallory", forger_key)
    monkeypatch.setenv("BUDO_AUDIT_KEY", KEY)
    code, out = verify(capsys, store_path, run_id)
    assert code == 1 and out.startswith(f"BROKEN {run_id}: ")
    if forger_key is None:
        assert "unkeyed" in out and "BUDO_AUDIT_KEY is set" in out


def test_unkeyed_chain_says_so_and_expect_catches_a_consistent_rewrite(store_path,
                                                                       capsys) -> None:
    run_id, posted = record(store_path, None)
    code, out = verify(capsys, store_path, run_id)
    assert code == 0 and "unkeyed" in out
    forged = rewrite(store_path, run_id, 12, "mallory", None)
    code, out = verify(capsys, store_path, run_id)
    assert code == 0  # without a key a consistent rewrite cannot be told apart...
    code, out = verify(capsys, store_path, run_id, "--expect", posted)
    assert code == 1 and f"final hash {forged} does not match the expected {posted}" in out
    code, err = main(["audit", "verify", run_id, "--db", store_path, "--expect", "abc"]), \
        capsys.readouterr().err
    assert code != 0 and "64-character hex" in err


def test_a_file_whose_guards_were_dropped_is_refused_for_writing(store_path, capsys) -> None:
    run_id, _ = record(store_path, None)
    with sqlite3.connect(store_path) as conn:
        conn.execute("DROP TRIGGER events_no_update")

    async def open_for_writing() -> None:
        await Store.open(store_path)

    with pytest.raises(StoreError) as caught:
        asyncio.run(open_for_writing())
    message = str(caught.value)
    assert "\n" not in message and "trigger events_no_update is missing" in message
    assert "refusing to write" in message

    async def read_only_then_write() -> None:
        async with await Store.open(store_path, recover=False) as store:
            assert store.tampered == ["trigger events_no_update is missing"]
            assert (await store.verify(run_id)).ok
            with pytest.raises(StoreError, match="refusing to write"):
                await store.start_run(source="terminal", question="q")

    asyncio.run(read_only_then_write())
    code = main(["audit", "verify", run_id, "--db", store_path])
    captured = capsys.readouterr()
    assert code == 0 and "events_no_update is missing" in captured.err


def test_expect_may_pin_an_earlier_link_and_names_what_came_after(store_path, capsys,
                                                                   monkeypatch) -> None:
    run_id, posted = record(store_path, KEY)

    async def append_later() -> None:
        async with await Store.open(store_path, audit_key=KEY) as store:
            await store.record(run_id, "outcome_delivered", {"via": "channel"}, actor="budo")

    asyncio.run(append_later())
    code = main(["audit", "verify", run_id, "--db", store_path, "--expect", posted])
    out = capsys.readouterr().out
    assert code != 0 and "set BUDO_AUDIT_KEY" in out  # keyed chain, no key given
    monkeypatch.setenv("BUDO_AUDIT_KEY", KEY)
    code, out = verify(capsys, store_path, run_id, "--expect", posted)
    assert code == 0 and "events after it were added later: outcome_delivered" in out
    code, out = verify(capsys, store_path, run_id, "--expect", "0" * 64)
    assert code == 1 and "does not match the expected" in out
