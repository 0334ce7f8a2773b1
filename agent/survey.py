"""Namespace-wide findings: every analyzer that needs more than one object, run over the
run's cached lists (one list per kind per run) so the model learns about a quota, a PVC,
a stuck rollout, an Ingress or a NetworkPolicy without having to think of asking.

Linear: each list is walked once; Services are matched to pods through a dict of label
sets, not pod-by-Service loops over the whole namespace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime

from agent.analyzers import capacity, network, storage, workloads
from agent.analyzers.common import (
    CRITICAL,
    EventIndex,
    Finding,
    Obj,
    labels_of,
    matches,
    name_of,
)
from agent.reads import RunReads
from budo.errors import ClusterError

WORKLOAD_KINDS = ("deployment", "statefulset", "daemonset")
NAMESPACE_KINDS = ("service", "endpoints", "deployment", "replicaset", "statefulset",
                   "daemonset", "job", "cronjob", "pvc", "resourcequota", "limitrange", "hpa",
                   "pdb", "ingress", "networkpolicy", "configmap")


def templates(lists: Mapping[str, Sequence[Obj] | None]) -> list[tuple[str, Obj, Obj]]:
    """(``kind name``, the workload object, its pod template) for every workload kind."""
    out: list[tuple[str, Obj, Obj]] = []
    for kind in WORKLOAD_KINDS:
        for obj in lists.get(kind) or []:
            out.append((f"{kind} {name_of(obj)}", obj, (obj.get("spec") or {}).get(
                "template") or {}))
    for cj in lists.get("cronjob") or []:
        job = ((cj.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}
        out.append((f"cronjob {name_of(cj)}", cj, job.get("template") or {}))
    return out


def config_data(configmaps: Sequence[Obj] | None) -> dict[str, dict[str, str]]:
    return {name_of(cm): dict(cm.get("data") or {}) for cm in configmaps or []}


async def events_for(reads: RunReads, namespace: str, names: Sequence[str]) -> EventIndex:
    """Events about a few named objects, each fetched with a field selector (bounded: a
    busy namespace holds tens of MB of events)."""
    async def one(name: str) -> Sequence[Obj]:
        try:
            return await reads.cluster.list_events(namespace,
                                                   fields=f"involvedObject.name={name}")
        except ClusterError:  # events are a bonus; the status already speaks
            return []

    batches = await asyncio.gather(*(one(n) for n in dict.fromkeys(names)))
    return EventIndex([e for batch in batches for e in batch])


async def namespace_findings(reads: RunReads, namespace: str, pods: Sequence[Obj],
                             now: datetime | None = None, max_event_reads: int = 6
                             ) -> list[Finding]:
    lists = await reads.many(namespace, *NAMESPACE_KINDS)
    cluster_lists = await reads.many(None, "node", "storageclass")
    found: list[Finding] = []
    services = lists["service"] or []
    endpoints = lists["endpoints"]
    nodes = cluster_lists["node"] or []

    # Which objects need their events read: the failing ones only.
    want_events: list[str] = []
    for sts in lists["statefulset"] or []:
        if int((sts.get("status") or {}).get("readyReplicas") or 0) < int(
                (sts.get("spec") or {}).get("replicas", 1) or 0):
            want_events.append(name_of(sts))
    for ds in lists["daemonset"] or []:
        st = ds.get("status") or {}
        if int(st.get("numberReady") or 0) < int(st.get("desiredNumberScheduled") or 0):
            want_events.append(name_of(ds))
    pending_pvcs = [p for p in lists["pvc"] or []
                    if (p.get("status") or {}).get("phase", "Pending") == "Pending"]
    want_events += [name_of(p) for p in pending_pvcs]
    for rs in lists["replicaset"] or []:
        spec_n = int((rs.get("spec") or {}).get("replicas") or 0)
        if spec_n and int((rs.get("status") or {}).get("replicas") or 0) < spec_n:
            want_events.append(name_of(rs))
    events = await events_for(reads, namespace, want_events[:max_event_reads])

    replicasets = lists["replicaset"] or []
    for d in lists["deployment"] or []:
        found += workloads.deployment_findings(d, replicasets, events)
    for sts in lists["statefulset"] or []:
        found += workloads.statefulset_findings(sts, events)
    for ds in lists["daemonset"] or []:
        found += workloads.daemonset_findings(ds, events)
    jobs = lists["job"] or []
    for job in jobs:
        owner = (job.get("metadata") or {}).get("ownerReferences") or []
        if not any(o.get("kind") == "CronJob" for o in owner):
            found += workloads.job_findings(job)
    for cj in lists["cronjob"] or []:
        found += workloads.cronjob_findings(cj, jobs, now)

    # Services: match each Service's selector against the distinct label sets of the pods.
    by_labels: dict[tuple[tuple[str, str], ...], list[Obj]] = {}
    for pod in pods:
        by_labels.setdefault(tuple(sorted(labels_of(pod).items())), []).append(pod)
    ep_by_name = {name_of(e): e for e in endpoints or []}
    for svc in services:
        selector = (svc.get("spec") or {}).get("selector") or {}
        if not selector or endpoints is None:
            continue
        selected = [p for key, group in by_labels.items() if matches(dict(key), selector)
                    for p in group]
        representatives = [group[0] for group in by_labels.values()]
        pool = selected or representatives
        found += network.service_findings(svc, ep_by_name.get(name_of(svc)), pool)

    shapes = templates(lists)
    config = config_data(lists["configmap"])
    callers: list[tuple[str, Obj, Obj]] = []
    svc_by_name = {name_of(s): s for s in services}
    for who, _obj, template in shapes:
        containers = (template.get("spec") or {}).get("containers") or []
        found += network.env_host_findings(who, containers, services, namespace, endpoints,
                                           config)
        for c in containers:
            for _var, value, _origin in network._addresses(c, config):
                target = network.env_target(value, namespace)
                if target and target[0] in svc_by_name:
                    callers.append((who, template, svc_by_name[target[0]]))
    if lists["networkpolicy"]:
        found += network.network_policy_findings(lists["networkpolicy"], callers)
    for ing in lists["ingress"] or []:
        found += network.ingress_findings(ing, services, endpoints, None)

    for pvc in lists["pvc"] or []:
        found += storage.pvc_findings(pvc, cluster_lists["storageclass"], events)
    for quota in lists["resourcequota"] or []:
        found += capacity.quota_findings(quota)
    for lr in lists["limitrange"] or []:
        found += capacity.limitrange_findings(lr, [(who, t) for who, _o, t in shapes])
    targets = {(_kind_word(k), name_of(o)) for k in WORKLOAD_KINDS for o in lists.get(k) or []}
    targets |= {("ReplicaSet", name_of(r)) for r in replicasets}
    for hpa in lists["hpa"] or []:
        known = None if lists["deployment"] is None else targets
        found += capacity.hpa_findings(hpa, known)
    draining = any((n.get("spec") or {}).get("unschedulable") for n in nodes)
    for pdb in lists["pdb"] or []:
        found += capacity.pdb_findings(pdb, draining)
    found += await cluster_dns_findings(reads, namespace)
    hosting = {(p.get("spec") or {}).get("nodeName") for p in pods}
    pending = any((p.get("status") or {}).get("phase") == "Pending" for p in pods)
    for node in nodes:
        facts = capacity.node_findings(node)
        if name_of(node) in hosting or pending:
            found += facts
        else:
            found += [f for f in facts if "NotReady" in f]
    return found


def _kind_word(kind: str) -> str:
    return {"statefulset": "StatefulSet", "daemonset": "DaemonSet",
            "deployment": "Deployment"}.get(kind, kind)



DNS_NAMESPACE, DNS_SELECTOR = "kube-system", "k8s-app=kube-dns"


async def cluster_dns_findings(reads: RunReads, namespace: str) -> list[Finding]:
    """Every pod resolves names through the cluster DNS in kube-system: when its pods are not
    ready, every namespace breaks with healthy-looking pods. One label-selected list, and only
    where budo may read kube-system (otherwise nothing is claimed)."""
    if namespace == DNS_NAMESPACE:
        return []
    try:
        dns = await reads.cluster.list_pods(DNS_NAMESPACE, DNS_SELECTOR)
    except ClusterError:
        return []
    down = [p for p in dns if not all(cs.get("ready") for cs in
                                      (p.get("status") or {}).get("containerStatuses") or [{}])]
    if not dns or not down:
        return []
    from agent.render import pod_status  # render imports nothing of ours

    states = ", ".join(f"{name_of(p)} {pod_status(p)}" for p in down[:4])
    return [Finding(f"cluster DNS ({DNS_SELECTOR} in {DNS_NAMESPACE}) has "
                    f"{len(dns) - len(down)}/{len(dns)} pods ready ({states}): name lookups "
                    f"from every namespace fail or time out", CRITICAL)]
