"""``describe``: one object as a short, kubectl-describe-like text plus its findings.

Values a model needs (images, env, probes, resources, conditions, owner, recent events, the
latest change) are shown; values it must not see are not: ConfigMap data and Secret data
(keys only), Secret references (shown as references, never resolved). Events are fetched
with field selectors for the object and a few of its children, never the namespace's list.
This module handles pods, workloads and Services; ``describe_kinds`` the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from agent.analyzers import network, workloads
from agent.analyzers import pods as pod_an
from agent.analyzers.common import EventIndex, Finding, fit, name_of
from agent.changes import latest_change
from agent.describe_kinds import OTHER_KINDS, describe_other
from agent.kube import Cluster, label_selector
from agent.protocols import Obj
from agent.reads import RunReads, run_reads
from agent.render import age, events_text, pod_ready, pod_restarts, pod_status, pod_unhealthy
from agent.survey import config_data, events_for
from budo.errors import NotFound

# The kinds describe handles (names a caller may use for them: agent/kinds.py ALIASES).
DESCRIBABLE = ("pod", "deployment", "replicaset", "statefulset", "daemonset", "job", "cronjob",
               "service", "ingress", "networkpolicy", "endpointslice", "configmap", "secret",
               "serviceaccount", "pvc", "pv", "storageclass", "hpa", "pdb", "resourcequota",
               "limitrange", "node")
MAX_CHILD_EVENT_READS = 5


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata", {}) or {}


def kv(mapping: Mapping[str, Any] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((mapping or {}).items())) or "<none>"


def conditions_text(obj: Obj) -> str:
    parts = []
    for c in obj.get("status", {}).get("conditions") or []:
        text = f"{c.get('type')}={c.get('status')}"
        if c.get("reason"):
            text += f" ({c['reason']})"
        if c.get("status") != "True" and c.get("message"):
            text += f": {' '.join(str(c['message']).split())[:200]}"
        parts.append(text)
    return "; ".join(parts) or "<none>"


def _env_line(env: Obj) -> str:
    name = env.get("name", "?")
    if "value" in env:
        return f"{name}={env.get('value')}"
    source = env.get("valueFrom") or {}
    for key in ("secretKeyRef", "configMapKeyRef"):
        if key in source:
            ref = source[key]
            return f"{name}=<{key} {ref.get('name')}/{ref.get('key')}>"
    if "fieldRef" in source:
        return f"{name}=<fieldRef {source['fieldRef'].get('fieldPath')}>"
    if "resourceFieldRef" in source:
        return f"{name}=<resourceFieldRef {source['resourceFieldRef'].get('resource')}>"
    return f"{name}=<unset>"


def _probe(probe: Obj | None) -> str:
    if not probe:
        return "none"
    timing = (f"delay={probe.get('initialDelaySeconds', 0)}s "
              f"period={probe.get('periodSeconds', 10)}s "
              f"timeout={probe.get('timeoutSeconds', 1)}s "
              f"failureThreshold={probe.get('failureThreshold', 3)}")
    return f"{pod_an.probe_summary(probe)} {timing}"


def _state_line(cs: Obj) -> list[str]:
    """State and lastState with their messages: where "stat /app/x: no such file" and
    "couldn't find key" live."""
    state = next(iter((cs.get("state") or {"unknown": {}}).items()))
    detail = state[1].get("reason") or ""
    lines = [f"    state: {state[0]} {detail}".rstrip()
             + f"; ready={cs.get('ready')}; restarts={cs.get('restartCount', 0)}"]
    message = " ".join(str(state[1].get("message") or "").split())
    if state[0] == "terminated":
        lines[0] += f"; exit {state[1].get('exitCode')}"
    if message:
        lines.append(f"      message: {message[:400]}")
    term = (cs.get("lastState") or {}).get("terminated")
    if term:
        lines.append(f"    last terminated: {term.get('reason')} exit "
                     f"{term.get('exitCode')} at {term.get('finishedAt', '?')}")
        said = " ".join(str(term.get("message") or "").split())
        if said:
            lines.append(f"      message: {said[:400]}")
    return lines


def containers_text(spec: Obj, statuses: Sequence[Obj] = ()) -> list[str]:
    by_name = {cs.get("name"): cs for cs in statuses}
    lines: list[str] = []
    for group in ("initContainers", "containers"):
        for c in spec.get(group) or []:
            label = "init container" if group == "initContainers" else "container"
            lines.append(f"  {label} {c.get('name')}: image {c.get('image')}")
            if c.get("command") or c.get("args"):
                argv = [*(c.get("command") or []), *(c.get("args") or [])]
                lines.append(f"    command: {' '.join(argv)}")
            ports = [f"{p.get('name') + ':' if p.get('name') else ''}{p.get('containerPort')}"
                     f"/{p.get('protocol', 'TCP')}" for p in c.get("ports") or []]
            if ports:
                lines.append(f"    ports: {', '.join(ports)}")
            cs = by_name.get(c.get("name"))
            if cs:
                lines.extend(_state_line(cs))
            if c.get("env"):
                lines.append("    env:")
                lines.extend(f"      {_env_line(e)}" for e in c["env"])
            for source in c.get("envFrom") or []:
                for key, kind in (("configMapRef", "configmap"), ("secretRef", "secret")):
                    if key in source:
                        lines.append(f"    envFrom: {kind} {source[key].get('name')}")
            res = c.get("resources") or {}
            lines.append(f"    resources: requests {kv(res.get('requests'))}; "
                         f"limits {kv(res.get('limits'))}")
            for mount in c.get("volumeMounts") or []:
                lines.append(f"    mount {mount.get('name')} at {mount.get('mountPath')}"
                             + (f" (subPath {mount['subPath']})" if mount.get("subPath")
                                else ""))
            if group == "containers":
                lines.append(f"    liveness: {_probe(c.get('livenessProbe'))}")
                lines.append(f"    readiness: {_probe(c.get('readinessProbe'))}")
                if c.get("startupProbe"):
                    lines.append(f"    startup: {_probe(c.get('startupProbe'))}")
    for volume in spec.get("volumes") or []:
        for key in ("configMap", "secret", "persistentVolumeClaim", "emptyDir", "hostPath",
                    "projected"):
            if key in volume:
                source = volume[key] or {}
                ref = (source.get("name") or source.get("secretName")
                       or source.get("claimName") or source.get("path") or "")
                lines.append(f"  volume {volume.get('name')}: {key} {ref}".rstrip())
    return lines


def owner_text(obj: Obj) -> str:
    owners = _meta(obj).get("ownerReferences") or []
    return ", ".join(f"{o.get('kind')}/{o.get('name')}" for o in owners) or "<none>"


def _pods_lines(pods: Sequence[Obj], now: datetime | None) -> list[str]:
    lines = [f"pods ({len(pods)}, unhealthy first):"]
    ordered = sorted(pods, key=lambda p: (not pod_unhealthy(p), name_of(p)))
    for pod in ordered[:10]:
        ready, total = pod_ready(pod)
        lines.append(f"  {name_of(pod)}  {ready}/{total}  {pod_status(pod)}  "
                     f"restarts {pod_restarts(pod, now)}")
    if len(pods) > 10:
        lines.append(f"  … {len(pods) - 10} more")
    return lines


def events_lines(events: EventIndex | Sequence[Obj], now: datetime | None) -> list[str]:
    items = events.all() if isinstance(events, EventIndex) else list(events)
    return ["recent events:", *("  " + line for line in
                                events_text(items, now, limit=10).splitlines())]


async def describe(
    cluster: Cluster, kind: str, name: str, namespace: str | None, now: datetime | None = None
) -> tuple[str, list[str]]:
    """Text and findings (most severe first) for one object; raises ClusterError."""
    reads = run_reads(cluster)
    obj = await cluster.get(kind, name, namespace)
    if kind == "pod":
        assert namespace is not None
        text, found = await _pod(reads, obj, namespace, now)
    elif kind in ("deployment", "replicaset", "statefulset", "daemonset"):
        assert namespace is not None
        text, found = await _workload(reads, kind, obj, namespace, now)
    elif kind == "service":
        assert namespace is not None
        text, found = await _service(reads, obj, namespace, now)
    elif kind in OTHER_KINDS:
        text, found = await describe_other(reads, kind, obj, namespace, now)
    else:
        raise NotFound(f"describe does not know kind {kind!r}")
    return text, fit(found)


async def _address_context(reads: RunReads, namespace: str
                           ) -> tuple[list[Any], list[Any] | None, dict[str, dict[str, str]]]:
    lists = await reads.many(namespace, "service", "endpoints", "configmap")
    return lists["service"] or [], lists["endpoints"], config_data(lists["configmap"])


async def _pod(reads: RunReads, pod: Obj, namespace: str,
               now: datetime | None) -> tuple[str, list[Finding]]:
    meta, status = _meta(pod), pod.get("status", {})
    spec = pod.get("spec", {})
    ready, total = pod_ready(pod)
    events = await events_for(reads, namespace, [name_of(pod)])
    lines = [
        f"Pod {namespace}/{meta.get('name')}",
        f"  status: {pod_status(pod)} (phase {status.get('phase')}); ready {ready}/{total}; "
        f"age {age(meta.get('creationTimestamp'), now)}",
        f"  node: {spec.get('nodeName') or '<none>'}; ip {status.get('podIP') or '<none>'}",
        f"  owner: {owner_text(pod)}",
        f"  labels: {kv(meta.get('labels'))}",
        f"  conditions: {conditions_text(pod)}",
    ]
    if status.get("message"):
        lines.append(f"  message: {status.get('reason', '')} {status['message']}".rstrip())
    lines += containers_text(spec, [*(status.get("initContainerStatuses") or []),
                                    *(status.get("containerStatuses") or [])])
    lines += events_lines(events, now)
    services, endpoints, config = await _address_context(reads, namespace)
    found = pod_an.pod_findings(pod, events)
    found += network.env_host_findings(f"pod {meta.get('name')}", spec.get("containers") or [],
                                       services, namespace, endpoints, config)
    return "\n".join(lines), found


TITLES = {"deployment": "Deployment", "replicaset": "ReplicaSet",
          "statefulset": "StatefulSet", "daemonset": "DaemonSet"}


async def _workload(reads: RunReads, kind: str, obj: Obj, namespace: str,
                    now: datetime | None) -> tuple[str, list[Finding]]:
    meta, spec, status = _meta(obj), obj.get("spec", {}), obj.get("status", {})
    name = str(meta.get("name"))
    template = spec.get("template", {})
    selector = label_selector(spec.get("selector"))
    if kind == "daemonset":
        counts = (f"  pods: {status.get('desiredNumberScheduled', 0)} desired, "
                  f"{status.get('updatedNumberScheduled', 0)} updated, "
                  f"{status.get('numberReady', 0)} ready, "
                  f"{status.get('numberAvailable', 0)} available")
    else:
        counts = (f"  replicas: {spec.get('replicas', 1)} desired, "
                  f"{status.get('updatedReplicas', 0)} updated, "
                  f"{status.get('readyReplicas', 0)} ready, "
                  f"{status.get('availableReplicas', 0)} available")
    lines = [
        f"{TITLES[kind]} {namespace}/{name}", counts,
        f"  selector: {selector or '<none>'}; age {age(meta.get('creationTimestamp'), now)}",
        f"  owner: {owner_text(obj)}",
    ]
    revision = (meta.get("annotations") or {}).get("deployment.kubernetes.io/revision")
    if revision:
        lines.append(f"  revision: {revision}")
    lines.append(f"  conditions: {conditions_text(obj)}")
    change = await latest_change(reads, kind, obj, namespace, now)
    if change:
        lines.extend(f"  {line}" for line in change)
    lines.extend(containers_text(template.get("spec", {})))
    pods = await reads.cluster.list_pods(namespace, selector) if selector else []
    wanted = (spec.get("selector") or {}).get("matchLabels") or {}
    pods = [p for p in pods if pod_an_matches(p, wanted)]
    lines.extend(_pods_lines(pods, now))
    children = sorted(pods, key=lambda p: not pod_unhealthy(p))[:MAX_CHILD_EVENT_READS]
    replicasets = await reads.list_of("replicaset", namespace) if kind == "deployment" else []
    newest = workloads.owned_replicasets(obj, replicasets or [])[:1]
    events = await events_for(reads, namespace,
                              [name, *map(name_of, newest), *map(name_of, children)])
    lines.extend(events_lines(events, now))
    services, endpoints, config = await _address_context(reads, namespace)
    found: list[Finding] = network.env_host_findings(
        f"{kind} {name}", template.get("spec", {}).get("containers") or [], services,
        namespace, endpoints, config)
    if kind == "deployment":
        found += workloads.deployment_findings(obj, replicasets or [], events)
    elif kind == "replicaset":
        found += workloads.replicaset_findings(obj, events)
    elif kind == "statefulset":
        found += workloads.statefulset_findings(obj, events)
    else:
        found += workloads.daemonset_findings(obj, events)
    seen: set[str] = set()
    for pod in sorted(pods, key=lambda p: not pod_unhealthy(p)):
        key = pod_status(pod)
        if key in seen:  # replicas failing the same way say the same thing
            continue
        seen.add(key)
        found.extend(pod_an.pod_findings(pod, events))
    return "\n".join(lines), found


def pod_an_matches(pod: Obj, wanted: Mapping[str, str]) -> bool:
    labels = _meta(pod).get("labels") or {}
    return all(labels.get(k) == v for k, v in wanted.items())


async def _service(reads: RunReads, svc: Obj, namespace: str,
                   now: datetime | None) -> tuple[str, list[Finding]]:
    meta, spec = _meta(svc), svc.get("spec", {})
    name = str(meta.get("name"))
    ports = ", ".join(f"{p.get('name', '')}{':' if p.get('name') else ''}{p.get('port')}"
                      f"->{p.get('targetPort', p.get('port'))}/{p.get('protocol', 'TCP')}"
                      for p in spec.get("ports") or [])
    lines = [
        f"Service {namespace}/{name}",
        f"  type: {spec.get('type', 'ClusterIP')}; clusterIP {spec.get('clusterIP')}; "
        f"ports {ports or '<none>'}",
        f"  selector: {kv(spec.get('selector'))}",
    ]
    endpoints: Obj | None = None
    try:
        endpoints = await reads.cluster.get("endpoints", name, namespace)
    except NotFound:  # a Service without a selector may have none
        endpoints = None
    ready, not_ready = [], []
    for subset in (endpoints or {}).get("subsets") or []:
        for address in subset.get("addresses") or []:
            ready.append(_address(address))
        for address in subset.get("notReadyAddresses") or []:
            not_ready.append(_address(address))
    lines.append(f"  endpoints ready: {', '.join(ready) or '<none>'}")
    if not_ready:
        lines.append(f"  endpoints not ready: {', '.join(not_ready)}")
    found: list[Finding] = []
    if spec.get("selector"):
        selected = await reads.cluster.list_pods(namespace, kv(spec["selector"]))
        pool = selected
        if not selected:  # who almost matches? one list for the run
            pool = await reads.list_of("pod", namespace) or []
        found = network.service_findings(svc, endpoints, pool)
    lines.extend(events_lines(await events_for(reads, namespace, [name]), now))
    return "\n".join(lines), found


def _address(address: Obj) -> str:
    target = (address.get("targetRef") or {}).get("name")
    return f"{address.get('ip')}" + (f" ({target})" if target else "")
