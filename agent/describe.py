"""``describe``: one object as a short, kubectl-describe-like text plus its findings.

Values a model needs (images, env, probes, resources, conditions, owner, recent events) are
shown; values it must not see are not: ConfigMap data (keys only) and Secret references (shown
as references, never resolved).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from agent import findings as fnd
from agent.kube import Cluster, label_selector
from agent.protocols import Obj
from agent.render import age, events_text, involves, pod_ready, pod_restarts, pod_status
from agent.text import labels
from budo.errors import ClusterError, NotFound

KIND_ALIASES: dict[str, str] = {
    "pod": "pod", "pods": "pod", "po": "pod",
    "deployment": "deployment", "deployments": "deployment", "deploy": "deployment",
    "replicaset": "replicaset", "replicasets": "replicaset", "rs": "replicaset",
    "statefulset": "statefulset", "statefulsets": "statefulset", "sts": "statefulset",
    "service": "service", "services": "service", "svc": "service",
    "node": "node", "nodes": "node", "no": "node",
    "configmap": "configmap", "configmaps": "configmap", "cm": "configmap",
}
KINDS = ("pod", "deployment", "replicaset", "statefulset", "service", "node", "configmap")


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata", {}) or {}


def _kv(mapping: Mapping[str, Any] | None) -> str:
    return labels(mapping) or "<none>"


def _conditions(obj: Obj) -> str:
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
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        return f"{name}=<secretKeyRef {ref.get('name')}/{ref.get('key')}>"
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        return f"{name}=<configMapKeyRef {ref.get('name')}/{ref.get('key')}>"
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
    return f"{fnd.probe_summary(probe)} {timing}"


def _resources(container: Obj) -> str:
    res = container.get("resources") or {}
    req, lim = _kv(res.get("requests")), _kv(res.get("limits"))
    return f"requests {req}; limits {lim}"


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
            ports = [f"{p.get('containerPort')}/{p.get('protocol', 'TCP')}"
                     for p in c.get("ports") or []]
            if ports:
                lines.append(f"    ports: {', '.join(ports)}")
            cs = by_name.get(c.get("name"))
            if cs:
                state = next(iter((cs.get("state") or {"unknown": {}}).items()))
                detail = state[1].get("reason") or ""
                lines.append(f"    state: {state[0]} {detail}".rstrip()
                             + f"; ready={cs.get('ready')}; restarts={cs.get('restartCount', 0)}")
                term = (cs.get("lastState") or {}).get("terminated")
                if term:
                    lines.append(f"    last terminated: {term.get('reason')} exit "
                                 f"{term.get('exitCode')} at {term.get('finishedAt', '?')}")
            if c.get("env"):
                lines.append("    env:")
                lines.extend(f"      {_env_line(e)}" for e in c["env"])
            for source in c.get("envFrom") or []:
                for key, kind in (("configMapRef", "configmap"), ("secretRef", "secret")):
                    if key in source:
                        lines.append(f"    envFrom: {kind} {source[key].get('name')}")
            lines.append(f"    resources: {_resources(c)}")
            if group == "containers":
                lines.append(f"    liveness: {_probe(c.get('livenessProbe'))}")
                lines.append(f"    readiness: {_probe(c.get('readinessProbe'))}")
    for volume in spec.get("volumes") or []:
        for key in ("configMap", "secret", "persistentVolumeClaim", "emptyDir"):
            if key in volume:
                source = volume[key] or {}
                ref = source.get("name") or source.get("secretName") or source.get("claimName")
                lines.append(f"  volume {volume.get('name')}: {key} {ref or ''}".rstrip())
    return lines


def _owner(obj: Obj) -> str:
    owners = _meta(obj).get("ownerReferences") or []
    return ", ".join(f"{o.get('kind')}/{o.get('name')}" for o in owners) or "<none>"


def _pods_lines(pods: Sequence[Obj], now: datetime | None) -> list[str]:
    lines = [f"pods ({len(pods)}):"]
    for pod in sorted(pods, key=lambda p: _meta(p).get("name", ""))[:10]:
        ready, total = pod_ready(pod)
        lines.append(f"  {_meta(pod).get('name')}  {ready}/{total}  {pod_status(pod)}  "
                     f"restarts {pod_restarts(pod, now)}")
    return lines


def _events_lines(events: Sequence[Obj], name: str, now: datetime | None) -> list[str]:
    mine = [e for e in events if involves(e, name)]
    return ["recent events:", *("  " + line for line in
                                events_text(mine, now, limit=10).splitlines())]


async def describe(
    cluster: Cluster, kind: str, name: str, namespace: str | None, now: datetime | None = None
) -> tuple[str, list[str]]:
    """Text and findings for one object; raises ClusterError subclasses."""
    obj = await cluster.get(kind, name, namespace)
    if kind == "configmap":
        return _configmap(obj), []
    if kind == "node":
        return _node(obj, now), []
    assert namespace is not None
    events = await cluster.list_events(namespace)
    if kind == "service":
        return await _service(cluster, obj, namespace, events, now)
    if kind == "pod":
        return await _pod(cluster, obj, namespace, events, now)
    return await _workload(cluster, kind, obj, namespace, events, now)


async def _pod(cluster: Cluster, pod: Obj, namespace: str, events: Sequence[Obj],
               now: datetime | None) -> tuple[str, list[str]]:
    meta, status = _meta(pod), pod.get("status", {})
    spec = pod.get("spec", {})
    ready, total = pod_ready(pod)
    lines = [
        f"Pod {namespace}/{meta.get('name')}",
        f"  status: {pod_status(pod)} (phase {status.get('phase')}); ready {ready}/{total}; "
        f"age {age(meta.get('creationTimestamp'), now)}",
        f"  node: {spec.get('nodeName') or '<none>'}; ip {status.get('podIP') or '<none>'}",
        f"  owner: {_owner(pod)}",
        f"  labels: {_kv(meta.get('labels'))}",
        f"  conditions: {_conditions(pod)}",
        *containers_text(spec, [*(status.get("initContainerStatuses") or []),
                                *(status.get("containerStatuses") or [])]),
        *_events_lines(events, str(meta.get("name")), now),
    ]
    services, endpoints = await _services_and_endpoints(cluster, namespace)
    found = fnd.pod_findings(pod, events)
    found += fnd.env_host_findings(f"pod {meta.get('name')}", spec.get("containers") or [],
                                   services, namespace, endpoints)
    return "\n".join(lines), found


async def _workload(cluster: Cluster, kind: str, obj: Obj, namespace: str,
                    events: Sequence[Obj], now: datetime | None) -> tuple[str, list[str]]:
    meta, spec, status = _meta(obj), obj.get("spec", {}), obj.get("status", {})
    template = spec.get("template", {})
    title = {"deployment": "Deployment", "replicaset": "ReplicaSet",
             "statefulset": "StatefulSet"}[kind]
    selector = label_selector(spec.get("selector"))
    lines = [
        f"{title} {namespace}/{meta.get('name')}",
        f"  replicas: {spec.get('replicas', 1)} desired, {status.get('updatedReplicas', 0)} "
        f"updated, {status.get('readyReplicas', 0)} ready, "
        f"{status.get('availableReplicas', 0)} available",
        f"  selector: {selector or '<none>'}; age {age(meta.get('creationTimestamp'), now)}",
        f"  owner: {_owner(obj)}",
    ]
    revision = (meta.get("annotations") or {}).get("deployment.kubernetes.io/revision")
    if revision:
        lines.append(f"  revision: {revision}")
    lines.append(f"  conditions: {_conditions(obj)}")
    lines.extend(containers_text(template.get("spec", {})))
    pods = await cluster.list_pods(namespace, selector) if selector else []
    wanted = (spec.get("selector") or {}).get("matchLabels") or {}
    pods = [p for p in pods if fnd.matches(_meta(p).get("labels") or {}, wanted)]
    lines.extend(_pods_lines(pods, now))
    lines.extend(_events_lines(events, str(meta.get("name")), now))
    services, endpoints = await _services_and_endpoints(cluster, namespace)
    found = fnd.env_host_findings(f"{kind} {meta.get('name')}",
                                  template.get("spec", {}).get("containers") or [],
                                  services, namespace, endpoints)
    for pod in pods:
        found.extend(fnd.pod_findings(pod, events))
    return "\n".join(lines), found


async def _services_and_endpoints(cluster: Cluster, namespace: str
                                  ) -> tuple[list[Obj], list[Obj] | None]:
    """Both lists for the env-host findings; without permission on Endpoints, only Services
    (None: unknown, which is not the same as "no endpoints")."""
    services = await cluster.list_services(namespace)
    endpoints: list[Obj] | None
    try:
        endpoints = await cluster.list_endpoints(namespace)
    except ClusterError:
        endpoints = None
    return services, endpoints


async def _service(cluster: Cluster, svc: Obj, namespace: str, events: Sequence[Obj],
                   now: datetime | None) -> tuple[str, list[str]]:
    meta, spec = _meta(svc), svc.get("spec", {})
    name = str(meta.get("name"))
    ports = ", ".join(f"{p.get('name', '')}{':' if p.get('name') else ''}{p.get('port')}"
                      f"->{p.get('targetPort', p.get('port'))}/{p.get('protocol', 'TCP')}"
                      for p in spec.get("ports") or [])
    lines = [
        f"Service {namespace}/{name}",
        f"  type: {spec.get('type', 'ClusterIP')}; clusterIP {spec.get('clusterIP')}; "
        f"ports {ports or '<none>'}",
        f"  selector: {_kv(spec.get('selector'))}",
    ]
    endpoints: Obj | None = None
    try:
        endpoints = await cluster.get("endpoints", name, namespace)
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
    pods = await cluster.list_pods(namespace) if spec.get("selector") else []
    lines.extend(_events_lines(events, name, now))
    return "\n".join(lines), fnd.service_findings(svc, endpoints, pods)


def _address(address: Obj) -> str:
    target = (address.get("targetRef") or {}).get("name")
    return f"{address.get('ip')}" + (f" ({target})" if target else "")


def _configmap(cm: Obj) -> str:
    meta = _meta(cm)
    data = cm.get("data") or {}
    binary = cm.get("binaryData") or {}
    keys = [f"{k} ({len(str(v))} chars)" for k, v in sorted(data.items())]
    keys += [f"{k} (binary)" for k in sorted(binary)]
    return "\n".join([
        f"ConfigMap {meta.get('namespace')}/{meta.get('name')}",
        f"  keys ({len(keys)}; values not shown): {', '.join(keys) or '<none>'}",
        f"  labels: {_kv(meta.get('labels'))}",
    ])


def _node(node: Obj, now: datetime | None) -> str:
    meta, spec, status = _meta(node), node.get("spec", {}), node.get("status", {})
    info = status.get("nodeInfo") or {}
    taints = ", ".join(f"{t.get('key')}={t.get('value', '')}:{t.get('effect')}"
                       for t in spec.get("taints") or []) or "<none>"
    return "\n".join([
        f"Node {meta.get('name')}",
        f"  unschedulable: {bool(spec.get('unschedulable'))}; taints: {taints}",
        f"  conditions: {_conditions(node)}",
        f"  capacity: {_kv(status.get('capacity'))}",
        f"  allocatable: {_kv(status.get('allocatable'))}",
        f"  kubelet {info.get('kubeletVersion', '?')}; "
        f"age {age(meta.get('creationTimestamp'), now)}",
        f"  labels: {_kv(meta.get('labels'))}",
    ])
