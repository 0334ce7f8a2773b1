"""The replayed cluster's mutable state: objects shifted to the present, logs, deletions."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from scenarios.expand_cluster import endpoints_for, event_object
from scenarios.expand_pods import healthy_copy, stable_suffix, stable_uid
from scenarios.model import ContainerLogs, Scenario
from scenarios.times import TIMESTAMP, fmt, parse_timestamp, shift_timestamps


@dataclass(frozen=True)
class Deletion:
    """One pod deletion the server performed (for assertions in tests)."""

    namespace: str
    name: str
    at: float          # time.time() when it happened
    user_agent: str


def _shift(value: Any, offset: timedelta) -> Any:
    if isinstance(value, dict):
        return {k: _shift(v, offset) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift(v, offset) for v in value]
    if isinstance(value, str) and TIMESTAMP.fullmatch(value):
        moment = parse_timestamp(value)
        return fmt(moment + offset) if moment else value
    return value


class ReplayState:
    """Objects and logs of one scenario as of server start, plus what happened since."""

    def __init__(self, scenario: Scenario, started: datetime | None = None) -> None:
        started = (started or datetime.now(UTC)).replace(microsecond=0)
        # Everything moves by the same offset, so "25 minutes ago" stays 25 minutes ago.
        self.offset = started - scenario.now
        # _shift builds new dicts and lists all the way down: the scenario is never changed.
        self.objects: list[dict[str, Any]] = _shift(scenario.objects, self.offset)
        self.logs: dict[tuple[str, str, str], ContainerLogs] = {
            key: ContainerLogs(
                shift_timestamps(entry.current, self.offset),
                None if entry.previous is None else shift_timestamps(entry.previous,
                                                                     self.offset))
            for key, entry in scenario.logs.items()
        }
        self.deletions: list[Deletion] = []
        self.resource_version = 100000
        from scenarios.replay_rollout import Rollouts

        self.rollouts = Rollouts(self, scenario)  # what controllers do after a PATCH

    def find(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        for obj in self.objects:
            meta = obj["metadata"]
            if obj["kind"] == kind and meta["name"] == name and meta.get("namespace") == namespace:
                return obj
        return None

    def _bump(self, obj: dict[str, Any]) -> None:
        self.resource_version += 1
        obj["metadata"]["resourceVersion"] = str(self.resource_version)

    def delete_pod(self, namespace: str, name: str, user_agent: str) -> dict[str, Any]:
        """Remove the pod; its controller (ReplicaSet/StatefulSet) creates a fresh one."""
        pod = self.find("Pod", namespace, name)
        assert pod is not None
        now = datetime.now(UTC).replace(microsecond=0)
        self.deletions.append(Deletion(namespace, name, time.time(), user_agent))
        self.objects.remove(pod)
        for key in [k for k in self.logs if k[:2] == (namespace, name)]:
            del self.logs[key]
        gone = copy.deepcopy(pod)
        gone["metadata"]["deletionTimestamp"] = fmt(now)
        gone["metadata"]["deletionGracePeriodSeconds"] = 0
        self._bump(gone)
        self._event(pod, "Killing", f"Stopping container {pod['spec']['containers'][0]['name']}",
                    now)
        owner = next((o for o in pod["metadata"].get("ownerReferences", [])
                      if o.get("controller")), None)
        if owner and owner["kind"] in ("ReplicaSet", "StatefulSet"):
            fresh_name = name if owner["kind"] == "StatefulSet" else \
                f"{owner['name']}-{stable_suffix(f'{name}/{len(self.deletions)}', 5)}"
            fresh = healthy_copy(pod, fresh_name, now)
            # A recreated pod is a new object: a new uid even when (StatefulSet) the name is
            # the same — that is what a uid precondition on a delete relies on.
            fresh["metadata"]["uid"] = stable_uid(f"{namespace}/{fresh_name}/{len(self.deletions)}")
            ip = fresh["status"].get("podIP")
            if ip:  # a new sandbox gets a new address on the same node
                head, _, last = ip.rpartition(".")
                fresh["status"]["podIP"] = f"{head}.{(int(last) + 100) % 250 + 2}"
                fresh["status"]["podIPs"] = [{"ip": fresh["status"]["podIP"]}]
            self._bump(fresh)
            self.objects.append(fresh)
            rs = self.find(owner["kind"], namespace, owner["name"]) or {
                "kind": owner["kind"], "apiVersion": "apps/v1",
                "metadata": {"name": owner["name"], "namespace": namespace,
                             "uid": owner.get("uid", "")}}
            self._event(rs, "SuccessfulCreate", f"Created pod: {fresh_name}", now)
            node = fresh["spec"].get("nodeName", "")
            self._event(fresh, "Scheduled", f"Successfully assigned {namespace}/{fresh_name} "
                        f"to {node}", now, source="default-scheduler")
            for container in fresh["spec"]["containers"]:
                self._event(fresh, "Started", f"Started container {container['name']}", now)
        self._refresh_endpoints(namespace)
        return gone

    def _event(self, obj: dict[str, Any], reason: str, message: str, now: datetime,
               source: str | None = None) -> None:
        meta = obj["metadata"]
        involved = {"kind": obj["kind"], "namespace": meta.get("namespace"),
                    "name": meta["name"], "uid": meta.get("uid", ""),
                    "apiVersion": obj.get("apiVersion", "v1")}
        spec = {"reason": reason, "message": message, "last": fmt(now)}
        if source or obj["kind"] == "ReplicaSet":
            spec["source"] = source or "replicaset-controller"
        event = event_object(spec, involved, now, len(self.objects) + len(self.deletions))
        self._bump(event)
        self.objects.append(event)

    def _refresh_endpoints(self, namespace: str) -> None:
        pods = [o for o in self.objects if o["kind"] == "Pod"]
        for i, obj in enumerate(self.objects):
            if obj["kind"] != "Endpoints" or obj["metadata"].get("namespace") != namespace:
                continue
            service = self.find("Service", namespace, obj["metadata"]["name"])
            if service and service["spec"].get("selector"):
                fresh = endpoints_for(service, pods)
                fresh["metadata"] = obj["metadata"]
                self._bump(fresh)
                self.objects[i] = fresh
