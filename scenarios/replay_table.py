"""Server-side printing: the `meta.k8s.io/v1 Table` kubectl asks for with `as=Table`, so
`kubectl get pods` shows READY/STATUS/RESTARTS columns as it would on a real cluster."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from scenarios.times import parse_timestamp

Row = Callable[[dict[str, Any]], list[Any]]


def age(stamp: str | None) -> str:
    moment = parse_timestamp(stamp or "")
    if moment is None:
        return "<unknown>"
    seconds = int((datetime.now(UTC) - moment).total_seconds())
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    minutes = seconds // 60
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def _created(obj: dict[str, Any]) -> str:
    return age(obj["metadata"].get("creationTimestamp"))


def pod_status(pod: dict[str, Any]) -> str:
    status = pod.get("status", {})
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    reason = status.get("reason") or status.get("phase", "Unknown")
    for cs in status.get("containerStatuses", []):
        state = cs.get("state", {})
        if state.get("waiting", {}).get("reason"):
            return str(state["waiting"]["reason"])
        if state.get("terminated", {}).get("reason"):
            reason = state["terminated"]["reason"]
    return str(reason)


def _pod(pod: dict[str, Any]) -> list[Any]:
    statuses = pod.get("status", {}).get("containerStatuses", [])
    ready = sum(1 for cs in statuses if cs.get("ready"))
    total = len(pod.get("spec", {}).get("containers", []))
    restarts = sum(cs.get("restartCount", 0) for cs in statuses)
    return [pod["metadata"]["name"], f"{ready}/{total}", pod_status(pod), restarts,
            _created(pod), pod.get("status", {}).get("podIP") or "<none>",
            pod.get("spec", {}).get("nodeName") or "<none>"]


def _deployment(d: dict[str, Any]) -> list[Any]:
    status = d.get("status", {})
    return [d["metadata"]["name"], f"{status.get('readyReplicas', 0)}/"
            f"{d['spec'].get('replicas', 1)}", status.get("updatedReplicas", 0),
            status.get("availableReplicas", 0), _created(d)]


def _service(s: dict[str, Any]) -> list[Any]:
    spec = s.get("spec", {})
    ingress = s.get("status", {}).get("loadBalancer", {}).get("ingress", [])
    external = ",".join(i.get("ip", "") for i in ingress) or (
        "<pending>" if spec.get("type") == "LoadBalancer" else "<none>")
    ports = ",".join(f"{p['port']}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/"
                     f"{p.get('protocol', 'TCP')}" for p in spec.get("ports", []))
    return [s["metadata"]["name"], spec.get("type", "ClusterIP"), spec.get("clusterIP", ""),
            external, ports, _created(s)]


def _event(e: dict[str, Any]) -> list[Any]:
    involved = e.get("involvedObject", {})
    return [age(e.get("lastTimestamp") or e.get("firstTimestamp")), e.get("type", ""),
            e.get("reason", ""), f"{involved.get('kind', '').lower()}/{involved.get('name')}",
            e.get("message", "")]


def _node(n: dict[str, Any]) -> list[Any]:
    conditions = n.get("status", {}).get("conditions", [])
    ready: dict[str, Any] = next((c for c in conditions if c["type"] == "Ready"), {})
    return [n["metadata"]["name"], "Ready" if ready.get("status") == "True" else "NotReady",
            "<none>", _created(n), n.get("status", {}).get("nodeInfo", {}).get("kubeletVersion")]


def _replicaset(r: dict[str, Any]) -> list[Any]:
    status = r.get("status", {})
    return [r["metadata"]["name"], r["spec"].get("replicas", 0), status.get("replicas", 0),
            status.get("readyReplicas", 0), _created(r)]


def _namespace(n: dict[str, Any]) -> list[Any]:
    return [n["metadata"]["name"], n.get("status", {}).get("phase", "Active"), _created(n)]


def _default(o: dict[str, Any]) -> list[Any]:
    return [o["metadata"]["name"], _created(o)]


def _col(name: str, kind: str = "string", priority: int = 0) -> dict[str, Any]:
    return {"name": name, "type": kind, "format": "name" if name == "Name" else "",
            "description": "", "priority": priority}


COLUMNS: dict[str, tuple[list[dict[str, Any]], Row]] = {
    "Pod": ([_col("Name"), _col("Ready"), _col("Status"), _col("Restarts", "integer"),
             _col("Age"), _col("IP", priority=1), _col("Node", priority=1)], _pod),
    "Deployment": ([_col("Name"), _col("Ready"), _col("Up-to-date", "integer"),
                    _col("Available", "integer"), _col("Age")], _deployment),
    "Service": ([_col("Name"), _col("Type"), _col("Cluster-IP"), _col("External-IP"),
                 _col("Port(s)"), _col("Age")], _service),
    "Event": ([_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"),
               _col("Message")], _event),
    "Node": ([_col("Name"), _col("Status"), _col("Roles"), _col("Age"), _col("Version")],
             _node),
    "ReplicaSet": ([_col("Name"), _col("Desired", "integer"), _col("Current", "integer"),
                    _col("Ready", "integer"), _col("Age")], _replicaset),
    "Namespace": ([_col("Name"), _col("Status"), _col("Age")], _namespace),
}


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def table(kind: str, objects: list[dict[str, Any]], resource_version: str) -> dict[str, Any]:
    columns, row = COLUMNS.get(kind, ([_col("Name"), _col("Age")], _default))
    return {
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version}, "columnDefinitions": columns,
        "rows": [{"cells": row(o), "object": {
            "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": o["metadata"]}} for o in objects],
    }
