"""Lenient tool-call parsing: what small local models actually emit, turned into ToolCalls.

Two jobs:

``parse_arguments(raw)``
    The ``function.arguments`` of a native tool call. Servers send a JSON string, sometimes an
    already-decoded object; small models wrap it in code fences, add a sentence after it, use
    single quotes or leave a trailing comma. Each of those is repaired only where the repair
    cannot change meaning (the scanner below knows when it is inside a string). Anything else
    comes back as ``(None, "why")`` so the loop can ask the model to re-emit; never raises.

``recover_text_calls(content, tool_names)``
    A model that "calls" a tool by writing it in ``content``: ``<tool_call>{...}</tool_call>``
    blocks (Qwen/Hermes templates), fenced ```json objects, or a bare JSON object. Only objects
    naming an offered tool are accepted, so a JSON snippet in a final answer is left alone. The
    markup of accepted calls is removed from the text.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection
from typing import Any

from agent.protocols import ToolCall
from agent.text import one_line

# Keys a call object may carry. A bare JSON object with any other key is not a call (it is
# probably data the model is showing), which keeps recovery from misreading answers.
_NAME_KEYS = ("name", "tool", "tool_name", "function")
_ARGUMENT_KEYS = ("arguments", "parameters", "args", "input")
_CALL_KEYS = frozenset({*_NAME_KEYS, *_ARGUMENT_KEYS, "type", "id"})

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n?(.*?)```", re.DOTALL)
_TOOL_CALL_TAG = re.compile(
    r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL | re.IGNORECASE
)
_NAME_IN_TEXT = re.compile(r"""["']name["']\s*:\s*["']([\w.-]+)["']""")

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PYTHON_LITERALS = {"True": "true", "False": "false", "None": "null"}
# Control tokens some chat templates leave in front of a call written as text.
_CALL_MARKERS = re.compile(r"<\|python_tag\|>|\[TOOL_CALLS\]")

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
    value, error = _loads_lenient(text)
    # Some servers double-encode: the JSON string holds a JSON string.
    if isinstance(value, str):
        value, error = _loads_lenient(value.strip())
    if error is not None:
        return None, error
    if not isinstance(value, dict):
        return None, f"arguments must be a JSON object, got {_json_type(value)}"
    return value, None


def _loads_lenient(text: str) -> tuple[Any, str | None]:
    try:
        return json.loads(text), None
    except json.JSONDecodeError:
        pass
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(2).strip()
    start = _first_opening(text)
    if start is None:
        return None, f"arguments are not JSON: {_snippet(text)}"
    candidate = text[start:]
    decoder = json.JSONDecoder()
    for attempt in (candidate, _repair(candidate)):
        if attempt is None:
            continue
        try:
            # raw_decode stops at the end of the first value: trailing prose is ignored.
            value, _ = decoder.raw_decode(attempt)
            return value, None
        except json.JSONDecodeError:
            continue
    return None, f"arguments are not valid JSON: {_snippet(text)}"


def _first_opening(text: str) -> int | None:
    positions = [p for p in (text.find("{"), text.find("[")) if p >= 0]
    return min(positions) if positions else None


def _repair(text: str) -> str | None:
    """Rewrite single-quoted strings as JSON strings, drop trailing commas and turn Python's
    True/False/None into JSON, tracking string state so nothing inside a string changes.
    ``None`` when the text is not one balanced value (truncated output is not guessed at)."""
    out: list[str] = []
    depth = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "\"'":
            end, literal = _read_string(text, i)
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


def _read_string(text: str, start: int) -> tuple[int | None, str]:
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


def _snippet(text: str) -> str:
    return one_line(text, _MAX_ERROR_SNIPPET)


# --- recovery from text -----------------------------------------------------------------------


def recover_text_calls(
    content: str, tool_names: Collection[str]
) -> tuple[list[ToolCall], str]:
    """Tool calls written as text in ``content``: ``(calls, content without their markup)``.

    ``([], content)`` unchanged when nothing names an offered tool."""
    if not content or not any(name in content for name in tool_names):
        return [], content  # cheap guard: no offered tool is even mentioned
    calls: list[ToolCall] = []
    spans: list[tuple[int, int]] = []

    for match in _TOOL_CALL_TAG.finditer(content):
        found = _calls_from_block(match.group(1), tool_names, explicit=True)
        if found:
            calls.extend(found)
            spans.append(match.span())
    if not calls:
        for match in _FENCE.finditer(content):
            if match.group(1).lower() not in ("", "json", "tool_call", "javascript", "js"):
                continue
            found = _calls_from_block(match.group(2), tool_names, explicit=False)
            if found:
                calls.extend(found)
                spans.append(match.span())
    if not calls:
        calls, spans = _bare_json_calls(content, tool_names)
    if not calls:
        return [], content
    return calls, _remove_spans(content, spans)


