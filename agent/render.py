"""Compact text for the model: tables and folded event lists, not JSON.

A model reads a ``kubectl get``-style table for a fraction of the tokens of the object JSON,
and the unhealthy rows are marked so it does not have to infer health from five columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from agent.protocols import Obj


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def age(value: object, now: datetime | None = None) -> str:
    """`45s`, `12m`, `3h`, `2d` since an RFC3339 time; `?` when absent."""
    moment = parse_time(value)
    if moment is None:
        return "?"
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit == "d" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces (the last column is not padded)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [str(c).ljust(widths[i]) if i < len(row) - 1 else str(c)
                 for i, c in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


# --- pods -------------------------------------------------------------------------------------


def pod_status(pod: Obj) -> str:
    """The STATUS column as kubectl shows it: the most telling container reason wins."""
    meta, status = pod.get("metadata", {}), pod.get("status", {})
    if meta.get("deletionTimestamp"):
        return "Terminating"
    for cs in status.get("initContainerStatuses") or []:
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason") not in (None, "PodInitializing"):
            return f"Init:{state['waiting']['reason']}"
        term = state.get("terminated")
        if term and term.get("exitCode", 0) != 0:
            return f"Init:{term.get('reason', 'Error')}"
    reason = ""
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated", {}).get("reason") and not reason:
            reason = state["terminated"]["reason"]
    if reason:
        return reason
    if status.get("reason"):
        return str(status["reason"])
    return str(status.get("phase") or "Unknown")


def pod_ready(pod: Obj) -> tuple[int, int]:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    total = len(pod.get("spec", {}).get("containers") or []) or len(statuses)
    return sum(1 for cs in statuses if cs.get("ready")), total


def pod_restarts(pod: Obj, now: datetime | None = None) -> str:
    """`5 (Error exit 1, 3m ago)`: the count plus the last termination of the most-restarted
    container, which is what explains a restart count."""
    statuses = pod.get("status", {}).get("containerStatuses") or []
    total = sum(int(cs.get("restartCount") or 0) for cs in statuses)
    worst = max(statuses, key=lambda cs: int(cs.get("restartCount") or 0), default=None)
    term = ((worst or {}).get("lastState") or {}).get("terminated") if worst else None
    if not term:
        return str(total)
    when = age(term.get("finishedAt"), now)
    ago = f", {when} ago" if when != "?" else ""
    return f"{total} ({term.get('reason', '?')} exit {term.get('exitCode', '?')}{ago})"


def pod_unhealthy(pod: Obj) -> bool:
    phase = pod.get("status", {}).get("phase")
    if phase == "Succeeded":
        return False
    ready, total = pod_ready(pod)
    return phase != "Running" or ready < total or pod_status(pod) != "Running"


def pods_table(pods: Sequence[Obj], flagged: set[str], now: datetime | None = None,
               sort: bool = True) -> str:
    """One row per pod (by name unless ``sort`` is False); rows of pods in ``flagged``
    start with `!`."""
    rows = []
    ordered = sorted(pods, key=lambda p: p.get("metadata", {}).get("name", "")) if sort else pods
    for pod in ordered:
        name = pod.get("metadata", {}).get("name", "?")
        ready, total = pod_ready(pod)
        rows.append([
            "!" if name in flagged else " ", name, f"{ready}/{total}", pod_status(pod),
            pod_restarts(pod, now), age(pod.get("metadata", {}).get("creationTimestamp"), now),
            pod.get("spec", {}).get("nodeName") or "<none>",
        ])
    return table(["", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "NODE"], rows)


# --- events -------------------------------------------------------------------------------------


def event_time(event: Obj) -> datetime:
    for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
        moment = parse_time(event.get(key))
        if moment:
            return moment
    series = parse_time((event.get("series") or {}).get("lastObservedTime"))
    created = parse_time(event.get("metadata", {}).get("creationTimestamp"))
    return series or created or datetime.min.replace(tzinfo=UTC)


def fold_events(events: Sequence[Obj]) -> list[dict[str, Any]]:
    """Duplicates (same type, reason, object and message) folded into one entry with the summed
    count and the newest time; Warnings first, then newest first."""
    folded: dict[tuple[str, ...], dict[str, Any]] = {}
    for event in events:
        involved = event.get("involvedObject") or {}
        key = (
            str(event.get("type") or "Normal"), str(event.get("reason") or ""),
            f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
            " ".join(str(event.get("message") or "").split()),
        )
        count = int(event.get("count") or (event.get("series") or {}).get("count") or 1)
        when = event_time(event)
        entry = folded.setdefault(key, {"type": key[0], "reason": key[1], "object": key[2],
                                         "message": key[3], "count": 0, "last": when})
        entry["count"] += count
        entry["last"] = max(entry["last"], when)
    return sorted(folded.values(),
                  key=lambda e: (e["type"] != "Warning", -e["last"].timestamp()))


def events_text(events: Sequence[Obj], now: datetime | None = None, limit: int = 40) -> str:
    entries = fold_events(events)
    if not entries:
        return "no events"
    rows = [[age(e["last"].isoformat(), now), e["type"], e["reason"], e["object"],
             f"x{e['count']}" if e["count"] > 1 else "", e["message"][:300]]
            for e in entries[:limit]]
    text = table(["LAST", "TYPE", "REASON", "OBJECT", "COUNT", "MESSAGE"], rows)
    if len(entries) > limit:
        text += f"\n({len(entries) - limit} older entries not shown; filter by involved_object)"
    return text


def involves(event: Obj, name: str, kind: str | None = None) -> bool:
    """The event is about ``name`` or one of its generated children (`name-…`)."""
    involved = event.get("involvedObject") or {}
    other = str(involved.get("name", ""))
    if kind and str(involved.get("kind", "")).lower() != kind.lower():
        return other.startswith(name + "-")
    return other == name or other.startswith(name + "-")
