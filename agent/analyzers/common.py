"""What every analyzer shares: the Finding type, severities, an event index built once, and
name/selector helpers. Analyzers are pure functions from API objects (plain dicts, camelCase
keys) to findings, so they are tested without a server and stay linear: events are indexed
once per tool call, never scanned once per object.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Obj = Mapping[str, Any]

CRITICAL = 3   # the API says this object cannot work as configured
WARNING = 2    # degraded or at a limit
INFO = 1       # worth knowing, not a fault by itself


class Finding(str):
    """A finding is the sentence the model reads, carrying its severity for ordering."""

    severity: int

    def __new__(cls, text: str, severity: int = WARNING) -> Finding:
        obj = super().__new__(cls, " ".join(text.split()))
        obj.severity = severity
        return obj


def ranked(findings: Iterable[str], limit: int | None = None) -> list[str]:
    """Most severe first (stable), duplicates dropped: clipping a result never drops the
    worst finding, because the loop clips from the end."""
    seen: set[str] = set()
    unique = []
    for f in findings:
        if f not in seen:
            seen.add(f)
            unique.append(f)
    unique.sort(key=lambda f: -getattr(f, "severity", WARNING))
    return unique[:limit] if limit is not None else unique


# The loop clips a long result to head + tail and keeps the tail's 40 % (3,200 of the default
# 8,000 characters); FINDINGS come last, so keeping them within this budget keeps them all.
FINDINGS_BUDGET = 2800


def fit(findings: Iterable[str], budget: int = FINDINGS_BUDGET) -> list[str]:
    """``ranked`` findings cut to ``budget`` characters (as printed, `FINDINGS: ` included),
    most severe kept; a last line counts what was left out."""
    kept: list[str] = []
    used = 0
    ordered = ranked(findings)
    for i, f in enumerate(ordered):
        cost = len(f) + 11
        if used + cost > budget and kept:
            rest = ordered[i:]
            kept.append(Finding(f"{len(rest)} more, less severe finding(s) not shown; "
                                "describe the objects named above for them", INFO))
            break
        kept.append(f)
        used += cost
    return kept


def name_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", "?"))


def labels_of(obj: Obj) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def one_line(text: object, limit: int = 300) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class EventIndex:
    """The namespace's (or one object's) events, indexed once by involved object name."""

    def __init__(self, events: Sequence[Obj] = ()) -> None:
        self._by_name: dict[str, list[Obj]] = defaultdict(list)
        for event in events:
            involved = event.get("involvedObject") or event.get("regarding") or {}
            self._by_name[str(involved.get("name", ""))].append(event)

    def all(self) -> list[Obj]:
        return [e for events in self._by_name.values() for e in events]

    def about(self, name: str, reason: str | None = None,
              kind: str | None = None) -> list[Obj]:
        found = self._by_name.get(name, [])
        if kind is not None:
            found = [e for e in found
                     if str((e.get("involvedObject") or {}).get("kind", "")).lower() == kind]
        if reason is not None:
            found = [e for e in found if e.get("reason") == reason]
        return sorted(found, key=_event_key, reverse=True)

    def message(self, name: str, reason: str, kind: str | None = None) -> str:
        """The newest message of that reason about ``name``, or ""."""
        found = self.about(name, reason, kind)
        return one_line(found[0].get("message")) if found else ""


def _event_key(event: Obj) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime")
               or event.get("firstTimestamp") or "")


def as_index(events: Sequence[Obj] | EventIndex) -> EventIndex:
    return events if isinstance(events, EventIndex) else EventIndex(events)


# --- names ----------------------------------------------------------------------------------


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute all cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def closest(name: str, candidates: Iterable[str]) -> tuple[str, int] | None:
    """The candidate with the smallest edit distance to ``name`` (ties: alphabetical)."""
    ranked_ = sorted((edit_distance(name, c), c) for c in candidates)
    return (ranked_[0][1], ranked_[0][0]) if ranked_ else None


def near_hint(name: str, candidates: Iterable[str], what: str) -> str:
    """`; closest Service is 'x' (edit distance 2)` when one is near, else a plain note."""
    pool = list(candidates)
    near = closest(name, pool)
    if near and near[1] <= max(2, len(name) // 3):
        return f"; closest {what} is {near[0]!r} (edit distance {near[1]})"
    return f"; no {what} has a similar name" if pool else f"; there is no {what} at all"


# --- selectors --------------------------------------------------------------------------------


def selector_text(selector: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def selects(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels + matchExpressions) applied to ``labels``; an empty
    selector selects everything, as in NetworkPolicy and PDB."""
    if not selector:
        return True
    if not matches(labels, selector.get("matchLabels") or {}):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        have = labels.get(str(key))
        if op == "In" and have not in values:
            return False
        if op == "NotIn" and have in values:
            return False
        if op == "Exists" and have is None:
            return False
        if op == "DoesNotExist" and have is not None:
            return False
    return True


def owner_of(obj: Obj) -> tuple[str, str] | None:
    """(kind, name) of the controlling owner."""
    for owner in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if owner.get("controller", True):
            return str(owner.get("kind")), str(owner.get("name"))
    return None


# --- quantities -------------------------------------------------------------------------------

_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
           "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9,
           "T": 1e12, "P": 1e15, "E": 1e18}


def quantity(value: object) -> float | None:
    """A resource.Quantity string as a number (`500m` -> 0.5, `1Gi` -> 1073741824)."""
    text = str(value or "").strip()
    if not text:
        return None
    for suffix in sorted(_SUFFIX, key=len, reverse=True):
        if text.endswith(suffix):
            try:
                return float(text[: -len(suffix)]) * _SUFFIX[suffix]
            except ValueError:
                return None
    try:
        return float(text)
    except ValueError:
        return None
