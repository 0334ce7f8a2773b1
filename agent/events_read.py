"""Events about one object and its children, fetched with field selectors.

A busy namespace holds tens of MB of events; the model asking about one workload should cost
a few small requests: the object itself, its newest ReplicaSet or Jobs, and its pods
(unhealthy first, at most ``MAX_CHILDREN``), each by ``involvedObject.name``.
"""

from __future__ import annotations

import asyncio

from agent.analyzers.common import name_of, owner_of
from agent.analyzers.workloads import owned_replicasets
from agent.kube import label_selector
from agent.protocols import Obj
from agent.reads import RunReads
from agent.render import pod_unhealthy

MAX_CHILDREN = 10
WORKLOADS = ("deployment", "statefulset", "daemonset", "replicaset", "job", "cronjob")


async def events_about(reads: RunReads, namespace: str, involved: str
                       ) -> tuple[list[Obj], str]:
    """(events, ` for <what>` scope text)."""
    name = involved.split("/")[-1].strip()
    names = [name]
    note = ""
    for kind in WORKLOADS:
        items = await reads.list_of(kind, namespace)
        obj = next((o for o in items or [] if name_of(o) == name), None)
        if obj is None:
            continue
        children: list[str] = []
        if kind == "deployment":
            replicasets = await reads.list_of("replicaset", namespace) or []
            children += [name_of(rs) for rs in owned_replicasets(obj, replicasets)[:2]]
        if kind == "cronjob":
            jobs = [j for j in await reads.list_of("job", namespace) or []
                    if owner_of(j) == ("CronJob", name)]
            children += [name_of(j) for j in jobs[-3:]]
        selector = (obj.get("spec") or {}).get("selector")
        if kind == "job":
            selector = {"matchLabels": {"job-name": name}}
        if selector and kind != "cronjob":
            pods = await reads.cluster.list_pods(namespace, label_selector(selector))
            pods.sort(key=lambda p: (not pod_unhealthy(p), name_of(p)))
            children += [name_of(p) for p in pods[:MAX_CHILDREN]]
            if len(pods) > MAX_CHILDREN:
                note = (f"; events of {len(pods) - MAX_CHILDREN} more healthy-first-ordered "
                        "pods not read: ask for one pod by name")
        names += children
        break
    batches = await asyncio.gather(*(
        reads.cluster.list_events(namespace, fields=f"involvedObject.name={one}")
        for one in dict.fromkeys(names)))
    events: list[Obj] = [e for batch in batches for e in batch]
    scope = f" for {involved}" + (f" and {len(names) - 1} related objects" if len(names) > 1
                                  else "") + note
    return events, scope
