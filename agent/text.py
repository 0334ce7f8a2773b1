"""Short text for humans, one way each: cut to a length, flatten to one line, cut in the
middle, tool arguments as ``k=v``, labels as ``k=v,k=v``. Used by the agent, the Slack and
terminal renderings and the audit CLI, so a tool call reads the same everywhere."""

from __future__ import annotations

import json
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
