"""Capacity and policy findings: ResourceQuotas used up, LimitRanges a template breaks, HPAs
at their ceiling or blind, PDBs that block drains, and nodes that are not fit to run pods."""

from __future__ import annotations

from collections.abc import Sequence

from agent.analyzers.common import (
    CRITICAL,
    INFO,
    WARNING,
    Finding,
    Obj,
    name_of,
    one_line,
    quantity,
)

STANDARD_TAINTS = ("node.kubernetes.io/", "node-role.kubernetes.io/control-plane")


def quota_findings(quota: Obj) -> list[Finding]:
    """Every resource whose used amount has reached its hard limit."""
    name = name_of(quota)
    status = quota.get("status") or {}
    hard, used = status.get("hard") or {}, status.get("used") or {}
    full = []
    for resource, limit in sorted(hard.items()):
        have, cap = quantity(used.get(resource, "0")), quantity(limit)
        if have is not None and cap is not None and have >= cap:
            full.append(f"{resource} {used.get(resource, '0')}/{limit}")
    if not full:
        return []
    return [Finding(f"resourcequota {name} is exhausted: {', '.join(full)} (used/hard); "
                    "new pods that need more are refused", CRITICAL)]


def limitrange_findings(limitrange: Obj, templates: Sequence[tuple[str, Obj]]
                        ) -> list[Finding]:
    """Containers of workload templates whose requests/limits fall outside a Container
    LimitRange's min/max: the API refuses their pods."""
    found: list[Finding] = []
    for item in (limitrange.get("spec") or {}).get("limits") or []:
        if item.get("type", "Container") != "Container":
            continue
        for bound, op in (("max", "above"), ("min", "below")):
            for resource, value in (item.get(bound) or {}).items():
                edge = quantity(value)
                if edge is None:
                    continue
                for owner, template in templates:
                    for c in (template.get("spec") or {}).get("containers") or []:
                        res = c.get("resources") or {}
                        have = (res.get("limits") or {}).get(resource) if bound == "max" \
                            else (res.get("requests") or {}).get(resource)
                        amount = quantity(have)
                        if amount is None:
                            continue
                        if (amount > edge) if bound == "max" else (amount < edge):
                            which = "limit" if bound == "max" else "request"
                            found.append(Finding(
                                f"{owner} container {c.get('name')} {resource} {which} {have} "
                                f"is {op} LimitRange {name_of(limitrange)} {bound} {value}: "
                                "its pods are refused at admission", CRITICAL))
    return found


def hpa_findings(hpa: Obj, targets: set[tuple[str, str]] | None) -> list[Finding]:
    """At maxReplicas, unable to read metrics or to scale, or aimed at a missing target
    (``targets``: the (kind, name) workloads that exist; None: unknown)."""
    name = name_of(hpa)
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    found: list[Finding] = []
    if targets is not None and (str(ref.get("kind")), str(ref.get("name"))) not in targets:
        found.append(Finding(f"horizontalpodautoscaler {name} targets {ref.get('kind')} "
                             f"{ref.get('name')}, which does not exist", CRITICAL))
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    for kind in ("ScalingActive", "AbleToScale"):
        cond = conditions.get(kind, {})
        if cond.get("status") == "False":
            found.append(Finding(f"horizontalpodautoscaler {name} {kind}=False "
                                 f"({cond.get('reason')}): {one_line(cond.get('message'))}",
                                 CRITICAL))
    current, ceiling = status.get("currentReplicas"), spec.get("maxReplicas")
    if current is not None and ceiling is not None and int(current) >= int(ceiling):
        limited = conditions.get("ScalingLimited", {})
        metrics = _metrics_text(status)
        found.append(Finding(f"horizontalpodautoscaler {name} is at maxReplicas "
                             f"({current}/{ceiling}) for {ref.get('kind')} {ref.get('name')}"
                             + (f"; {metrics}" if metrics else "")
                             + (f"; {one_line(limited.get('message'))}"
                                if limited.get("status") == "True" else ""), WARNING))
    return found


def _metrics_text(status: Obj) -> str:
    parts = []
    for metric in status.get("currentMetrics") or []:
        resource = metric.get("resource") or {}
        current = resource.get("current") or {}
        if "averageUtilization" in current:
            parts.append(f"{resource.get('name')} at {current['averageUtilization']}%")
    return ", ".join(parts)


def pdb_findings(pdb: Obj, draining: bool) -> list[Finding]:
    """0 allowed disruptions: a drain waits forever. Only a fault while a node is being
    drained (cordoned), so otherwise it is information."""
    name = name_of(pdb)
    status = pdb.get("status") or {}
    if "disruptionsAllowed" not in status or int(status["disruptionsAllowed"]) > 0:
        return []
    if not int(status.get("expectedPods") or 0):
        return []
    spec = pdb.get("spec") or {}
    rule = (f"minAvailable {spec['minAvailable']}" if "minAvailable" in spec
            else f"maxUnavailable {spec.get('maxUnavailable')}")
    text = (f"poddisruptionbudget {name} allows 0 disruptions ({rule}; "
            f"{status.get('currentHealthy', 0)}/{status.get('expectedPods')} healthy): "
            "evictions of its pods are refused, so a node drain blocks")
    return [Finding(text, CRITICAL if draining else INFO)]


def node_findings(node: Obj) -> list[Finding]:
    name = name_of(node)
    spec, status = node.get("spec") or {}, node.get("status") or {}
    found: list[Finding] = []
    for cond in status.get("conditions") or []:
        kind, state = cond.get("type"), cond.get("status")
        if kind == "Ready" and state != "True":
            found.append(Finding(f"node {name} is NotReady ({cond.get('reason')}): "
                                 f"{one_line(cond.get('message'))}", CRITICAL))
        elif kind in ("MemoryPressure", "DiskPressure", "PIDPressure") and state == "True":
            found.append(Finding(f"node {name} has {kind} ({cond.get('reason')}): the kubelet "
                                 "evicts pods and the scheduler avoids it", CRITICAL))
        elif kind == "NetworkUnavailable" and state == "True":
            found.append(Finding(f"node {name} NetworkUnavailable: {cond.get('message')}",
                                 CRITICAL))
    if spec.get("unschedulable"):
        found.append(Finding(f"node {name} is cordoned (unschedulable): no new pods land there",
                             WARNING))
    taints = [t for t in spec.get("taints") or []
              if t.get("effect") in ("NoSchedule", "NoExecute")
              and not str(t.get("key", "")).startswith(STANDARD_TAINTS)]
    if taints:
        shown = ", ".join(f"{t.get('key')}={t.get('value', '')}:{t.get('effect')}"
                          for t in taints)
        found.append(Finding(f"node {name} is tainted {shown}: only pods that tolerate it "
                             "schedule there", INFO))
    return found
