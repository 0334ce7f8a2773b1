"""Is the schema still what the migrations made? Checked on every open.

The append-only triggers are what stop an UPDATE or DELETE on the trail; anyone with the
file can drop them (the chain still catches the edit, but only when someone runs verify).
So on open budo compares every trigger, table and index the migrations create with what is
in the file. A writer (the bot, a terminal run) refuses to open a file that differs, with
one line; read-only tools (``budo audit verify``) open it and say so.
"""

from __future__ import annotations

import re
import sqlite3
from functools import cache

import aiosqlite


def _normal(sql: str | None) -> str:
    return re.sub(r"\s+", " ", sql or "").strip()


@cache
def expected_schema() -> dict[tuple[str, str], str]:
    """(type, name) -> normalised SQL of everything the migrations create."""
    from storage.db import MIGRATIONS

    conn = sqlite3.connect(":memory:")
    try:
        for _, _, statements in MIGRATIONS:
            for statement in statements:
                conn.execute(statement)
        rows = conn.execute("SELECT type, name, sql FROM sqlite_master "
                            "WHERE name NOT LIKE 'sqlite_%'").fetchall()
    finally:
        conn.close()
    return {(kind, name): _normal(sql) for kind, name, sql in rows}


async def schema_problems(conn: aiosqlite.Connection) -> list[str]:
    """What differs from the migrations' schema (empty: nothing)."""
    rows = await conn.execute_fetchall("SELECT type, name, sql FROM sqlite_master "
                                       "WHERE name NOT LIKE 'sqlite_%'")
    actual = {(kind, name): _normal(sql) for kind, name, sql in rows}
    problems: list[str] = []
    for (kind, name), sql in expected_schema().items():
        if (kind, name) not in actual:
            problems.append(f"{kind} {name} is missing")
        elif actual[(kind, name)] != sql:
            problems.append(f"{kind} {name} was changed")
    for kind, name in actual:
        if kind == "trigger" and (kind, name) not in expected_schema():
            problems.append(f"trigger {name} was added")
    return problems
