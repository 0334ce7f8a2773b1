"""A native tool call's arguments, read leniently (``parse_arguments``), and the lenient JSON
reading that agent/toolcalls.py's recovery of calls written as text shares.

Servers send ``function.arguments`` as a JSON string, sometimes an already-decoded object;
small models wrap it in code fences, add a sentence after it, use single quotes or leave a
trailing comma. Each of those is repaired only where the repair cannot change meaning (the
scanner knows when it is inside a string). Anything else comes back as ``(None, "why")`` so
the loop can ask the model to re-emit; never raises.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from agent.text import one_line

FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n?(.*?)```", re.DOTALL)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PYTHON_LITERALS = {"True": "true", "False": "false", "None": "null"}
_MAX_ERROR_SNIPPET = 80




def new_call_id() -> str:
    """An id for a call the server did not number (recovered or id-less calls)."""
    return f"call_{uuid.uuid4().hex[:12]}"


def parse_arguments(raw: Any) -> tuple[dict[str, Any] | None, str | None]:
    """``(arguments, None)`` or ``(None, parse_error)``. Empty or missing means no arguments."""
    if raw is None:
        return {}, None
    if isinstance(raw, dict):
        return raw, None
    if not isinstance(raw, str):
        return None, f"arguments must be a JSON object, got {type(raw).__name__}"
    text = raw.strip()
    if not text:
        return {}, None
    value, error = loads_lenient(text)
    # Some servers double-encode: the JSON string holds a JSON string.
    if isinstance(value, str):
        value, error = loads_lenient(value.strip())
    if error is not None:
        return None, error
    if not isinstance(value, dict):
        return None, f"arguments must be a JSON object, got {_json_type(value)}"
    return value, None


def loads_lenient(text: str) -> tuple[Any, str | None]:
    try:
        return json.loads(text), None
    except json.JSONDecodeError:
        pass
    fenced = FENCE.search(text)
    if fenced:
        text = fenced.group(2).strip()
    start = _first_opening(text)
    if start is None:
        return None, f"arguments are not JSON: {snippet(text)}"
    candidate = text[start:]
    decoder = json.JSONDecoder()
    for attempt in (candidate, repair(candidate)):
        if attempt is None:
            continue
        try:
            # raw_decode stops at the end of the first value: trailing prose is ignored.
            value, _ = decoder.raw_decode(attempt)
            return value, None
        except json.JSONDecodeError:
            continue
    return None, f"arguments are not valid JSON: {snippet(text)}"


def _first_opening(text: str) -> int | None:
    positions = [p for p in (text.find("{"), text.find("[")) if p >= 0]
    return min(positions) if positions else None


def repair(text: str) -> str | None:
    """Rewrite single-quoted strings as JSON strings, drop trailing commas and turn Python's
    True/False/None into JSON, tracking string state so nothing inside a string changes.
    ``None`` when the text is not one balanced value (truncated output is not guessed at)."""
    out: list[str] = []
    depth = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "\"'":
            end, literal = read_string(text, i)
            if end is None:
                return None
            out.append(json.dumps(literal))
            i = end
            continue
        if ch.isalpha():
            word = _WORD.match(text, i)
            assert word is not None  # ch is a letter, so the pattern matches at least it
            out.append(_PYTHON_LITERALS.get(word.group(0), word.group(0)))
            i = word.end()
            continue
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            # a comma right before a closer is the trailing comma small models leave
            while out and out[-1].isspace():
                out.pop()
            if out and out[-1] == ",":
                out.pop()
        out.append(ch)
        i += 1
        if depth == 0:
            return "".join(out)
    return None


def read_string(text: str, start: int) -> tuple[int | None, str]:
    """Read a quoted string (either quote) starting at ``start``; return (index after, value)."""
    quote = text[start]
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == quote or nxt in "\\/'\"":
                chars.append(nxt)
                i += 2
                continue
            try:  # \n, \t, \uXXXX ... decode as JSON would
                escape = text[i : i + 6] if nxt == "u" else text[i : i + 2]
                chars.append(json.loads(f'"{escape}"'))
                i += len(escape)
                continue
            except json.JSONDecodeError:
                chars.append(nxt)
                i += 2
                continue
        if ch == quote:
            return i + 1, "".join(chars)
        chars.append(ch)
        i += 1
    return None, ""


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def snippet(text: str) -> str:
    return one_line(text, _MAX_ERROR_SNIPPET)
