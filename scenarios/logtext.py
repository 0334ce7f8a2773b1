"""Scenario log text: composing literal text and generators, and parsing lines back.

A stored log is plain text, one line per entry, each line optionally led by the kubelet's
RFC3339Nano timestamp and a space (what `kubectl logs --timestamps` shows).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

from scenarios.times import TIMESTAMP, fmt_nano, parse_duration, parse_time, parse_timestamp


def compose(value: Any, now: datetime) -> str:
    """Text from a string, a generator mapping, or a list of both (sorted by time if all
    lines carry a timestamp, so noise and hand-written lines interleave)."""
    parts = value if isinstance(value, list) else [value]
    lines: list[str] = []
    for part in parts:
        text = part if isinstance(part, str) else generate(part, now)
        lines.extend(line for line in text.splitlines() if line.strip() or line)
    stamped = [split_timestamp(line) for line in lines]
    if len(parts) > 1 and lines and all(moment is not None for moment, _ in stamped):
        order = sorted(range(len(lines)), key=lambda i: stamped[i][0])  # type: ignore[arg-type,return-value]
        lines = [lines[i] for i in order]
    return "\n".join(lines) + ("\n" if lines else "")


def generate(gen: dict[str, Any], now: datetime) -> str:
    count = gen["repeat"]
    step = parse_duration(gen.get("step", "1s")) or timedelta(seconds=1)
    if "start" in gen:
        start = parse_time(gen["start"], now) or now
    else:
        end = parse_time(gen.get("end", "now"), now) or now
        start = end - step * (count - 1)
    templates = gen["lines"]
    out = []
    for i in range(count):
        moment = start + step * i
        stamp = fmt_nano(moment)
        seed = hashlib.sha256(f"{templates[i % len(templates)]}{i}".encode()).digest()
        line = (templates[i % len(templates)]
                .replace("{ts}", stamp)
                .replace("{i}", str(i))
                .replace("{uuid}", str(uuid.UUID(bytes=seed[:16])))
                .replace("{n}", str(int.from_bytes(seed[16:18], "big") % 999 + 1))
                .replace("{id}", seed[18:22].hex()))
        out.append(f"{stamp} {line}")
    return "\n".join(out)


def split_timestamp(line: str) -> tuple[datetime | None, str]:
    """(kubelet time, rest) for a line led by a timestamp and a space; (None, line) if not."""
    head, sep, rest = line.partition(" ")
    if sep and TIMESTAMP.fullmatch(head):
        return parse_timestamp(head), rest
    return None, line
