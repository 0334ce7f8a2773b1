"""Short text for humans, one way each: cut to a length, flatten to one line, cut in the
middle, tool arguments as ``k=v``, labels as ``k=v,k=v``, outside text made safe for a
terminal. Used by the agent, the Slack and
terminal renderings and the audit CLI, so a tool call reads the same everywhere."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any


def cut(text: str, limit: int, marker: str = "…") -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``marker`` when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(marker))] + marker


def one_line(text: str, limit: int) -> str:
    """Whitespace runs (newlines included) as one space, then ``cut``: for error snippets
    and table cells."""
    return cut(" ".join(text.split()), limit)


def cut_middle(line: str, width: int) -> str:
    """Cut a long line in the middle: log lines put the error text last, JSON keys first."""
    if len(line) <= width:
        return line
    head = width * 2 // 5
    return f"{line[:head]} … {line[-(width - head - 3):]}"


def format_args(args: Mapping[str, Any]) -> str:
    """Tool arguments as one line, in the order given: ``namespace=shop, previous=true``
    (strings as they are, anything else as JSON)."""
    return ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v, default=str)}"
                     for k, v in args.items())


def labels(mapping: Mapping[str, Any] | None) -> str:
    """A label map or selector as Kubernetes prints it: ``app=web,tier=front``, sorted."""
    return ",".join(f"{k}={v}" for k, v in sorted((mapping or {}).items()))


# What a terminal obeys instead of showing: the C0 controls (ESC opens CSI/OSC/DCS sequences —
# cursor moves, screen clears, OSC 8 hyperlinks, OSC 52 clipboard writes; CR and BS overwrite
# what is already on the line; BEL ends an OSC), DEL, the C1 controls (on terminals that take
# 8-bit controls 0x9b alone is CSI and 0x9d OSC), and the bidirectional overrides/isolates and
# line separators that reorder or split what is shown. Ordinary Unicode passes untouched.
_OTHER_CONTROLS = r"\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
_CONTROL = re.compile(rf"[\x00-\x1f{_OTHER_CONTROLS}]")
_CONTROL_BUT_NEWLINE = re.compile(rf"[\x00-\x09\x0b-\x1f{_OTHER_CONTROLS}]")


def _shown(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code == 0x09:
        return " "                    # a tab only moves forward: a space says the same
    if code < 0x20:
        return chr(0x2400 + code)     # the Unicode control pictures: ␛ ␍ ␈ ␇ ␊ …
    if code == 0x7F:
        return "\u2421"               # ␡
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def terminal_safe(text: str, *, newlines: bool = False) -> str:
    """``text`` from outside (cluster, model, audit DB) made safe to print on a terminal: every
    control character is rendered visibly (ESC as ␛, CR as ␍, C1 and bidi controls as
    ``\\x9b``/``\\u202e``), so no escape sequence, carriage return or backspace in a log line
    can fake a prompt, a link or a verdict. ``newlines=True`` keeps line breaks (CRLF → LF)."""
    if newlines:
        return _CONTROL_BUT_NEWLINE.sub(_shown, text.replace("\r\n", "\n"))
    return _CONTROL.sub(_shown, text)
