"""Pod and container status: the realistic `status` a kubelet would report for a state.

Kept apart from the workload expansion because it is the part scenario authors tune most
(crashloops, pull errors, OOM kills), and the replay server reuses it for replacement pods.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

from scenarios.times import fmt

SAFE = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet Kubernetes uses for generated names


def stable_suffix(seed: str, length: int) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(SAFE[b % len(SAFE)] for b in digest[:length])


def stable_hex(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def stable_uid(seed: str) -> str:
    return str(uuid.UUID(hashlib.md5(seed.encode()).hexdigest()))


def image_id(image: str) -> str:
    repo = image.split(":")[0]
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def container_status(
    spec: dict[str, Any], state: dict[str, Any], started: datetime, pod: str,
) -> tuple[dict[str, Any], bool]:
    """(containerStatus, ready) for one container given its state keys."""
    kind = state.get("state", "running")
    name, image = spec["name"], spec["image"]
    restarts = state.get("restarts", 5 if kind == "crashloop" else 0)
    container_id = f"containerd://{stable_hex(pod + name + str(restarts), 64)}"
    last: dict[str, Any] = {}
    ready = kind == "running"
    if kind == "running":
        current: dict[str, Any] = {"running": {"startedAt": fmt(started)}}
    elif kind == "crashloop":
        finished = started + timedelta(minutes=max(1, 40 - restarts))
        current = {"waiting": {
            "reason": "CrashLoopBackOff",
            "message": f"back-off 5m0s restarting failed container={name} pod={pod}_"
                       f"{state.get('_namespace', 'default')}({stable_uid(pod)})",
        }}
        last = {"terminated": {
            "exitCode": state.get("exitCode", 1), "reason": state.get("reason", "Error"),
            "startedAt": fmt(finished - timedelta(seconds=3)), "finishedAt": fmt(finished),
            "containerID": container_id,
        }}
    elif kind == "waiting":
        current = {"waiting": {"reason": state.get("reason", "ContainerCreating")}}
        if "message" in state:
            current["waiting"]["message"] = state["message"]
    else:  # terminated
        code = state.get("exitCode", 1)
        current = {"terminated": {
            "exitCode": code, "reason": state.get("reason", "Completed" if code == 0 else "Error"),
            "startedAt": fmt(started), "finishedAt": fmt(started + timedelta(seconds=5)),
            "containerID": container_id,
        }}
        if "message" in state:
            current["terminated"]["message"] = state["message"]
    if "lastState" in state:
        last = {"terminated": _terminated(state["lastState"]["terminated"], started, container_id)}
    if "ready" in state:
        ready = bool(state["ready"])
    status: dict[str, Any] = {
        "name": name, "image": image, "imageID": "" if kind == "waiting" else image_id(image),
        "ready": ready, "restartCount": restarts, "started": kind == "running",
        "state": current, "lastState": last,
    }
    if kind != "waiting" or restarts:
        status["containerID"] = container_id
    return status, ready


def _terminated(given: dict[str, Any], started: datetime, container_id: str) -> dict[str, Any]:
    body = {"exitCode": 1, "reason": "Error", "containerID": container_id,
            "startedAt": fmt(started - timedelta(minutes=10)),
            "finishedAt": fmt(started - timedelta(seconds=1))}
    body.update(given)
    return body


def pod_status(
    pod: str, namespace: str, containers: list[dict[str, Any]], states: list[dict[str, Any]],
    init_names: list[str], started: datetime, node_ip: str | None, pod_ip: str | None,
    pod_state: dict[str, Any],
) -> dict[str, Any]:
    """The full Pod status for containers in the given states."""
    when = fmt(started)
    if pod_state.get("state") == "pending":
        return {
            "phase": pod_state.get("phase", "Pending"), "qosClass": _qos(containers),
            "conditions": [{
                "type": "PodScheduled", "status": "False", "lastProbeTime": None,
                "lastTransitionTime": when, "reason": pod_state.get("reason", "Unschedulable"),
                "message": pod_state.get("message", "0/3 nodes are available: 3 Insufficient "
                                         "cpu. preemption: 0/3 nodes are available: 3 No "
                                         "preemption victims found for incoming pod."),
            }],
        }
    statuses, all_ready, all_running = [], True, True
    for spec, state in zip(containers, states, strict=True):
        status, ready = container_status(spec, {**state, "_namespace": namespace}, started, pod)
        statuses.append(status)
        all_ready &= ready
        all_running &= "running" in status["state"]
    kinds = {s.get("state", "running") for s in states}
    if "phase" in pod_state:
        phase = pod_state["phase"]
    elif kinds == {"terminated"}:
        codes = {s.get("exitCode", 1) for s in states}
        phase = "Succeeded" if codes == {0} else "Failed"
    elif "waiting" in kinds and not any(s.get("restarts") for s in states):
        phase = "Pending"
    else:
        phase = "Running"
    ready_text = "True" if all_ready else "False"
    not_ready = [s["name"] for s in statuses if not s["ready"]]
    conditions: list[dict[str, Any]] = [
        {"type": "PodReadyToStartContainers", "status": "True"},
        {"type": "Initialized", "status": "True"},
        {"type": "Ready", "status": ready_text},
        {"type": "ContainersReady", "status": ready_text},
        {"type": "PodScheduled", "status": "True"},
    ]
    for cond in conditions:
        cond["lastProbeTime"] = None
        cond["lastTransitionTime"] = when
        if cond["status"] == "False":
            cond["reason"] = "ContainersNotReady"
            cond["message"] = f"containers with unready status: [{' '.join(not_ready)}]"
    status = {
        "phase": phase, "conditions": conditions, "hostIP": node_ip,
        "hostIPs": [{"ip": node_ip}], "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
        "startTime": when, "containerStatuses": statuses, "qosClass": _qos(containers),
    }
    if init_names:
        status["initContainerStatuses"] = [{
            "name": name, "image": "busybox:1.36", "imageID": image_id("busybox:1.36"),
            "containerID": f"containerd://{stable_hex(pod + name, 64)}", "ready": True,
            "restartCount": 0, "started": False, "lastState": {},
            "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": when,
                                     "finishedAt": when}},
        } for name in init_names]
    return status


def _qos(containers: list[dict[str, Any]]) -> str:
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    if all(r.get("limits") and r.get("requests") == r.get("limits") for r in resources):
        return "Guaranteed"
    return "Burstable"


def healthy_copy(pod: dict[str, Any], name: str, started: datetime) -> dict[str, Any]:
    """What a ReplicaSet creates after a delete: same template, fresh name, Running, 0 restarts."""
    import copy

    fresh = copy.deepcopy(pod)
    meta = fresh["metadata"]
    meta.update(name=name, uid=stable_uid(f"Pod/{meta.get('namespace')}/{name}"),
                creationTimestamp=fmt(started))
    meta.pop("deletionTimestamp", None)
    status = fresh.setdefault("status", {})
    for status_key in ("containerStatuses", "initContainerStatuses"):
        for cs in status.get(status_key, []):
            running = status_key == "containerStatuses"
            cs.update(
                restartCount=0, ready=running, started=running, lastState={}, imageID=image_id(
                    cs.get("image", "")),
                containerID=f"containerd://{stable_hex(name + cs['name'], 64)}",
                state={"running": {"startedAt": fmt(started)}} if running else cs["state"],
            )
    status.update(phase="Running", startTime=fmt(started))
    for cond in status.get("conditions", []):
        cond.update(status="True", lastTransitionTime=fmt(started))
        cond.pop("reason", None)
        cond.pop("message", None)
    return fresh
