"""What changed: the ``recent_changes`` tool and the "latest change" line of ``describe``.

Kubernetes keeps the previous revisions of a workload's pod template: a Deployment's old
ReplicaSets (scaled to 0, up to revisionHistoryLimit) and a StatefulSet's or DaemonSet's
ControllerRevisions. Comparing the newest two gives the change as `old → new` and its time
(the new revision's creation). Scale changes come from the controllers' events (fetched with
a field selector on the reason); ConfigMaps, Secrets and other config objects from their
metadata (creation and managedFields times), never their values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from agent.analyzers.changes import template_diff
from agent.analyzers.common import Obj, name_of, one_line, owner_of
from agent.analyzers.workloads import owned_replicasets, revision
from agent.reads import RunReads
from agent.render import age, event_time, parse_time
from budo.errors import ClusterError

CONFIG_KINDS = ("configmap", "secret", "service", "ingress", "networkpolicy", "hpa", "pdb",
                "resourcequota", "limitrange", "pvc")
KIND_TITLES = {"configmap": "ConfigMap", "secret": "Secret", "service": "Service",
               "ingress": "Ingress", "networkpolicy": "NetworkPolicy",
               "hpa": "HorizontalPodAutoscaler", "pdb": "PodDisruptionBudget",
               "resourcequota": "ResourceQuota", "limitrange": "LimitRange",
               "pvc": "PersistentVolumeClaim"}
SCALE_REASONS = ("ScalingReplicaSet", "SuccessfulRescale")
MAX_SCALE_EVENTS = 10


def _created(obj: Obj) -> datetime | None:
    return parse_time((obj.get("metadata") or {}).get("creationTimestamp"))


def _when(moment: datetime | None, now: datetime | None) -> str:
    if moment is None:
        return "at an unknown time"
    return f"{age(moment.isoformat(), now)} ago ({moment:%Y-%m-%d %H:%M:%S}Z)"


def _revisions(kind: str, obj: Obj, replicasets: Sequence[Obj], controller_revisions:
               Sequence[Obj]) -> list[tuple[int, datetime | None, Obj, str]]:
    """(revision, created, pod template, object name), newest first."""
    if kind == "deployment":
        return [(revision(rs), _created(rs), (rs.get("spec") or {}).get("template") or {},
                 f"ReplicaSet {name_of(rs)}") for rs in owned_replicasets(obj, replicasets)]
    title = "StatefulSet" if kind == "statefulset" else "DaemonSet"
    mine = [cr for cr in controller_revisions if owner_of(cr) == (title, name_of(obj))]
    out = []
    for cr in mine:
        data = cr.get("data") or {}
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                data = {}
        template = (data.get("spec") or {}).get("template") or {}
        out.append((int(cr.get("revision") or 0), _created(cr), template,
                    f"ControllerRevision {name_of(cr)}"))
    return sorted(out, key=lambda r: r[0], reverse=True)


async def _history(reads: RunReads, kind: str, obj: Obj, namespace: str
                   ) -> list[tuple[int, datetime | None, Obj, str]]:
    if kind == "deployment":
        return _revisions(kind, obj, await reads.list_of("replicaset", namespace) or [], [])
    if kind in ("statefulset", "daemonset"):
        return _revisions(kind, obj, [], await reads.list_of("controllerrevision", namespace) or [])
    return []


def change_lines(kind: str, name: str, history: Sequence[tuple[int, datetime | None, Obj, str]],
                 now: datetime | None, newest_only: bool = True,
                 since: datetime | None = None) -> list[tuple[datetime | None, list[str]]]:
    out = []
    for (new_rev, when, new_t, new_name), (old_rev, _w, old_t, _n) in pairwise(history):
        if since is not None and (when is None or when < since):
            break
        diff = template_diff(old_t, new_t) or ["pod template changed outside the fields "
                                               "budo compares (labels or annotations)"]
        head = (f"{kind} {name} revision {old_rev} → {new_rev}, {_when(when, now)} "
                f"({new_name}):")
        out.append((when, [head, *(f"  {line}" for line in diff)]))
        if newest_only:
            break
    return out


async def latest_change(reads: RunReads, kind: str, obj: Obj, namespace: str,
                        now: datetime | None) -> list[str]:
    """`latest change: deployment x revision 1 → 2, 25m ago (…): ` + the `old → new` lines."""
    try:
        history = await _history(reads, kind, obj, namespace)
    except ClusterError:
        return []
    changes = change_lines(kind, name_of(obj), history, now)
    if changes:
        head, *rest = changes[0][1]
        return [f"latest change: {head}", *rest]
    if history:
        return [f"latest change: none recorded (only revision {history[0][0]}, created "
                f"{_when(history[0][1], now)})"]
    return []


def _last_modified(obj: Obj) -> datetime | None:
    times = [parse_time(f.get("time")) for f in (obj.get("metadata") or {}).get(
        "managedFields") or []]
    known = [t for t in times if t is not None]
    created = _created(obj)
    if created:
        known.append(created)
    return max(known) if known else None


async def recent_changes(reads: RunReads, namespace: str, window: timedelta,
                         now: datetime | None = None) -> tuple[str, list[str]]:
    """Everything that changed in ``namespace`` within ``window``, newest first."""
    now = now or datetime.now(UTC)
    since = now - window
    entries: list[tuple[datetime | None, list[str]]] = []
    notes: list[str] = []
    lists = await reads.many(namespace, "deployment", "statefulset", "daemonset", "replicaset",
                             "controllerrevision", *CONFIG_KINDS)
    for kind in ("deployment", "statefulset", "daemonset"):
        for obj in lists[kind] or []:
            history = _revisions(kind, obj, lists["replicaset"] or [],
                                 lists["controllerrevision"] or [])
            entries += change_lines(kind, name_of(obj), history, now, newest_only=False,
                                    since=since)
            created = _created(obj)
            if created and created >= since:
                entries.append((created, [f"{kind} {name_of(obj)} created "
                                          f"{_when(created, now)}"]))
    for reason in SCALE_REASONS:
        try:
            events = await reads.cluster.list_events(namespace, fields=f"reason={reason}")
        except ClusterError:
            continue
        recent = sorted((e for e in events if event_time(e) >= since), key=event_time,
                        reverse=True)
        for event in recent[:MAX_SCALE_EVENTS]:
            involved = event.get("involvedObject") or {}
            entries.append((event_time(event), [
                f"{str(involved.get('kind', '')).lower()} {involved.get('name')}: "
                f"{one_line(event.get('message'), 200)} ({_when(event_time(event), now)})"]))
        if len(recent) > MAX_SCALE_EVENTS:
            notes.append(f"{len(recent) - MAX_SCALE_EVENTS} older {reason} events not shown")
    for kind in CONFIG_KINDS:
        items = lists[kind]
        if items is None:
            notes.append(f"{KIND_TITLES[kind]}s: not readable with budo's permissions")
            continue
        for obj in items:
            moment = _last_modified(obj)
            if moment is None or moment < since:
                continue
            created = _created(obj)
            verb = "created" if created and created >= since else "modified"
            entries.append((moment, [f"{KIND_TITLES[kind]} {name_of(obj)} {verb} "
                                     f"{_when(moment, now)}{_keys(kind, obj)}"]))
    entries.sort(key=lambda e: e[0] or datetime.min.replace(tzinfo=UTC), reverse=True)
    span = _span(window)
    if not entries:
        text = f"no changes recorded in namespace {namespace} in the last {span}"
    else:
        lines = [f"changes in namespace {namespace} in the last {span}, newest first:"]
        for _moment, block in entries:
            lines.extend(f"- {block[0]}" if i == 0 else f"  {line}"
                         for i, line in enumerate(block))
        text = "\n".join(lines)
    if notes:
        text += "\n(" + "; ".join(notes) + ")"
    findings = [f"latest change: {block[0].rstrip(':')}: {block[1].strip()}"
                for _w, block in entries[:3] if len(block) > 1]
    return text, findings


def _keys(kind: str, obj: Obj) -> str:
    if kind not in ("configmap", "secret"):
        return ""
    keys: Mapping[str, Any] = {**(obj.get("data") or {}), **(obj.get("binaryData") or {})}
    return f"; keys: {', '.join(sorted(keys)) or '<none>'} (values not shown)"


def _span(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"