def _calls_from_block(
    block: str, tool_names: Collection[str], *, explicit: bool
) -> list[ToolCall]:
    """Calls in one tagged or fenced block. Inside an explicit ``<tool_call>`` tag a body that
    will not parse still yields a call (with ``parse_error``) when it names an offered tool."""
    value, error = _loads_lenient(block.strip())
    if error is None:
        objects = value if isinstance(value, list) else [value]
        calls = [c for c in (_call_from_object(o, tool_names) for o in objects) if c]
        return calls
    if explicit:
        named = _NAME_IN_TEXT.search(block)
        if named and named.group(1) in tool_names:
            return [
                ToolCall(
                    id=new_call_id(), name=named.group(1), arguments=None,
                    raw_arguments=block.strip(),
                    parse_error=f"the <tool_call> block is not valid JSON: {_snippet(block)}",
                )
            ]
    return []


def _call_from_object(obj: Any, tool_names: Collection[str]) -> ToolCall | None:
    if not isinstance(obj, dict) or not set(obj) <= _CALL_KEYS:
        return None
    name: Any = next((obj[k] for k in _NAME_KEYS if k in obj), None)
    raw_args: Any = next((obj[k] for k in _ARGUMENT_KEYS if k in obj), None)
    if isinstance(name, dict):  # {"function": {"name": ..., "arguments": ...}}
        raw_args = next((name[k] for k in _ARGUMENT_KEYS if k in name), raw_args)
        name = name.get("name")
    if not isinstance(name, str) or name not in tool_names:
        return None
    arguments, error = parse_arguments(raw_args)
    raw_text = raw_args if isinstance(raw_args, str) else json.dumps(raw_args or {})
    return ToolCall(
        id=new_call_id(), name=name, arguments=arguments, raw_arguments=raw_text,
        parse_error=error,
    )


def _bare_json_calls(
    content: str, tool_names: Collection[str]
) -> tuple[list[ToolCall], list[tuple[int, int]]]:
    """Top-level JSON objects (or arrays of them) anywhere in the text that name a tool."""
    decoder = json.JSONDecoder()
    calls: list[ToolCall] = []
    spans: list[tuple[int, int]] = []
    i = 0
    while True:
        i = _next_opening(content, i)
        if i < 0:
            return calls, spans
        try:
            value, end = decoder.raw_decode(content, i)
        except json.JSONDecodeError:
            repaired = _repair(content[i:])
            value, end = None, i + 1
            if repaired is not None:
                try:
                    value, _ = decoder.raw_decode(repaired)
                    end = i + _balanced_end(content, i)
                except json.JSONDecodeError:
                    value = None
        objects = value if isinstance(value, list) else [value]
        found = [c for c in (_call_from_object(o, tool_names) for o in objects) if c]
        if found and len(found) == len(objects):
            calls.extend(found)
            spans.append((i, end))
            i = end
        else:
            i += 1


def _next_opening(text: str, start: int) -> int:
    positions = [p for p in (text.find("{", start), text.find("[", start)) if p >= 0]
    return min(positions) if positions else -1


def _balanced_end(text: str, start: int) -> int:
    """Length of the balanced bracket run at ``start`` (quotes of either kind respected)."""
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch in "\"'":
            end, _ = _read_string(text, i)
            if end is None:
                return len(text) - start
            i = end
            continue
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1 - start
        i += 1
    return len(text) - start


def _remove_spans(content: str, spans: list[tuple[int, int]]) -> str:
    kept: list[str] = []
    last = 0
    for start, end in sorted(spans):
        kept.append(content[last:start])
        last = end
    kept.append(content[last:])
    text = _CALL_MARKERS.sub("", "".join(kept))
    return re.sub(r"\n{3,}", "\n\n", text).strip()
