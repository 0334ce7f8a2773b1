"""What a replayed workload's status says, as its controller would write it: the counters and
conditions ``kubectl rollout status`` reads (kubectl pkg/polymorphichelpers/
rollout_status.go; pkg/controller/deployment/sync.go, statefulset, daemon), and the scenario
state that reproduces an existing container's status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from scenarios.times import fmt


def ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def state_of(status: dict[str, Any]) -> dict[str, Any]:
    """The scenario state keys that reproduce an existing container's status."""
    current = status.get("state") or {}
    if "waiting" in current:
        waiting = current["waiting"]
        if waiting.get("reason") == "CrashLoopBackOff":
            last = (status.get("lastState") or {}).get("terminated") or {}
            return {"state": "crashloop", "reason": last.get("reason", "Error"),
                    "exitCode": last.get("exitCode", 1), "restarts": 1}
        return {"state": "waiting", "reason": waiting.get("reason", "ContainerCreating"),
                **({"message": waiting["message"]} if waiting.get("message") else {})}
    if "terminated" in current:
        return {"state": "terminated", "reason": current["terminated"].get("reason", "Error"),
                "exitCode": current["terminated"].get("exitCode", 1)}
    return {"state": "running", "ready": bool(status.get("ready", True))}


def deployment_status(status: dict[str, Any], workload: dict[str, Any], want: int,
                      every: list[dict[str, Any]], new: list[dict[str, Any]], done: bool,
                      rs_name: str, now: datetime) -> None:
    """A Deployment's status from all its pods (``every``) and the new ReplicaSet's (``new``)."""
    count = sum(ready(p) for p in every)
    status.update(observedGeneration=workload["metadata"].get("generation", 1),
                  replicas=len(every), updatedReplicas=len(new), readyReplicas=count,
                  availableReplicas=count, unavailableReplicas=max(0, want - count))
    available = status.get("availableReplicas", 0) >= status.get("replicas", 0) > 0 or done
    status["conditions"] = [
        {"type": "Available", "status": "True" if available else "False",
         "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
         "message": "Deployment has minimum availability." if available
         else "Deployment does not have minimum availability.",
         "lastUpdateTime": fmt(now), "lastTransitionTime": fmt(now)},
        {"type": "Progressing", "status": "True",
         "reason": "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
         "message": f'ReplicaSet "{rs_name}" has successfully progressed.' if done
         else f'ReplicaSet "{rs_name}" is progressing.',
         "lastUpdateTime": fmt(now), "lastTransitionTime": fmt(now)},
    ]


def replicaset_status(pods: list[dict[str, Any]]) -> dict[str, Any]:
    count = sum(ready(p) for p in pods)
    return {"replicas": len(pods), "readyReplicas": count, "availableReplicas": count,
            "fullyLabeledReplicas": len(pods), "observedGeneration": 1}


def set_status(kind: str, status: dict[str, Any], workload: dict[str, Any], want: int,
               pods: list[dict[str, Any]]) -> bool:
    """A StatefulSet's or DaemonSet's status from its pods; True once its rollout is done."""
    count = sum(ready(p) for p in pods)
    expected = want if kind == "StatefulSet" else len(pods)
    done = len(pods) == expected and count == expected
    generation = workload["metadata"].get("generation", 1)
    if kind == "StatefulSet":
        status.update(observedGeneration=generation, replicas=len(pods), readyReplicas=count,
                      availableReplicas=count, updatedReplicas=len(pods),
                      currentReplicas=len(pods))
        if done:
            status["currentRevision"] = status.get("updateRevision", "")
    else:
        status.update(observedGeneration=generation, desiredNumberScheduled=len(pods),
                      currentNumberScheduled=len(pods), updatedNumberScheduled=len(pods),
                      numberReady=count, numberAvailable=count, numberMisscheduled=0)
    return done
