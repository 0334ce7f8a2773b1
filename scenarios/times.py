"""Time parsing and formatting shared by the loader and the replay server.

Scenario times are absolute RFC3339 UTC or relative to the scenario's `now` (`-3h`, `+5m`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")
# An RFC3339 UTC timestamp as Kubernetes and the kubelet write them (with or without fraction).
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z")


def parse_duration(text: str) -> timedelta | None:
    """`1h30m` -> timedelta; None when it is not a duration."""
    match = _DURATION.match(text.strip())
    if not match or not any(match.groups()):
        return None
    days, hours, minutes, seconds = match.groups()
    return timedelta(
        days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0),
        seconds=float(seconds or 0),
    )


def parse_timestamp(text: str) -> datetime | None:
    """An RFC3339 UTC timestamp (nanoseconds truncated to micro) or None."""
    text = text.strip()
    if not TIMESTAMP.fullmatch(text):
        return None
    # The pattern fixed every field's place; datetime() still rejects month 13 and the like.
    # (Sliced by hand: strptime costs ten times as much, and replays shift ~10^5 of these.)
    fraction = text[20:-1]
    return datetime(int(text[:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]),
                    int(text[14:16]), int(text[17:19]),
                    int(fraction[:6].ljust(6, "0")) if fraction else 0, tzinfo=UTC)


def parse_time(value: object, now: datetime) -> datetime | None:
    """Absolute RFC3339 or `-3h`/`+5m` relative to now; None when unparseable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text in ("now", "-0s", "0s"):
        return now
    if text[:1] in "+-":
        delta = parse_duration(text[1:])
        if delta is None:
            return None
        return now - delta if text[0] == "-" else now + delta
    return parse_timestamp(text)


def fmt(moment: datetime) -> str:
    """Kubernetes object time: seconds precision."""
    m = moment.astimezone(UTC)
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"


def fmt_nano(moment: datetime) -> str:
    """Kubelet log time: RFC3339Nano, nine digits."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def shift_timestamps(text: str, offset: timedelta) -> str:
    """Every RFC3339 timestamp in text moved by offset, keeping its precision."""

    def move(match: re.Match[str]) -> str:
        original = match.group(0)
        moment = parse_timestamp(original)
        if moment is None:
            return original
        moved = moment + offset
        if "." not in original:
            return fmt(moved)
        digits = len(original) - 21  # after "YYYY-MM-DDTHH:MM:SS." and before "Z"
        fraction = f"{moved.microsecond:06d}000"
        return f"{fmt(moved)[:-1]}.{fraction[:digits]}Z"

    return TIMESTAMP.sub(move, text)
