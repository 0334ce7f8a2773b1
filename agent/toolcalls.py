"""Tool calls a small local model wrote as text, turned into ToolCalls.

``recover_text_calls(content, tool_names)``: a model that "calls" a tool by writing it in
``content``: ``<tool_call>{...}</tool_call>`` blocks (Qwen/Hermes templates), fenced ```json
objects, bare JSON, mistral v11 ``[TOOL_CALLS]name[ARGS]{...}`` or pythonic
``[name(arg="v")]``, only when the calls end the reply and the reply is not an answer (see the
function). The markup of accepted calls is removed from the text. Arguments are read by
agent/call_arguments.py, as a native call's are.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Collection
from typing import Any

from agent.call_arguments import (
    FENCE,
    loads_lenient,
    new_call_id,
    parse_arguments,
    read_string,
    repair,
    snippet,
)
from agent.protocols import ToolCall

# Keys a call object may carry. A bare JSON object with any other key is not a call (it is
# probably data the model is showing), which keeps recovery from misreading answers.
_NAME_KEYS = ("name", "tool", "tool_name", "function")
_ARGUMENT_KEYS = ("arguments", "parameters", "args", "input")
_CALL_KEYS = frozenset({*_NAME_KEYS, *_ARGUMENT_KEYS, "type", "id"})

_TOOL_CALL_TAG = re.compile(
    r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL | re.IGNORECASE
)
_NAME_IN_TEXT = re.compile(r"""["']name["']\s*:\s*["']([\w.-]+)["']""")

# Control tokens some chat templates leave in front of a call written as text.
_CALL_MARKERS = re.compile(r"<\|python_tag\|>|\[TOOL_CALLS\]")

# --- recovery from text -----------------------------------------------------------------------

# mistral v11 template: [TOOL_CALLS]name[ARGS]{...} (v3 writes [TOOL_CALLS] [{...}] instead).
_MISTRAL_V11 = re.compile(r"\[TOOL_CALLS\]\s*([A-Za-z_][\w.-]*)\s*\[ARGS\]\s*")
_UNTRUSTED_MARK = "UNTRUSTED TOOL OUTPUT"


def recover_text_calls(
    content: str, tool_names: Collection[str]
) -> tuple[list[ToolCall], str]:
    """Tool calls written as text in ``content``: ``(calls, content without their markup)``.

    Only when the calls end the reply and the reply is not an answer: an answer in the ROOT
    CAUSE / EVIDENCE / FIX shape is a verdict whatever it quotes, and a reply quoting our
    untrusted-output delimiters is quoting data. Explicit markup (``<tool_call>`` tags, fences)
    may follow a sentence of reasoning; bare JSON, mistral v11 ``[TOOL_CALLS]name[ARGS]{…}`` and
    pythonic ``[name(arg="v")]`` must be the whole reply. A call-shaped object naming a tool we
    do not offer is returned (the loop answers "unknown tool") only when it is the whole reply.
    ``([], content)`` unchanged when nothing qualifies."""
    text = content.strip() if content else ""
    if not text or not tool_names or _UNTRUSTED_MARK in text:
        return [], content
    from agent.verdict import parse_verdict  # local: verdict has no business importing us

    if parse_verdict(text).structured:
        return [], content
    stripped = _CALL_MARKERS.sub("", text).strip() if text.startswith(
        ("<|python_tag|>", "[TOOL_CALLS] ", "[TOOL_CALLS][")) else text
    for attempt in (_tagged_calls, _fenced_calls):
        calls, rest = attempt(text, tool_names)
        if calls:
            return calls, rest
    for whole in (_mistral_v11_calls, _pythonic_calls, _whole_json_calls):
        calls = whole(stripped, tool_names)
        if calls:
            return calls, ""
    return [], content


def _tagged_calls(text: str, tool_names: Collection[str]) -> tuple[list[ToolCall], str]:
    matches = list(_TOOL_CALL_TAG.finditer(text))
    if not matches or text[matches[-1].end():].strip():
        return [], text
    # Between the first tag and the end there may only be more tags.
    first = matches[0].start()
    between = _TOOL_CALL_TAG.sub("", text[first:]).strip()
    if between:
        return [], text
    calls: list[ToolCall] = []
    for match in matches:
        found = _calls_from_block(match.group(1), tool_names, explicit=True,
                                  any_name=not text[:first].strip())
        if not found:
            return [], text
        calls.extend(found)
    return calls, _clean(text[:first])


def _fenced_calls(text: str, tool_names: Collection[str]) -> tuple[list[ToolCall], str]:
    matches = [m for m in FENCE.finditer(text)
               if m.group(1).lower() in ("", "json", "tool_call", "javascript", "js")]
    if not matches or text[matches[-1].end():].strip():
        return [], text
    first = matches[0].start()
    if FENCE.sub("", text[first:]).strip():
        return [], text
    calls: list[ToolCall] = []
    for match in matches:
        found = _calls_from_block(match.group(2), tool_names, explicit=False,
                                  any_name=not text[:first].strip())
        if not found:
            return [], text
        calls.extend(found)
    return calls, _clean(text[:first])


