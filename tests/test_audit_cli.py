"""`budo runs`, `budo export`, `budo audit verify` through the real dispatcher, and every
bad input: one line on stderr, a non-zero exit, no traceback, nothing half-written."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from budo.cli import main
from storage import Store
from tests.fixtures.store import QUESTION, record_checkout_typo_run

REPO = Path(__file__).resolve().parent.parent


def _record(path: str, **kwargs) -> str:
    async def go() -> str:
        async with await Store.open(path) as store:
            return (await record_checkout_typo_run(store, **kwargs)).id
    return asyncio.run(go())


@pytest.fixture
def recorded(store_path: str) -> tuple[str, str]:
    """A DB file holding the canonical run: (path, run_id)."""
    return store_path, _record(store_path)


def _one_error_line(capsys: pytest.CaptureFixture[str], code: int, command: str) -> str:
    out, err = capsys.readouterr()
    assert code != 0
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"budo {command}: ")
    return lines[0]


def test_runs_lists_recent_runs_newest_first(recorded, capsys) -> None:
    path, first = recorded
    second = _record(path, channel=None, thread_ts=None, requester="alice")
    assert main(["runs", "--db", path]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ID", "STARTED", "(UTC)", "WHO", "STATUS", "QUESTION", "VERDICT"]
    assert out[1].startswith(second) and "alice" in out[1]
    assert out[2].startswith(first)
    assert "U0ONCALL" in out[2] and "succeeded" in out[2]
    assert QUESTION in out[2] and "Revision 14 of deployment checkoutservice" in out[2]
    assert main(["runs", "--limit", "1", "--db", path]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_runs_reads_budo_db_from_the_environment(recorded, capsys, monkeypatch) -> None:
    path, run_id = recorded
    monkeypatch.setenv("BUDO_DB", path)
    assert main(["runs"]) == 0
    assert run_id in capsys.readouterr().out


def test_runs_on_an_empty_database(store_path, capsys) -> None:
    asyncio.run(_create_empty(store_path))
    assert main(["runs", "--db", store_path]) == 0
    assert capsys.readouterr().out.strip() == "no runs recorded yet"


async def _create_empty(path: str) -> None:
    async with await Store.open(path):
        pass


def test_export_markdown_to_stdout_and_jsonl_to_a_file(recorded, capsys, tmp_path) -> None:
    path, run_id = recorded
    assert main(["export", run_id, "--db", path]) == 0
    md = capsys.readouterr().out
    assert md.startswith(f"# Investigation {run_id}")
    assert f"budo audit verify {run_id}" in md
    target = tmp_path / "out" / "trail.jsonl"
    target.parent.mkdir()
    assert main(["export", run_id, "--format", "jsonl", "-o", str(target), "--db", path]) == 0
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(rows) == 24 and rows[0]["kind"] == "run_started" and "hash" in rows[0]
    assert os.listdir(target.parent) == ["trail.jsonl"]  # no temp file left behind


def test_audit_verify_ok_then_broken(recorded, capsys) -> None:
    path, run_id = recorded
    assert main(["audit", "verify", run_id, "--db", path]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK {run_id}: 24 events, chain intact, final hash ")
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("UPDATE events SET actor = 'mallory' WHERE run_id = ? AND seq = 12",
                     (run_id,))
    assert main(["audit", "verify", run_id, "--db", path]) == 1
    out = capsys.readouterr().out.strip()
    assert out == f"BROKEN {run_id}: event 12 (model_request) was modified: its hash " \
                  "does not match its content"


@pytest.mark.parametrize("argv", [["export", "r-000000"], ["audit", "verify", "r-000000"]])
def test_unknown_run_id(recorded, capsys, argv) -> None:
    path, _ = recorded
    line = _one_error_line(capsys, main([*argv, "--db", path]), argv[0])
    assert "no run with id 'r-000000' (see `budo runs`)" in line


@pytest.mark.parametrize("argv", [["runs"], ["export", "r-1"], ["audit", "verify", "r-1"]])
def test_missing_database_is_not_created(tmp_path, capsys, argv) -> None:
    path = tmp_path / "nope" / "budo.db"
    line = _one_error_line(capsys, main([*argv, "--db", str(path)]), argv[0])
    assert f"no audit database at {path}" in line
    assert not path.parent.exists()


@pytest.mark.parametrize("content", [b"hello, I am a text file\n" * 100,
                                     b"SQLite format 3\x00" + b"\x00\xff" * 3000])
def test_corrupt_or_non_sqlite_file(tmp_path, capsys, content) -> None:
    bad = tmp_path / "budo.db"
    bad.write_bytes(content)
    line = _one_error_line(capsys, main(["runs", "--db", str(bad)]), "runs")
    assert str(bad) in line and ("not a SQLite database" in line or "corrupt" in line)
    assert bad.read_bytes() == content


def test_database_in_a_read_only_directory(store_path, readonly_dir, capsys) -> None:
    line = _one_error_line(capsys, main(["runs", "--db", str(readonly_dir / "budo.db")]),
                           "runs")
    assert "no audit database" in line


def test_export_to_an_unwritable_place_leaves_nothing(recorded, readonly_dir, capsys,
                                                      tmp_path) -> None:
    path, run_id = recorded
    target = readonly_dir / "postmortem.md"
    line = _one_error_line(capsys, main(["export", run_id, "-o", str(target), "--db", path]),
                           "export")
    assert f"cannot write {target}" in line
    assert os.listdir(readonly_dir) == []
    missing = tmp_path / "no" / "such" / "dir" / "x.md"
    line = _one_error_line(capsys, main(["export", run_id, "-o", str(missing), "--db", path]),
                           "export")
    assert "No such file or directory" in line


def test_an_existing_file_is_replaced_whole(recorded, capsys, tmp_path) -> None:
    path, run_id = recorded
    target = tmp_path / "trail.jsonl"
    target.write_text("old contents\n")
    assert main(["export", run_id, "--format", "jsonl", "-o", str(target), "--db", path]) == 0
    assert target.read_text().count("\n") == 24 and "old contents" not in target.read_text()


def test_bad_arguments_exit_two(capsys) -> None:
    for argv in (["runs", "--limit", "0"], ["audit"], ["export", "r-1", "--format", "pdf"]):
        with pytest.raises(SystemExit) as caught:
            main(argv)
        assert caught.value.code == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and "error:" in err


@pytest.mark.slow  # a subprocess
def test_subprocess_bad_input_is_one_line_without_traceback(tmp_path) -> None:
    bad = tmp_path / "budo.db"
    bad.write_text("not sqlite at all\n" * 100)
    env = {**os.environ, "BUDO_DB": str(bad)}
    env.pop("BUDO_DEBUG", None)
    for argv in (["runs"], ["export", "r-abcdef"], ["audit", "verify", "r-abcdef"]):
        proc = subprocess.run([sys.executable, "-m", "budo", *argv], capture_output=True,
                              text=True, cwd=REPO, env=env, timeout=60)
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr
        assert proc.stderr.count("\n") == 1 and "not a SQLite database" in proc.stderr
