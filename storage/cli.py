"""`budo runs`, `budo export` and `budo audit verify`: read-only views of the audit store.

They never run restart recovery (a live bot's runs must not be marked interrupted because
someone listed them) and never create a database: a missing file is an error naming it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from agent import one_line, terminal_safe
from budo.config import Settings
from budo.errors import BudoError, StoreError
from storage.export import export_jsonl, export_markdown
from storage.store import Store


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH", default=None,
                        help="audit database (default: BUDO_DB, else "
                             "~/.local/state/budo/budo.db)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value}")
    return value


async def open_existing(db: str | None) -> Store:
    """Open the audit DB for reading (migrations yes, recovery no); refuse to create one.
    BUDO_AUDIT_KEY, when set, is the key verify checks the chain with."""
    settings = Settings.from_env()
    path = db or settings.db_path
    _require_file(path)
    return await Store.open(path, recover=False, audit_key=settings.audit_key)


def _require_file(path: str) -> None:
    if path == ":memory:":
        return
    target = Path(path).expanduser()
    if target.is_dir():
        raise StoreError(f"{path} is a directory, not an audit database")
    if not target.exists():
        raise StoreError(f"no audit database at {path} (set BUDO_DB or pass --db)")


# --- budo runs --------------------------------------------------------------------------------


def add_runs_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=_positive, default=20, metavar="N",
                        help="how many runs to show, newest first (default 20)")
    _add_db(parser)


async def run_runs(args: argparse.Namespace) -> int:
    async with await open_existing(args.db) as store:
        runs = await store.list_runs(limit=args.limit)
    if not runs:
        print("no runs recorded yet")
        return 0
    header = ("ID", "STARTED (UTC)", "WHO", "STATUS", "QUESTION", "VERDICT")
    rows = [header]
    for run in runs:
        when = datetime.fromtimestamp(run.started_at, UTC).strftime("%Y-%m-%d %H:%M")
        rows.append((run.id, when, terminal_safe(one_line(run.requester or run.source, 16)),
                     run.status,
                     # shown, not obeyed: questions and headlines come from Slack and models
                     terminal_safe(one_line(run.question, 48)),
                     terminal_safe(one_line(run.headline, 60))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())
    return 0


# --- budo export ------------------------------------------------------------------------------


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", metavar="RUN_ID", help="run id, e.g. r-7f3a2c (budo runs)")
    parser.add_argument("--format", choices=("md", "jsonl"), default="md",
                        help="md: postmortem timeline (default); jsonl: the full trail")
    parser.add_argument("-o", "--output", metavar="FILE", default=None,
                        help="write here (atomically) instead of stdout")
    _add_db(parser)


async def run_export(args: argparse.Namespace) -> int:
    async with await open_existing(args.db) as store:
        run = await store.get_run(args.run_id)
        events = await store.events(run.id)
    text = export_jsonl(events) if args.format == "jsonl" else export_markdown(run, events)
    if args.output in (None, "-"):
        # On a terminal the trail's outside text (log lines, the model's words) is shown, not
        # obeyed; redirected, the bytes are exactly what -o writes (JSONL re-verifies offline).
        sys.stdout.write(terminal_safe(text, newlines=True) if sys.stdout.isatty() else text)
        return 0
    write_atomically(Path(args.output), text)
    print(f"wrote {args.output} ({len(events)} events)", file=sys.stderr)
    return 0


def write_atomically(target: Path, text: str) -> None:
    """Temp file in the same directory, fsync, rename: the target is whole or untouched."""
    directory = target.expanduser().resolve().parent
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                        dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
        tmp_name = None
    except OSError as exc:
        reason = "disk full" if exc.errno == 28 else (exc.strerror or str(exc))
        raise BudoError(f"cannot write {target}: {reason}") from exc
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass


# --- budo audit verify ------------------------------------------------------------------------


def add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser(
        "verify", help="recompute a run's hash chain",
        description="Recompute a run's event chain (HMAC-SHA256 with BUDO_AUDIT_KEY, else "
        "plain SHA-256, reported as unkeyed); print OK or the first broken event (exit 1).")
    verify.add_argument("run_id", metavar="RUN_ID")
    verify.add_argument("--expect", metavar="HASH", default=None,
                        help="the final hash budo posted in the run's Slack thread (or the "
                             "export): the chain must end in exactly this hash")
    _add_db(verify)


async def run_audit(args: argparse.Namespace) -> int:
    expect = (args.expect or "").strip().strip("`").lower() or None
    if expect is not None and not re.fullmatch(r"[0-9a-f]{64}", expect):
        raise BudoError(f"--expect must be a 64-character hex hash, got {args.expect!r}")
    async with await open_existing(args.db) as store:
        result = await store.verify(args.run_id, expect=expect)
        tampered = list(store.tampered)
    if tampered:
        print(f"WARNING: the database's schema was altered outside budo: "
              f"{terminal_safe('; '.join(tampered))}", file=sys.stderr)
    if result.ok:
        how = ("HMAC-SHA256 keyed" if result.keyed else "unkeyed: anyone with the file could "
               "rewrite it; check the final hash against the one posted in Slack with --expect")
        matched = "; matches the expected hash" if expect else ""
        print(f"OK {args.run_id}: {result.detail}, final hash {result.head_hash} "
              f"({how}{matched})")
        return 0
    print(f"BROKEN {args.run_id}: {terminal_safe(result.detail)}")  # names from the file
    return 1
