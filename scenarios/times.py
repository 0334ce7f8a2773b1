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
    base, _, fraction = text[:-1].partition(".")
    moment = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    if fraction:
        moment += timedelta(microseconds=int(fraction[:6].ljust(6, "0")))
    return moment


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
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        digits = len(original.split(".")[1]) - 1
        fraction = moved.strftime("%f") + "000"
        return moved.strftime("%Y-%m-%dT%H:%M:%S.") + fraction[:digits] + "Z"

    return TIMESTAMP.sub(move, text)
