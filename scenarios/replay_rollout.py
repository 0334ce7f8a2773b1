"""What the replayed controllers do after a stored workload change: rollouts, scaling, and the
symptoms a scenario's fault keeps producing until its fix is rolled out.

Modelled on the real controllers (pkg/controller/deployment, statefulset, daemon):

- A Deployment whose pod template changed gets a new ReplicaSet ``<name>-<hash>`` (or re-uses
  the old one whose template matches, minus ``pod-template-hash``, as a rollback does), with
  ``deployment.kubernetes.io/revision`` = highest + 1. New pods start as ContainerCreating and
  become what their template makes them after ``start_delay`` seconds. Old pods are removed
  only once every new pod is Ready (RollingUpdate never takes the last available pod away), so
  a broken new template leaves the old pods serving and the rollout unfinished.
- Status follows what `kubectl rollout status` reads (scenarios/workload_status.py).
- A replicas-only change scales the current ReplicaSet (or the StatefulSet's ordinals).
- What a new pod becomes: Running and Ready when the scenario declares its template fixed (a
  ``remedies`` entry), otherwise the state the workload's existing pods are in (a crashloop
  stays a crashloop) — never kinder than the scenario.
- A remedy's ``symptoms`` stop once the fixed template's rollout completes
  (scenarios/replay_symptoms.py).
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from scenarios.expand import meta
from scenarios.expand_pods import pod_status, stable_suffix
from scenarios.model import Scenario
from scenarios.replay_symptoms import ReplayedPods, Symptoms
from scenarios.workload_status import (
    deployment_status,
    ready,
    replicaset_status,
    set_status,
    state_of,
)


class ReplayedCluster(ReplayedPods, Protocol):
    """What the controllers read and change of the replayed cluster (its ReplayState, in
    scenarios/replay_state.py, which owns a Rollouts: hence a Protocol, not an import)."""

    def find(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None: ...

    def _bump(self, obj: dict[str, Any]) -> None: ...

    def _event(self, obj: dict[str, Any], reason: str, message: str, now: datetime,
               source: str | None = None) -> None: ...

    def _refresh_endpoints(self, namespace: str) -> None: ...

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"


@dataclass(frozen=True)
class Write:
    """One stored (non-dry-run) workload change, for assertions in tests."""

    kind: str
    namespace: str
    name: str
    at: float


def _now() -> datetime:
    return datetime.now(UTC)


def _template_key(template: dict[str, Any]) -> str:
    body = copy.deepcopy(template)
    ((body.get("metadata") or {}).get("labels") or {}).pop(HASH_LABEL, None)
    return json.dumps(body, sort_keys=True)


class Rollouts:
    """The controllers' side of the replay; ``ReplayState.rollouts``."""

    def __init__(self, state: ReplayedCluster, scenario: Scenario) -> None:
        self.state = state
        self.remedies: list[dict[str, Any]] = list(getattr(scenario, "remedies", []) or [])
        self.start_delay = 1.0   # seconds a new pod spends in ContainerCreating
        self.writes: list[Write] = []
        self.started = _now()
        self.symptoms = Symptoms(state, self.remedies, self.started)
        self.healed_at = self.symptoms.healed_at
        self._pending: list[tuple[float, str, str, list[dict[str, Any]]]] = []
        self._active: set[tuple[str, str, str]] = set()
        self._created = 0

    # --- stored changes ----------------------------------------------------------------------

    def store(self, current: dict[str, Any], updated: dict[str, Any]) -> dict[str, Any]:
        """Persist a patched workload and start what its controller would do."""
        state = self.state
        state._bump(updated)
        state.objects[state.objects.index(current)] = updated
        meta_ = updated["metadata"]
        ns, name, kind = meta_["namespace"], meta_["name"], updated["kind"]
        self.writes.append(Write(kind, ns, name, time.time()))
        template_changed = current["spec"].get("template") != updated["spec"].get("template")
        if kind == "Deployment":
            if template_changed:
                self._new_replicaset(updated)
            else:
                self._scale_replicaset(updated)
        else:
            self._replace_owned(updated, template_changed)
        self._active.add((kind, ns, name))
        self.tick()
        return copy.deepcopy(updated)

    def _owned(self, ns: str, kind: str, name: str) -> list[dict[str, Any]]:
        return [o for o in self.state.objects if o["kind"] == "Pod"
                and o["metadata"].get("namespace") == ns
                and any(r.get("kind") == kind and r.get("name") == name
                        for r in o["metadata"].get("ownerReferences") or [])]

    def _replicasets(self, deploy: dict[str, Any]) -> list[dict[str, Any]]:
        ns, name = deploy["metadata"]["namespace"], deploy["metadata"]["name"]
        return [o for o in self.state.objects if o["kind"] == "ReplicaSet"
                and o["metadata"].get("namespace") == ns
                and any(r.get("kind") == "Deployment" and r.get("name") == name
                        for r in o["metadata"].get("ownerReferences") or [])]

    def current_replicaset(self, deploy: dict[str, Any]) -> dict[str, Any] | None:
        key = _template_key(deploy["spec"]["template"])
        return next((rs for rs in self._replicasets(deploy)
                     if _template_key(rs["spec"]["template"]) == key), None)

    def _newest_replicaset(self, deploy: dict[str, Any]) -> dict[str, Any] | None:
        return max(self._replicasets(deploy), default=None, key=lambda rs: int(
            (rs["metadata"].get("annotations") or {}).get(REVISION, 0)))

    def _new_replicaset(self, deploy: dict[str, Any]) -> None:
        now = _now()
        ns, name = deploy["metadata"]["namespace"], deploy["metadata"]["name"]
        sets = self._replicasets(deploy)
        revision = 1 + max((int(rs["metadata"].get("annotations", {}).get(REVISION, 0))
                            for rs in sets), default=0)
        rs = self.current_replicaset(deploy)
        replicas = deploy["spec"].get("replicas", 1)
        if rs is None:
            digest = hashlib.sha256(_template_key(deploy["spec"]["template"]).encode())
            pod_hash = stable_suffix(digest.hexdigest(), 10)
            labels = {**(deploy["spec"]["template"]["metadata"].get("labels") or {}),
                      HASH_LABEL: pod_hash}
            template = copy.deepcopy(deploy["spec"]["template"])
            template["metadata"]["labels"] = labels
            rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                  "metadata": meta("ReplicaSet", f"{name}-{pod_hash}", ns, now, labels=labels,
                                   ownerReferences=[self._owner(deploy)]),
                  "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                           "template": template},
                  "status": {"replicas": 0, "observedGeneration": 1}}
            self.state._bump(rs)
            self.state.objects.append(rs)
        rs["metadata"].setdefault("annotations", {}).update({
            REVISION: str(revision), "deployment.kubernetes.io/desired-replicas": str(replicas)})
        deploy["metadata"].setdefault("annotations", {})[REVISION] = str(revision)
        self._event(deploy, "ScalingReplicaSet",
                    f"Scaled up replica set {rs['metadata']['name']} to {replicas}")
        self._scale(rs, replicas, like=self._sample(deploy))

    def _scale_replicaset(self, deploy: dict[str, Any]) -> None:
        # A hand-written scenario Deployment may not match its generated ReplicaSet byte for
        # byte: scale the newest one rather than inventing a rollout nobody asked for.
        rs = self.current_replicaset(deploy) or self._newest_replicaset(deploy)
        if rs is None:
            return self._new_replicaset(deploy)
        replicas = deploy["spec"].get("replicas", 1)
        have = len(self._owned(rs["metadata"]["namespace"], "ReplicaSet", rs["metadata"]["name"]))
        if have != replicas:
            verb = "up" if replicas > have else "down"
            self._event(deploy, "ScalingReplicaSet",
                        f"Scaled {verb} replica set {rs['metadata']['name']} to {replicas}")
        self._scale(rs, replicas, like=self._sample(deploy))
        return None

    def _scale(self, owner: dict[str, Any], replicas: int, like: dict[str, Any] | None) -> None:
        ns, name = owner["metadata"]["namespace"], owner["metadata"]["name"]
        pods = self._owned(ns, owner["kind"], name)
        if owner["kind"] == "ReplicaSet":
            owner["spec"]["replicas"] = replicas
        for pod in pods[replicas:]:
            self.state.objects.remove(pod)
            self._event(owner, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")
        for index in range(len(pods), replicas):
            self._create_pod(owner, index, like)

    def _replace_owned(self, workload: dict[str, Any], template_changed: bool) -> None:
        ns, name, kind = (workload["metadata"]["namespace"], workload["metadata"]["name"],
                          workload["kind"])
        pods = self._owned(ns, kind, name)
        like = self._sample(workload)
        nodes = [n for n in self.state.objects if n["kind"] == "Node"]
        count = workload["spec"].get("replicas", 1) if kind == "StatefulSet" else (
            len(pods) or len(nodes) or 1)
        if kind == "StatefulSet":
            revision = f"{name}-{stable_suffix(_template_key(workload['spec']['template']), 10)}"
            workload.setdefault("status", {})["updateRevision"] = revision
            workload["status"].setdefault("currentRevision", revision if not pods else
                                          pods[0]["metadata"].get("labels", {}).get(
                                              "controller-revision-hash", ""))
        if template_changed:
            for pod in pods:
                self.state.objects.remove(pod)
                self._event(workload, "SuccessfulDelete",
                            f"delete Pod {pod['metadata']['name']} in {kind} {name} successful")
            pods = []
        if kind == "StatefulSet":
            self._scale(workload, count, like)
        elif template_changed:
            for index in range(count):
                self._create_pod(workload, index, like)

    def _sample(self, workload: dict[str, Any]) -> dict[str, Any] | None:
        """A pod of the workload as it runs now: new pods copy its state unless fixed."""
        ns, name = workload["metadata"]["namespace"], workload["metadata"]["name"]
        if workload["kind"] == "Deployment":
            pods = [p for rs in self._replicasets(workload)
                    for p in self._owned(ns, "ReplicaSet", rs["metadata"]["name"])]
        else:
            pods = self._owned(ns, workload["kind"], name)
        return copy.deepcopy(pods[0]) if pods else None

    def _create_pod(self, owner: dict[str, Any], index: int,
                    like: dict[str, Any] | None) -> None:
        now = _now()
        self._created += 1
        ns, owner_name = owner["metadata"]["namespace"], owner["metadata"]["name"]
        template = copy.deepcopy(owner["spec"]["template"])
        labels = dict(template["metadata"].get("labels") or {})
        if owner["kind"] == "StatefulSet":
            name = f"{owner_name}-{index}"
            labels["controller-revision-hash"] = owner["status"]["updateRevision"]
        else:
            name = f"{owner_name}-{stable_suffix(f'{owner_name}/{self._created}/{now}', 5)}"
        spec = template["spec"]
        nodes = [n for n in self.state.objects if n["kind"] == "Node"]
        node = next((n for n in nodes if like and n["metadata"]["name"] ==
                     like["spec"].get("nodeName")), nodes[index % len(nodes)] if nodes else None)
        node_ip = pod_ip = None
        if node is not None:
            spec["nodeName"] = node["metadata"]["name"]
            node_ip = node["status"]["addresses"][0]["address"]
            base = (node["spec"].get("podCIDR") or "10.244.0.0/24").split("/")[0].rsplit(".", 1)
            pod_ip = f"{base[0]}.{100 + self._created % 150}"
        containers = spec["containers"]
        creating = [{"state": "waiting", "reason": "ContainerCreating"} for _ in containers]
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": meta("Pod", name, ns, now, labels=labels, ownerReferences=[
                   self._owner(owner)]),
               "spec": spec,
               "status": pod_status(name, ns, containers, creating, [], now, node_ip, pod_ip,
                                    {})}
        self.state._bump(pod)
        self.state.objects.append(pod)
        self._event(owner, "SuccessfulCreate", f"Created pod: {name}")
        self._event(pod, "Scheduled", f"Successfully assigned {ns}/{name} to "
                    f"{spec.get('nodeName', '')}", source="default-scheduler")
        final = self._final_states(owner, containers, like)
        self._pending.append((time.monotonic() + self.start_delay, ns, name, final))

    def _final_states(self, owner: dict[str, Any], containers: list[dict[str, Any]],
                      like: dict[str, Any] | None) -> list[dict[str, Any]]:
        if self._fixing_remedy(owner) is not None or like is None:
            return [{"state": "running"} for _ in containers]
        statuses = {s["name"]: s for s in (like.get("status") or {}).get("containerStatuses")
                    or []}
        return [state_of(statuses[c["name"]]) if c["name"] in statuses
                else {"state": "running"} for c in containers]

    # --- remedies -----------------------------------------------------------------------------

    def _workload_of(self, obj: dict[str, Any]) -> tuple[str, str]:
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        if obj["kind"] == "ReplicaSet":
            owner = next((r for r in obj["metadata"].get("ownerReferences") or []
                          if r.get("kind") == "Deployment"), None)
            name = owner["name"] if owner else name
        return ns, name

    def _fixing_remedy(self, obj: dict[str, Any]) -> int | None:
        """The index of the remedy this workload's (or ReplicaSet's) template satisfies."""
        ns, name = self._workload_of(obj)
        containers = obj["spec"]["template"]["spec"].get("containers") or []
        for index, remedy in enumerate(self.remedies):
            if (remedy.get("namespace"), remedy["workload"]) != (ns, name):
                continue
            env_ok = all(any(e.get("name") == k and e.get("value") == str(v)
                             and not e.get("valueFrom") for c in containers
                             for e in c.get("env") or [])
                         for k, v in (remedy.get("env") or {}).items())
            image_ok = "image" not in remedy or any(c.get("image") == remedy["image"]
                                                    for c in containers)
            if env_ok and image_ok:
                return index
        return None

    # --- time passes -------------------------------------------------------------------------

    def tick(self) -> None:
        """Bring the replay up to now: pods started, rollouts finished, symptoms written."""
        now, clock = _now(), time.monotonic()
        due = [p for p in self._pending if p[0] <= clock]
        self._pending = [p for p in self._pending if p[0] > clock]
        touched: set[str] = set()
        for _, ns, name, final in due:
            pod = self.state.find("Pod", ns, name)
            if pod is None:
                continue
            node_ip = pod["status"].get("hostIP")
            pod_ip = pod["status"].get("podIP")
            pod["status"] = pod_status(name, ns, pod["spec"]["containers"], final, [], now,
                                       node_ip, pod_ip, {})
            self.state._bump(pod)
            for container, state in zip(pod["spec"]["containers"], final, strict=True):
                if state.get("state") in ("running", "crashloop"):
                    self._event(pod, "Started", f"Started container {container['name']}")
                if state.get("state") == "crashloop":
                    self._event(pod, "BackOff", f"Back-off restarting failed container "
                                f"{container['name']} in pod {name}", type_="Warning")
            touched.add(ns)
        for kind, ns, name in list(self._active):
            workload = self.state.find(kind, ns, name)
            if workload is None:
                self._active.discard((kind, ns, name))
                continue
            if self._settle(workload, now):
                self._active.discard((kind, ns, name))
            touched.add(ns)
        for ns in touched:
            self.state._refresh_endpoints(ns)
        self.symptoms.write(now)

    def _settle(self, workload: dict[str, Any], now: datetime) -> bool:
        """Update the workload's status; True once its rollout is complete."""
        ns, name, kind = (workload["metadata"]["namespace"], workload["metadata"]["name"],
                          workload["kind"])
        want = workload["spec"].get("replicas", 1)
        status = workload.setdefault("status", {})
        if kind == "Deployment":
            rs = self.current_replicaset(workload) or self._newest_replicaset(workload)
            new = self._owned(ns, "ReplicaSet", rs["metadata"]["name"]) if rs else []
            old_sets = [s for s in self._replicasets(workload) if s is not rs]
            done = len(new) == want and all(ready(p) for p in new)
            if done:
                for old in old_sets:
                    gone = self._owned(ns, "ReplicaSet", old["metadata"]["name"])
                    if gone or old["spec"].get("replicas"):
                        old["spec"]["replicas"] = 0
                        for pod in gone:
                            self.state.objects.remove(pod)
                        self._event(workload, "ScalingReplicaSet", f"Scaled down replica set "
                                    f"{old['metadata']['name']} to 0 from {len(gone)}")
            every = new + [p for s in old_sets for p in self._owned(ns, "ReplicaSet",
                                                                   s["metadata"]["name"])]
            deployment_status(status, workload, want, every, new, done,
                              rs["metadata"]["name"] if rs else "", now)
            for rs_ in [rs, *old_sets]:
                if rs_ is not None:
                    rs_["status"] = replicaset_status(
                        self._owned(ns, "ReplicaSet", rs_["metadata"]["name"]))
        else:
            pods = self._owned(ns, kind, name)
            done = set_status(kind, status, workload, want, pods)
        self.state._bump(workload)
        if done:
            fixed = self._fixing_remedy(workload)
            if fixed is not None and fixed not in self.healed_at:
                self.healed_at[fixed] = now
        return done

    # --- helpers -----------------------------------------------------------------------------

    def _owner(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": obj["kind"], "name": obj["metadata"]["name"],
                "uid": obj["metadata"].get("uid", ""), "controller": True,
                "blockOwnerDeletion": True}

    def _event(self, obj: dict[str, Any], reason: str, message: str, source: str | None = None,
               type_: str = "Normal") -> None:
        source = source or {"Deployment": "deployment-controller",
                            "ReplicaSet": "replicaset-controller",
                            "StatefulSet": "statefulset-controller",
                            "DaemonSet": "daemonset-controller"}.get(obj["kind"])
        self.state._event(obj, reason, message, _now().replace(microsecond=0), source=source)
        if type_ != "Normal":
            self.state.objects[-1]["type"] = type_
