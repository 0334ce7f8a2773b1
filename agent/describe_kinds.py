"""``describe`` for the kinds the analyzers read beyond pods, workloads and Services: one
short text per kind and that kind's findings. Secrets show their type and key names only
(the values were dropped in agent.kube the moment they arrived)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from agent.analyzers import capacity, network, storage, workloads
from agent.analyzers.common import Finding, name_of
from agent.reads import RunReads
from agent.render import age, events_text
from agent.survey import events_for, templates

Obj = Mapping[str, Any]
Result = tuple[list[str], list[Finding]]


def _kv(mapping: Mapping[str, Any] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((mapping or {}).items())) or "<none>"


def _sel(selector: Obj | None) -> str:
    if not selector:
        return "<all pods>"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    parts += [f"{e.get('key')} {e.get('operator')} {','.join(e.get('values') or [])}".rstrip()
              for e in selector.get("matchExpressions") or []]
    return ",".join(parts) or "<all pods>"


def _head(title: str, obj: Obj, namespace: str | None, now: datetime | None) -> list[str]:
    meta = obj.get("metadata") or {}
    where = f"{namespace}/" if namespace else ""
    return [f"{title} {where}{meta.get('name')}",
            f"  age {age(meta.get('creationTimestamp'), now)}; labels {_kv(meta.get('labels'))}"]


async def _job(reads: RunReads, obj: Obj, ns: str | None, now: datetime | None) -> Result:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    lines = [f"  completions {spec.get('completions', 1)}, parallelism "
             f"{spec.get('parallelism', 1)}, backoffLimit {spec.get('backoffLimit', 6)}, "
             f"activeDeadlineSeconds {spec.get('activeDeadlineSeconds', '<none>')}",
             f"  status: {status.get('active', 0)} active, {status.get('succeeded', 0)} "
             f"succeeded, {status.get('failed', 0)} failed; started "
             f"{status.get('startTime', '?')}"]
    for c in (obj.get("status") or {}).get("conditions") or []:
        lines.append(f"  condition {c.get('type')}={c.get('status')} ({c.get('reason')}): "
                     f"{c.get('message', '')}")
    return lines, workloads.job_findings(obj)


async def _cronjob(reads: RunReads, obj: Obj, ns: str | None, now: datetime | None) -> Result:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    lines = [f"  schedule {spec.get('schedule')!r}; suspend {bool(spec.get('suspend'))}; "
             f"concurrencyPolicy {spec.get('concurrencyPolicy', 'Allow')}",
             f"  last scheduled {status.get('lastScheduleTime', '<never>')}; last successful "
             f"{status.get('lastSuccessfulTime', '<never>')}; active "
             f"{len(status.get('active') or [])}"]
    jobs = await reads.list_of("job", ns) or []
    return lines, workloads.cronjob_findings(obj, jobs, now)


async def _pvc(reads: RunReads, obj: Obj, ns: str | None, now: datetime | None) -> Result:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    lines = [f"  status {status.get('phase')}; volume {spec.get('volumeName') or '<none>'}; "
             f"storageClass {spec.get('storageClassName', '<default>')}",
             f"  requests {_kv((spec.get('resources') or {}).get('requests'))}; access "
             f"{','.join(spec.get('accessModes') or [])}; capacity "
             f"{_kv(status.get('capacity'))}"]
    classes = await reads.list_of("storageclass")
    events = await events_for(reads, ns or "", [name_of(obj)]) if ns else None
    return lines, storage.pvc_findings(obj, classes, events)


async def _pv(reads: RunReads, obj: Obj, ns: str | None, now: datetime | None) -> Result:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    claim = spec.get("claimRef") or {}
    lines = [f"  status {status.get('phase')}; capacity {_kv(spec.get('capacity'))}; "
             f"storageClass {spec.get('storageClassName', '<none>')}; reclaim "
             f"{spec.get('persistentVolumeReclaimPolicy')}",
             f"  claim {claim.get('namespace', '')}/{claim.get('name', '')}".rstrip("/")]
    return lines, storage.pv_findings(obj)


async def _storageclass(reads: RunReads, obj: Obj, ns: str | None,
                        now: datetime | None) -> Result:
    default = ((obj.get("metadata") or {}).get("annotations") or {}).get(storage.DEFAULT_CLASS)
    return [f"  provisioner {obj.get('provisioner')}; binding "
            f"{obj.get('volumeBindingMode', 'Immediate')}; reclaim "
            f"{obj.get('reclaimPolicy', 'Delete')}; default {default == 'true'}"], []


async def _ingress(reads: RunReads, obj: Obj, ns: str | None, now: datetime | None) -> Result:
    spec = obj.get("spec") or {}
    lines = [f"  class {spec.get('ingressClassName', '<default>')}; address "
             f"{','.join(i.get('ip') or i.get('hostname', '') for i in ((obj.get('status') or {}).get('loadBalancer') or {}).get('ingress') or []) or '<none>'}"]  # noqa: E501
    for rule in spec.get("rules") or []:
        for path in (rule.get("http") or {}).get("paths") or []:
            svc = (path.get("backend") or {}).get("service") or {}
            port = svc.get("port") or {}
            lines.append(f"  {rule.get('host', '*')}{path.get('path', '/')} -> "
                         f"{svc.get('name')}:{port.get('number', port.get('name'))}")
    for tls in spec.get("tls") or []:
        lines.append(f"  tls {','.join(tls.get('hosts') or [])} secret {tls.get('secretName')}")
    lists = await reads.many(ns, "service", "endpoints", "secret")
    secrets = None if lists["secret"] is None else [name_of(s) for s in lists["secret"]]
    found = network.ingress_findings(obj, lists["service"] or [], lists["endpoints"], secrets)
    return lines, found


async def _networkpolicy(reads: RunReads, obj: Obj, ns: str | None,
                         now: datetime | None) -> Result:
    spec = obj.get("spec") or {}
    lines = [f"  selects pods {_sel(spec.get('podSelector'))}; types "
             f"{','.join(spec.get('policyTypes') or ['Ingress'])}"]
    for direction, key in (("ingress", "from"), ("egress", "to")):
        rules = spec.get(direction)
        if rules is None:
            continue
        if not rules:
            lines.append(f"  {direction}: none allowed")
        for rule in rules:
            peers = []
            for peer in rule.get(key) or []:
                if "ipBlock" in peer:
                    peers.append(f"ip {peer['ipBlock'].get('cidr')}")
                else:
                    parts = []
                    if "namespaceSelector" in peer:
                        parts.append(f"namespaces {_sel(peer['namespaceSelector'])}")
                    if "podSelector" in peer:
                        parts.append(f"pods {_sel(peer['podSelector'])}")
                    peers.append(" & ".join(parts))
            ports = ",".join(f"{p.get('port', '*')}/{p.get('protocol', 'TCP')}"
                             for p in rule.get("ports") or [])
            lines.append(f"  {direction} {key} {'; '.join(peers) or 'anywhere'}"
                         + (f" ports {ports}" if ports else ""))
    lists = await reads.many(ns, "service", "deployment", "statefulset", "daemonset",
                             "cronjob", "configmap")
    found: list[Finding] = []
    services = {name_of(s): s for s in lists["service"] or []}
    callers = []
    config = {name_of(c): dict(c.get("data") or {}) for c in lists["configmap"] or []}
    for who, _o, template in templates(lists):
        for c in (template.get("spec") or {}).get("containers") or []:
            for _var, value, _origin in network._addresses(c, config):
                target = network.env_target(value, ns or "")
                if target and target[0] in services:
                    callers.append((who, template, services[target[0]]))
    found = network.network_policy_findings([obj], callers)
    return lines, found


async def _hpa(reads: RunReads, obj: Obj, ns: str | None, now: datetime | None) -> Result:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    lines = [f"  target {ref.get('kind')}/{ref.get('name')}; replicas "
             f"{spec.get('minReplicas', 1)}..{spec.get('maxReplicas')}; current "
             f"{status.get('currentReplicas')}, desired {status.get('desiredReplicas')}"]
    for c in status.get("conditions") or []:
        lines.append(f"  condition {c.get('type')}={c.get('status')} ({c.get('reason')}): "
                     f"{c.get('message', '')}")
    kind = str(ref.get("kind", "")).lower()
    targets: set[tuple[str, str]] | None = None
    if kind in ("deployment", "statefulset", "replicaset"):
        items = await reads.list_of(kind, ns)
        targets = None if items is None else {(str(ref.get("kind")), name_of(i))
                                              for i in items}
    return lines, capacity.hpa_findings(obj, targets)


async def _pdb(reads: RunReads, obj: Obj, ns: str | None, now: datetime | None) -> Result:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    lines = [f"  selects {_sel(spec.get('selector'))}; minAvailable "
             f"{spec.get('minAvailable', '<unset>')}; maxUnavailable "
             f"{spec.get('maxUnavailable', '<unset>')}",
             f"  healthy {status.get('currentHealthy')}/{status.get('expectedPods')}; "
             f"disruptions allowed {status.get('disruptionsAllowed')}"]
    nodes = await reads.list_of("node") or []
    draining = any((n.get("spec") or {}).get("unschedulable") for n in nodes)
    return lines, capacity.pdb_findings(obj, draining)


async def _quota(reads: RunReads, obj: Obj, ns: str | None, now: datetime | None) -> Result:
    status = obj.get("status") or {}
    hard, used = status.get("hard") or {}, status.get("used") or {}
    lines = [f"  {k}: used {used.get(k, '0')} of {v}" for k, v in sorted(hard.items())]
    return lines, capacity.quota_findings(obj)


async def _limitrange(reads: RunReads, obj: Obj, ns: str | None,
                      now: datetime | None) -> Result:
    lines = []
    for item in (obj.get("spec") or {}).get("limits") or []:
        lines.append(f"  {item.get('type')}: " + "; ".join(
            f"{key} {_kv(item.get(key))}" for key in ("min", "max", "default",
                                                      "defaultRequest") if item.get(key)))
    lists = await reads.many(ns, "deployment", "statefulset", "daemonset", "cronjob")
    shapes = [(who, t) for who, _o, t in templates(lists)]
    return lines, capacity.limitrange_findings(obj, shapes)


async def _serviceaccount(reads: RunReads, obj: Obj, ns: str | None,
                          now: datetime | None) -> Result:
    pulls = [s.get("name") for s in obj.get("imagePullSecrets") or []]
    secrets = [s.get("name") for s in obj.get("secrets") or []]
    return [f"  imagePullSecrets {', '.join(map(str, pulls)) or '<none>'}; secrets "
            f"{', '.join(map(str, secrets)) or '<none>'}; automount token "
            f"{obj.get('automountServiceAccountToken', True)}"], []


async def _endpointslice(reads: RunReads, obj: Obj, ns: str | None,
                         now: datetime | None) -> Result:
    service = ((obj.get("metadata") or {}).get("labels") or {}).get("kubernetes.io/service-name")
    ports = ", ".join(f"{p.get('name', '')}:{p.get('port')}" for p in obj.get("ports") or [])
    lines = [f"  service {service}; addressType {obj.get('addressType')}; ports {ports}"]
    ready = 0
    for ep in obj.get("endpoints") or []:
        cond = ep.get("conditions") or {}
        ready += bool(cond.get("ready"))
        lines.append(f"  {','.join(ep.get('addresses') or [])} ready={cond.get('ready')} "
                     f"({(ep.get('targetRef') or {}).get('name', '')})")
    found = [] if ready or not obj.get("endpoints") else [Finding(
        f"endpointslice {name_of(obj)} of Service {service} has no ready endpoint")]
    return lines, found


async def _configmap(reads: RunReads, obj: Obj, ns: str | None,
                     now: datetime | None) -> Result:
    data, binary = obj.get("data") or {}, obj.get("binaryData") or {}
    keys = [f"{k} ({len(str(v))} chars)" for k, v in sorted(data.items())]
    keys += [f"{k} (binary)" for k in sorted(binary)]
    return [f"  keys ({len(keys)}; values not shown): {', '.join(keys) or '<none>'}"], []


async def _secret(reads: RunReads, obj: Obj, ns: str | None, now: datetime | None) -> Result:
    keys = sorted({**(obj.get("data") or {}), **(obj.get("stringData") or {})})
    return [f"  type {obj.get('type', 'Opaque')}",
            f"  keys ({len(keys)}; values never shown): {', '.join(keys) or '<none>'}"], []


async def _node(reads: RunReads, obj: Obj, ns: str | None, now: datetime | None) -> Result:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    info = status.get("nodeInfo") or {}
    taints = ", ".join(f"{t.get('key')}={t.get('value', '')}:{t.get('effect')}"
                       for t in spec.get("taints") or []) or "<none>"
    conditions = "; ".join(f"{c.get('type')}={c.get('status')}" + (
        f" ({c.get('reason')})" if c.get("reason") else "")
        for c in status.get("conditions") or []) or "<none>"
    return [f"  unschedulable: {bool(spec.get('unschedulable'))}; taints: {taints}",
            f"  conditions: {conditions}",
            f"  capacity: {_kv(status.get('capacity'))}",
            f"  allocatable: {_kv(status.get('allocatable'))}",
            f"  kubelet {info.get('kubeletVersion', '?')}; arch "
            f"{info.get('architecture', '?')}"], capacity.node_findings(obj)


Describer = Callable[[RunReads, Obj, str | None, datetime | None], Awaitable[Result]]
OTHER_KINDS: dict[str, tuple[str, Describer]] = {
    "job": ("Job", _job), "cronjob": ("CronJob", _cronjob), "pvc": ("PersistentVolumeClaim", _pvc),
    "pv": ("PersistentVolume", _pv), "storageclass": ("StorageClass", _storageclass),
    "ingress": ("Ingress", _ingress), "networkpolicy": ("NetworkPolicy", _networkpolicy),
    "hpa": ("HorizontalPodAutoscaler", _hpa), "pdb": ("PodDisruptionBudget", _pdb),
    "resourcequota": ("ResourceQuota", _quota), "limitrange": ("LimitRange", _limitrange),
    "serviceaccount": ("ServiceAccount", _serviceaccount),
    "endpointslice": ("EndpointSlice", _endpointslice), "configmap": ("ConfigMap", _configmap),
    "secret": ("Secret", _secret), "node": ("Node", _node),
}
WITH_EVENTS = frozenset({"job", "cronjob", "pvc", "ingress", "hpa", "pdb", "node"})


async def describe_other(reads: RunReads, kind: str, obj: Obj, namespace: str | None,
                         now: datetime | None) -> tuple[str, list[Finding]]:
    title, func = OTHER_KINDS[kind]
    lines, found = await func(reads, obj, namespace, now)
    text = [*_head(title, obj, namespace, now), *lines]
    if kind in WITH_EVENTS and namespace:
        events = await events_for(reads, namespace, [name_of(obj)])
        text += ["recent events:", *("  " + line for line in
                                     events_text(events.all(), now, limit=10).splitlines())]
    return "\n".join(text), found
