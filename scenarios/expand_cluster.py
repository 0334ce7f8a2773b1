"""The cluster-level objects a scenario implies beside its workloads: namespaces, nodes,
events, and Endpoints as the endpoints controller computes them from each service."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from scenarios.expand import meta
from scenarios.expand_pods import stable_hex, stable_uid
from scenarios.times import fmt, parse_time, parse_timestamp


def namespace_object(name: str, created: datetime) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": meta("Namespace", name, None, created,
                         labels={"kubernetes.io/metadata.name": name}),
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"},
    }


def node_object(spec: dict[str, Any], index: int, now: datetime) -> dict[str, Any]:
    created = parse_time(spec.get("created", "-30d"), now) or now
    capacity = {"cpu": str(spec.get("cpu", "4")), "memory": str(spec.get("memory", "16Gi")),
                "pods": str(spec.get("pods", "110")), "ephemeral-storage": "98831908Ki"}
    allocatable = dict(capacity, cpu=f"{int(float(capacity['cpu']) * 1000) - 60}m")
    ready = spec.get("ready", True)
    defaults = {
        "NetworkUnavailable": ("False", "RouteCreated", "RouteController created a route"),
        "MemoryPressure": ("False", "KubeletHasSufficientMemory",
                           "kubelet has sufficient memory available"),
        "DiskPressure": ("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        "PIDPressure": ("False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        "Ready": ("True", "KubeletReady", "kubelet is posting ready status") if ready else
                 ("False", "KubeletNotReady", "container runtime network not ready"),
    }
    overrides = spec.get("conditions", {})
    conditions = []
    for cond, (status, reason, message) in defaults.items():
        given = overrides.get(cond, {})
        conditions.append({
            "type": cond, "status": str(given.get("status", status)),
            "reason": given.get("reason", reason), "message": given.get("message", message),
            "lastHeartbeatTime": fmt(now - timedelta(seconds=20)),
            "lastTransitionTime": fmt(created if not given else now - timedelta(minutes=12)),
        })
    name = spec["name"]
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
              "kubernetes.io/arch": "amd64", "node.kubernetes.io/instance-type": "e2-standard-4"}
    labels.update(spec.get("labels", {}))
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": meta("Node", name, None, created, labels=labels),
        "spec": {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"],
                 "providerID": f"gce://shop/us-central1-a/{name}",
                 **({"taints": spec["taints"]} if spec.get("taints") else {})},
        "status": {
            "capacity": capacity, "allocatable": allocatable, "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": f"10.128.0.{index + 10}"},
                          {"type": "Hostname", "address": name}],
            "nodeInfo": {
                "kubeletVersion": "v1.30.5", "kubeProxyVersion": "v1.30.5",
                "containerRuntimeVersion": "containerd://1.7.22", "osImage":
                "Container-Optimized OS from Google", "kernelVersion": "6.1.100+",
                "operatingSystem": "linux", "architecture": "amd64",
                "machineID": stable_hex(name, 32), "systemUUID": stable_uid(name),
                "bootID": stable_uid(name + "boot"),
            },
        },
    }


def event_object(spec: dict[str, Any], involved: dict[str, Any], now: datetime,
                 index: int) -> dict[str, Any]:
    last = parse_time(spec.get("last", "now"), now) or now
    first = parse_time(spec.get("first"), now) if "first" in spec else last
    kind = involved["kind"]
    source = spec.get("source") or {"Pod": "kubelet", "Deployment": "deployment-controller",
                                    "ReplicaSet": "replicaset-controller",
                                    "Node": "kubelet"}.get(kind, "default-scheduler")
    ns = involved.get("namespace") or "default"
    target = involved["name"]
    name = f"{target}.{stable_hex(f'{ns}{target}{index}', 16)}"
    body = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": meta("Event", name, ns, first or last),
        "involvedObject": involved, "reason": spec["reason"], "message": spec["message"],
        "type": spec.get("type", "Normal"), "count": spec.get("count", 1),
        "firstTimestamp": fmt(first or last), "lastTimestamp": fmt(last), "eventTime": None,
        "source": {"component": source}, "reportingComponent": source, "reportingInstance": "",
    }
    if source == "kubelet" and kind == "Pod":
        body["source"]["host"] = involved.get("_node", "")
    involved.pop("_node", None)
    return body


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def endpoints_for(service: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any]:
    """Endpoints as the endpoints controller computes them from the service's selector."""
    ns, name = service["metadata"]["namespace"], service["metadata"]["name"]
    ready: list[dict[str, Any]] = []
    unready: list[dict[str, Any]] = []
    for pod in pods:
        if pod["metadata"].get("namespace") != ns or not pod["status"].get("podIP"):
            continue
        if not matches(service["spec"].get("selector") or {}, pod["metadata"].get("labels", {})):
            continue
        address = {"ip": pod["status"]["podIP"], "nodeName": pod["spec"].get("nodeName"),
                   "targetRef": {"kind": "Pod", "name": pod["metadata"]["name"],
                                 "namespace": ns, "uid": pod["metadata"]["uid"]}}
        is_ready = any(c["type"] == "Ready" and c["status"] == "True"
                       for c in pod["status"].get("conditions", []))
        (ready if is_ready else unready).append(address)
    ports = [{"name": p.get("name", ""), "port": _target_port(p), "protocol": p.get("protocol",
                                                                                    "TCP")}
             for p in service["spec"].get("ports", [])]
    subset: dict[str, Any] = {"ports": ports}
    if ready:
        subset["addresses"] = ready
    if unready:
        subset["notReadyAddresses"] = unready
    return {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": meta("Endpoints", name, ns, _created(service),
                         labels=service["metadata"].get("labels")),
        "subsets": [subset] if (ready or unready) else [],
    }


def _target_port(port: dict[str, Any]) -> int:
    target = port.get("targetPort", port.get("port"))
    return target if isinstance(target, int) else port.get("port", 0)


def _created(obj: dict[str, Any]) -> datetime:
    return parse_timestamp(obj["metadata"]["creationTimestamp"]) or datetime.now()
