"""``get_pods``: the namespace's pods for a model, unhealthy first, bounded however big.

Up to ``FULL_TABLE`` pods every pod gets a row (unhealthy rows first, marked `!`). Beyond
that the healthy pods are summarised per workload and the unhealthy ones are counted per
status, worst first, with up to ``MAX_ROWS`` rows of examples — so every unhealthy pod, or
its count by reason with the worst named, reaches the model before any clipping.

Findings for many pods of one workload failing the same way are stated once, for one
example pod, with the count.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime

from agent.analyzers.common import CRITICAL, Finding, Obj, fit, name_of, owner_of
from agent.analyzers.pods import pod_findings
from agent.reads import RunReads
from agent.render import pod_ready, pod_restarts, pod_status, pod_unhealthy, pods_table
from agent.survey import events_for, namespace_findings
from budo.errors import ClusterError

FULL_TABLE = 60
MAX_ROWS = 25
MAX_POD_EVENT_READS = 6
NOT_READY = "Running (not Ready)"  # kubectl says Running with READY 0/1: say what it means

# Worst first: a pod that cannot start outranks one that restarts, which outranks not Ready.
SEVERITY_ORDER = ("CrashLoopBackOff", "OOMKilled", "Error", "ImagePullBackOff", "ErrImagePull",
                  "InvalidImageName", "CreateContainerConfigError", "CreateContainerError",
                  "RunContainerError", "StartError", "Init:", "Evicted", "Pending",
                  "ContainerCreating", "Terminating", "Unknown", NOT_READY, "Running")


def _status(pod: Obj) -> str:
    """kubectl's STATUS, except that a Running pod whose containers are not all Ready says
    so: in a summary by status, "Running 100" among the unhealthy would hide why."""
    status = pod_status(pod)
    ready, total = pod_ready(pod)
    return NOT_READY if status == "Running" and ready < total else status


def _rank(status: str) -> int:
    for i, prefix in enumerate(SEVERITY_ORDER):
        if status.startswith(prefix):
            return i
    return len(SEVERITY_ORDER) - 1


def _workload(pod: Obj) -> str:
    owner = owner_of(pod)
    if owner is None:
        return f"pod {name_of(pod)}"
    kind, name = owner
    if kind == "ReplicaSet":  # <deployment>-<pod-template-hash>
        hash_ = (pod.get("metadata") or {}).get("labels", {}).get("pod-template-hash")
        if hash_ and name.endswith("-" + hash_):
            return f"deployment {name[: -len(hash_) - 1]}"
    return f"{kind.lower()} {name}"


async def get_pods_result(reads: RunReads, namespace: str, now: datetime | None = None
                          ) -> tuple[str, list[str]]:
    pods = await reads.cluster.list_pods(namespace)
    if not pods:
        return (f"no pods in namespace {namespace!r} (check the name with list_namespaces)", [])
    # Unhealthy: not Running and Ready, or carrying a fault while up (a recent OOM kill).
    unhealthy = [p for p in pods if pod_unhealthy(p) or (_restarts(p) and pod_findings(p, ()))]
    # Group failing pods by (workload, status): one example speaks for its group.
    groups: dict[tuple[str, str], list[Obj]] = defaultdict(list)
    for pod in unhealthy:
        groups[(_workload(pod), _status(pod))].append(pod)
    ordered = sorted(groups.items(), key=lambda kv: (_rank(kv[0][1]), -len(kv[1]), kv[0]))
    examples = [members[0] for _, members in ordered]
    events = await events_for(reads, namespace,
                              [name_of(p) for p in examples[:MAX_POD_EVENT_READS]])
    found: list[str] = []
    for (workload, status), members in ordered:
        facts = pod_findings(members[0], events)
        if not facts:
            continue
        if len(members) > 1:
            lead = (f"{len(members)} pods of {workload} are {status}; e.g. ")
            facts = [Finding(lead + f, getattr(f, "severity", CRITICAL)) for f in facts]
        found += facts
    found += await _crash_lines(reads, namespace, ordered)
    # Healthy pods can still carry a fault (a probe on an undeclared port): one per workload.
    seen: set[str] = {w for w, _s in groups}
    for pod in pods:
        if _workload(pod) not in seen:
            seen.add(_workload(pod))
            found += pod_findings(pod, ())
    found += await namespace_findings(reads, namespace, pods, now)
    flagged = {name_of(p) for p in unhealthy}
    header = (f"namespace {namespace}: {len(pods)} pods, {len(unhealthy)} unhealthy"
              + (" (marked !, listed first)" if unhealthy else ""))
    if len(pods) <= FULL_TABLE:
        body = pods_table(_unhealthy_first(pods, flagged), flagged, now, sort=False)
    else:
        body = _summary(pods, unhealthy, ordered, flagged, now)
    return f"{header}\n{body}", fit(found)


def _unhealthy_first(pods: Sequence[Obj], flagged: set[str]) -> list[Obj]:
    return sorted(pods, key=lambda p: (name_of(p) not in flagged, _rank(_status(p)),
                                       name_of(p)))


def _summary(pods: Sequence[Obj], unhealthy: Sequence[Obj],
             ordered: list[tuple[tuple[str, str], list[Obj]]], flagged: set[str],
             now: datetime | None) -> str:
    by_status = Counter(_status(p) for p in unhealthy)
    lines = []
    if unhealthy:
        counts = ", ".join(f"{status} {n}" for status, n in
                           sorted(by_status.items(), key=lambda kv: (_rank(kv[0]), -kv[1])))
        lines.append(f"unhealthy by status (worst first): {counts}")
        lines.append("unhealthy by workload:")
        for (workload, status), members in ordered[:MAX_ROWS]:
            worst = max(members, key=lambda p: _restarts(p))
            lines.append(f"  {workload}: {len(members)} {status} (e.g. {name_of(worst)}, "
                         f"restarts {pod_restarts(worst, now)})")
        if len(ordered) > MAX_ROWS:
            rest = sum(len(m) for _, m in ordered[MAX_ROWS:])
            lines.append(f"  … {len(ordered) - MAX_ROWS} more groups ({rest} pods)")
        examples = [members[0] for _, members in ordered][:MAX_ROWS]
        lines.append("example unhealthy pods:")
        lines.append(pods_table(examples, flagged, now, sort=False))
    healthy: dict[str, int] = Counter(_workload(p) for p in pods if name_of(p) not in flagged)
    shown = ", ".join(f"{w} {n}" for w, n in sorted(healthy.items(), key=lambda kv: -kv[1])[:40])
    more = f", … {len(healthy) - 40} more workloads" if len(healthy) > 40 else ""
    lines.append(f"healthy (Running and Ready) by workload: {shown or 'none'}{more}")
    lines.append("(large namespace: healthy pods summarised; describe a workload or pass its "
                 "pod to logs for detail)")
    return "\n".join(lines)


def _restarts(pod: Obj) -> int:
    return sum(int(cs.get("restartCount") or 0) for cs in
               (pod.get("status") or {}).get("containerStatuses") or [])




CRASH_GROUPS = 3
CRASH_TAIL = 20
LAST_WORDS = re.compile(r"fatal|panic|error|exception|failed|cannot|can't|denied|not found|"
                        r"no such|refused|invalid|missing|exec format", re.I)


async def _crash_lines(reads: RunReads, namespace: str,
                       ordered: list[tuple[tuple[str, str], list[Obj]]]) -> list[Finding]:
    """The last telling line a crashed container printed (its previous log, 20 lines) for
    the first few crash-looping groups: what kubectl describe cannot show, and usually the
    cause ("exec format error", "missing setting X", a stack trace's last line)."""
    targets: list[tuple[Obj, str]] = []
    for _key, members in ordered:
        if len(targets) >= CRASH_GROUPS:
            break
        pod = members[0]
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            term = (cs.get("lastState") or {}).get("terminated") or {}
            if term and term.get("exitCode") not in (0, None) and \
                    term.get("reason") != "OOMKilled" and cs.get("restartCount"):
                targets.append((pod, str(cs.get("name"))))
                break

    async def last_words(pod: Obj, container: str) -> Finding | None:
        try:
            text = await reads.cluster.read_log(namespace, name_of(pod), container=container,
                                                tail_lines=CRASH_TAIL, previous=True)
        except ClusterError:
            return None
        lines = [line.strip() for line in text.splitlines() if LAST_WORDS.search(line)]
        if not lines:
            return None
        line = lines[-1][:300]
        meaning = ""
        if "exec format error" in line:
            meaning = (" — the binary is built for another CPU architecture than the node's")
        return Finding(f"pod {name_of(pod)} container {container} printed before it exited: "
                       f"{line}{meaning}", CRITICAL)

    said = await asyncio.gather(*(last_words(p, c) for p, c in targets))
    return [f for f in said if f is not None]
