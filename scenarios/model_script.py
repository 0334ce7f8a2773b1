"""The scripted model's script: turns as validated data, served by
``scenarios.scripted_model``. Scenario files carry these as YAML list items; ``parse_turns``
turns them into ``ScriptTurn`` objects or raises ``ScenarioError`` naming file, path and problem.

Script turns are plain data so scenario YAML can carry them::

    {say: "optional text", calls: [{tool: get_pods, args: {namespace: shop}}]}
    {answer: "ROOT CAUSE: ..."}
    {say: "text only"}                      # also a final answer
    {fault: NAME, ...options}

A turn is consumed when served; the next request gets the next turn. When the script runs out
the server answers "script exhausted: ..." (finish_reason "stop") so a runaway loop ends.

Faults (``fault`` may be written as a string or, for "500"/"429", a YAML number):

=================  ============================================================================
``500``            HTTP 500 (``status: 502`` etc. for another 5xx). ``times: N`` serves it N
                   times before moving on (default 1), so ``times: 5`` is a persistent outage.
``429``            HTTP 429 with ``Retry-After: retry_after`` (default 1; a number of seconds
                   or a string sent verbatim, e.g. an HTTP date). ``times`` as above.
``stall``          Holds the request ``seconds`` (default 5) and then answers HTTP 504; the
                   client should have timed out by then. ``times`` as above. ``stop()``
                   releases stalled requests at once.
``model_not_found``  HTTP 404 with Ollama's body: model "x" not found, try pulling it first.
                   ``times`` as above.
``empty``          200 with content "" and no tool calls.
``unknown_tool``   A call to ``tool`` (default "nonexistent_tool") with ``args`` (default {}).
``bad_args``       The calls' ``arguments`` are malformed JSON: ``raw`` if given, else the real
                   JSON with its closing brace cut off (no lenient parser may guess that).
``text_call``      No ``tool_calls``: the calls are written in ``content`` the way small local
                   models do, in ``style`` "tags" (``<tool_call>{...}</tool_call>`` after any
                   ``say``, default), "fenced" (```json blocks), "bare" (one JSON object per
                   line), "mistral" (v11 ``[TOOL_CALLS]name[ARGS]{...}``) or "pythonic"
                   (``[name(arg="v")]``); all but "tags" are the whole reply.
``no_usage``       The reply omits ``usage``.
``cut_off``        The reply stops at ``keep`` (default 0.5) of its text with
                   ``finish_reason: "length"`` (the server's max_tokens reached).
``refusal``        OpenAI's shape for a safety refusal: ``content`` null, ``refusal`` = ``text``.
=================  ============================================================================

``bad_args``, ``text_call``, ``no_usage`` and ``cut_off`` modify a turn: either their own (the
fault turn carries ``say``/``calls``/``answer``), or, when it carries none, the NEXT turn of the
script, and both are consumed by that one reply. So ``[{fault: bad_args}, {calls: [...]}, {calls:
[...]}, {answer: ...}]`` serves broken arguments, then the corrected call the loop asked for.

Instead of a list, ``turns`` may be a callable ``(request_body) -> turn`` (sync or async) that
computes each reply from the request; a modifying fault it returns applies to its own content.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from budo.errors import ScenarioError

HTTP_FAULTS = frozenset({"500", "429", "stall", "model_not_found"})
MODIFYING_FAULTS = frozenset({"bad_args", "text_call", "no_usage", "cut_off"})
FAULTS = HTTP_FAULTS | MODIFYING_FAULTS | {"empty", "unknown_tool", "refusal"}
_OPTIONS = {
    "500": {"times", "status"}, "429": {"times", "retry_after"}, "stall": {"times", "seconds"},
    "model_not_found": {"times"}, "empty": set(), "unknown_tool": {"tool", "args"},
    "bad_args": {"raw"}, "text_call": {"style"}, "no_usage": set(), "cut_off": {"keep"},
    "refusal": {"text"},
}
_CONTENT_KEYS = {"say", "calls", "answer"}
TEXT_CALL_STYLES = ("tags", "fenced", "bare", "mistral", "pythonic")
EXHAUSTED = "script exhausted: the scripted model has no more turns"


@dataclass(frozen=True)
class ScriptCall:
    """One tool call to emit. ``args`` as a string is sent verbatim as the arguments text."""

    tool: str
    args: Mapping[str, Any] | str = field(default_factory=dict)

    def arguments_text(self) -> str:
        return self.args if isinstance(self.args, str) else json.dumps(dict(self.args))


@dataclass(frozen=True)
class ScriptTurn:
    """One assistant turn, or a fault. Build from data with ``ScriptTurn.from_dict``."""

    say: str = ""
    calls: tuple[ScriptCall, ...] = ()
    answer: str | None = None
    fault: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def has_content(self) -> bool:
        return bool(self.say or self.calls or self.answer is not None)

    @classmethod
    def from_dict(
        cls, item: Any, *, file: str = "<script>", path: str = "turns[0]"
    ) -> ScriptTurn:
        """Validate one script item; ``ScenarioError`` names ``file``, ``path`` and the problem."""
        if isinstance(item, ScriptTurn):
            return item
        if not isinstance(item, Mapping):
            raise ScenarioError(file, path, f"a turn must be a mapping, got {_kind(item)}")
        fault = item.get("fault")
        if fault is not None:
            fault = str(fault)
            if fault not in FAULTS:
                raise ScenarioError(
                    file, f"{path}.fault", f"unknown fault {fault!r}; one of {sorted(FAULTS)}"
                )
        allowed = _CONTENT_KEYS | {"fault"} | (_OPTIONS[fault] if fault else set())
        extra = sorted(set(item) - allowed)
        if extra:
            raise ScenarioError(
                file, f"{path}.{extra[0]}", f"unknown key; allowed here: {sorted(allowed)}"
            )
        say, answer = item.get("say", ""), item.get("answer")
        if not isinstance(say, str):
            raise ScenarioError(file, f"{path}.say", f"must be text, got {_kind(say)}")
        if answer is not None and not isinstance(answer, str):
            raise ScenarioError(file, f"{path}.answer", f"must be text, got {_kind(answer)}")
        calls = _parse_calls(item.get("calls"), file, f"{path}.calls")
        if calls and answer is not None:
            raise ScenarioError(file, path, "a turn has either calls or an answer, not both")
        options = {k: v for k, v in item.items() if k not in _CONTENT_KEYS | {"fault"}}
        turn = cls(say=say, calls=calls, answer=answer, fault=fault, options=options)
        if fault is None and not turn.has_content:
            raise ScenarioError(file, path, "empty turn: give say, calls, answer or fault")
        if fault in HTTP_FAULTS | {"empty", "unknown_tool", "refusal"} and turn.has_content:
            raise ScenarioError(file, path, f"fault {fault!r} takes no say/calls/answer")
        _check_options(turn, file, path)
        return turn


def parse_turns(
    items: Any, *, file: str = "<script>", path: str = "turns"
) -> list[ScriptTurn]:
    """A whole script: validates every item and that modifying faults have a turn to modify."""
    if not isinstance(items, list):
        raise ScenarioError(file, path, f"must be a list of turns, got {_kind(items)}")
    turns = [
        ScriptTurn.from_dict(item, file=file, path=f"{path}[{i}]") for i, item in enumerate(items)
    ]
    for i, turn in enumerate(turns):
        if turn.fault in MODIFYING_FAULTS and not turn.has_content:
            following = turns[i + 1] if i + 1 < len(turns) else None
            if following is None or following.fault is not None:
                raise ScenarioError(
                    file, f"{path}[{i}]", f"fault {turn.fault!r} has no say/calls/answer of its "
                    "own, so the next turn must be a plain turn for it to modify",
                )
    return turns


def _parse_calls(raw: Any, file: str, path: str) -> tuple[ScriptCall, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ScenarioError(file, path, f"must be a list of calls, got {_kind(raw)}")
    calls = []
    for i, call in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(call, Mapping) or not isinstance(call.get("tool"), str):
            raise ScenarioError(file, where, "a call is a mapping with a `tool` name")
        extra = sorted(set(call) - {"tool", "args"})
        if extra:
            raise ScenarioError(file, f"{where}.{extra[0]}", "unknown key; a call has tool, args")
        args = call.get("args", {})
        if args is None:
            args = {}
        if not isinstance(args, Mapping | str):
            raise ScenarioError(file, f"{where}.args", f"must be a mapping, got {_kind(args)}")
        calls.append(ScriptCall(tool=call["tool"], args=args))
    return tuple(calls)


def _check_options(turn: ScriptTurn, file: str, path: str) -> None:
    opts = turn.options
    times = opts.get("times", 1)
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        raise ScenarioError(file, f"{path}.times", f"must be a whole number >= 1, got {times!r}")
    seconds = opts.get("seconds", 5)
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise ScenarioError(file, f"{path}.seconds", f"must be seconds >= 0, got {seconds!r}")
    status = opts.get("status", 500)
    if not isinstance(status, int) or not 500 <= status <= 599:
        raise ScenarioError(file, f"{path}.status", f"must be a 5xx status, got {status!r}")
    if opts.get("style", "tags") not in TEXT_CALL_STYLES:
        raise ScenarioError(file, f"{path}.style", f"must be one of {list(TEXT_CALL_STYLES)}")
    if not isinstance(opts.get("retry_after", 1), int | float | str):
        raise ScenarioError(file, f"{path}.retry_after", "must be seconds or an HTTP date")
    if not isinstance(opts.get("args", {}), Mapping | str):
        raise ScenarioError(file, f"{path}.args", "must be a mapping")
    if not isinstance(opts.get("raw", ""), str) or not isinstance(opts.get("tool", ""), str):
        raise ScenarioError(file, path, "raw and tool must be text")


def _kind(value: Any) -> str:
    return type(value).__name__