def _whole_json_calls(text: str, tool_names: Collection[str]) -> list[ToolCall]:
    """The whole reply is one JSON call object, an array of them, or one object per line."""
    decoder = json.JSONDecoder()
    calls: list[ToolCall] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        try:
            value, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            repaired = repair(text[i:])
            if repaired is None:
                return []
            try:
                value, _ = decoder.raw_decode(repaired)
            except json.JSONDecodeError:
                return []
            end = i + _balanced_end(text, i)
        objects = value if isinstance(value, list) else [value]
        found = [_call_from_object(o, tool_names, any_name=True) for o in objects]
        if not objects or not all(found):
            return []
        calls.extend(c for c in found if c)
        i = end
    return calls


def _mistral_v11_calls(text: str, tool_names: Collection[str]) -> list[ToolCall]:
    if not text.startswith("[TOOL_CALLS]"):
        return []
    decoder = json.JSONDecoder()
    calls: list[ToolCall] = []
    i = 0
    while i < len(text):
        match = _MISTRAL_V11.match(text, i)
        if not match or match.group(1) not in tool_names:
            return []
        try:
            value, end = decoder.raw_decode(text, match.end())
        except json.JSONDecodeError:
            arguments, error = parse_arguments(text[match.end():])
            raw = text[match.end():]
            calls.append(ToolCall(new_call_id(), match.group(1), arguments, raw, error))
            return calls
        arguments, error = parse_arguments(value)
        calls.append(ToolCall(new_call_id(), match.group(1), arguments,
                              json.dumps(value), error))
        i = end
        while i < len(text) and text[i].isspace():
            i += 1
    return calls


def _pythonic_calls(text: str, tool_names: Collection[str]) -> list[ToolCall]:
    """``[get_pods(namespace="shop"), logs(pod="a", tail=50)]`` (Llama 3.2/4 pythonic
    templates), parsed with ``ast`` and literal values only: nothing is evaluated."""
    if not (text.startswith("[") and text.endswith("]") and "(" in text):
        return []
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return []
    if not isinstance(tree.body, ast.List) or not tree.body.elts:
        return []
    calls: list[ToolCall] = []
    for node in tree.body.elts:
        if (not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name)
                or node.func.id not in tool_names or node.args):
            return []
        try:
            arguments = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
        except ValueError:
            return []
        calls.append(ToolCall(new_call_id(), node.func.id, arguments, json.dumps(arguments)))
    return calls


def _calls_from_block(
    block: str, tool_names: Collection[str], *, explicit: bool, any_name: bool = False
) -> list[ToolCall]:
    """Calls in one tagged or fenced block. Inside an explicit ``<tool_call>`` tag a body that
    will not parse still yields a call (with ``parse_error``) when it names an offered tool."""
    value, error = loads_lenient(block.strip())
    if error is None:
        objects = value if isinstance(value, list) else [value]
        found = [_call_from_object(o, tool_names, any_name=any_name) for o in objects]
        return [c for c in found if c] if objects and all(found) else []
    if explicit:
        named = _NAME_IN_TEXT.search(block)
        if named and named.group(1) in tool_names:
            return [
                ToolCall(
                    id=new_call_id(), name=named.group(1), arguments=None,
                    raw_arguments=block.strip(),
                    parse_error=f"the <tool_call> block is not valid JSON: {snippet(block)}",
                )
            ]
    return []


def _call_from_object(obj: Any, tool_names: Collection[str], *, any_name: bool = False
                      ) -> ToolCall | None:
    """A call from a call-shaped object. ``any_name``: accept a tool we do not offer when the
    object is clearly a call (a name plus an arguments key), so the loop can say so."""
    if not isinstance(obj, dict) or not set(obj) <= _CALL_KEYS:
        return None
    name: Any = next((obj[k] for k in _NAME_KEYS if k in obj), None)
    raw_args: Any = next((obj[k] for k in _ARGUMENT_KEYS if k in obj), None)
    if isinstance(name, dict):  # {"function": {"name": ..., "arguments": ...}}
        raw_args = next((name[k] for k in _ARGUMENT_KEYS if k in name), raw_args)
        name = name.get("name")
    if not isinstance(name, str) or not name:
        return None
    has_arguments = any(k in obj for k in _ARGUMENT_KEYS) or isinstance(obj.get("function"),
                                                                          dict)
    if name not in tool_names and not (any_name and has_arguments):
        return None
    arguments, error = parse_arguments(raw_args)
    raw_text = raw_args if isinstance(raw_args, str) else json.dumps(raw_args or {})
    return ToolCall(
        id=new_call_id(), name=name, arguments=arguments, raw_arguments=raw_text,
        parse_error=error,
    )


def _balanced_end(text: str, start: int) -> int:
    """Length of the balanced bracket run at ``start`` (quotes of either kind respected)."""
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch in "\"'":
            end, _ = read_string(text, i)
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


def _clean(text: str) -> str:
    text = _CALL_MARKERS.sub("", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
