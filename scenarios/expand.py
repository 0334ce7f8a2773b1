"""Expansion of the compact scenario parts (nodes, workloads, events) into full objects."""

from __future__ import annotations

import copy
import ipaddress
from datetime import datetime
from typing import Any

from scenarios.expand_pods import (
    pod_status,
    stable_hex,
    stable_suffix,
    stable_uid,
)
from scenarios.merge import deep_merge, env_list
from scenarios.times import fmt, parse_time

NAMESPACED = {
    "Pod", "Service", "Endpoints", "ConfigMap", "Secret", "Event", "Deployment", "ReplicaSet",
    "StatefulSet", "DaemonSet", "ServiceAccount", "PersistentVolumeClaim", "ControllerRevision",
    "ResourceQuota", "LimitRange", "Job", "CronJob", "Ingress", "NetworkPolicy",
    "HorizontalPodAutoscaler", "PodDisruptionBudget", "EndpointSlice",
}
STATE_KEYS = ("state", "reason", "message", "exitCode", "restarts", "ready", "lastState", "phase")
CONTAINER_SPEC_KEYS = ("command", "args", "resources", "readinessProbe", "livenessProbe",
                       "startupProbe", "securityContext", "volumeMounts", "imagePullPolicy")


def meta(kind: str, name: str, namespace: str | None, created: datetime,
         **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name, "uid": stable_uid(f"{kind}/{namespace}/{name}"),
        "resourceVersion": str(1000 + int(stable_hex(f"{kind}{namespace}{name}", 5), 16) % 90000),
        "creationTimestamp": fmt(created),
    }
    if namespace is not None:
        body["namespace"] = namespace
    body.update({k: v for k, v in extra.items() if v})
    return body


def _container(body: dict[str, Any], name: str) -> dict[str, Any]:
    ports = []
    for port in body.get("ports", []):
        entry = dict(port) if isinstance(port, dict) else {"containerPort": port}
        entry.setdefault("protocol", "TCP")
        ports.append(entry)
    spec: dict[str, Any] = {"name": name, "image": body["image"]}
    if ports:
        spec["ports"] = ports
    if body.get("env"):
        spec["env"] = env_list(body["env"])
    for key in CONTAINER_SPEC_KEYS:
        if key in body:
            spec[key] = copy.deepcopy(body[key])
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if probe in spec:  # the defaults the API server fills in
            spec[probe] = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
                           "failureThreshold": 3, **spec[probe]}
            if "grpc" in spec[probe]:  # kubectl describe dereferences grpc.service
                spec[probe]["grpc"] = {"service": "", **spec[probe]["grpc"]}
            if "httpGet" in spec[probe]:
                spec[probe]["httpGet"] = {"scheme": "HTTP", **spec[probe]["httpGet"]}
    spec.setdefault("imagePullPolicy", "IfNotPresent")
    spec.update(terminationMessagePath="/dev/termination-log",
                terminationMessagePolicy="File")
    return spec


def _state(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in STATE_KEYS if k in body}


class Expander:
    """Turns a merged scenario document into objects; keeps pod placement state."""

    def __init__(self, now: datetime, default_namespace: str) -> None:
        self.now, self.default_namespace = now, default_namespace
        self.nodes: list[dict[str, Any]] = []
        self._placed = 0
        self._ips_per_node: dict[str, int] = {}
        self.workload_pods: dict[tuple[str, str], list[str]] = {}
        self.workload_objects: dict[tuple[str, str], list[tuple[str, str, str]]] = {}

    def workload(self, w: dict[str, Any]) -> list[dict[str, Any]]:
        ns = w.get("namespace", self.default_namespace)
        name, kind = w["name"], w.get("kind", "Deployment")
        labels = dict(w.get("labels") or {"app": name})
        created = parse_time(w.get("created", "-7d"), self.now) or self.now
        started = parse_time(w.get("started", "-2d"), self.now) or self.now
        replicas = w.get("replicas", 1)
        main = _container(w, w.get("container", "server"))
        states = [_state(w)] + [_state(c) for c in w.get("containers", [])]
        init = [copy.deepcopy(c) for c in w.get("initContainers", [])]
        pod_spec = _pod_spec(w)
        objects: list[dict[str, Any]] = []
        revision = w.get("revision", 1)
        if kind == "StatefulSet":
            owner_kind, owner_name, owner_api = "StatefulSet", name, "apps/v1"
            pod_names = [f"{name}-{i}" for i in range(replicas)]
            extra_labels = {"controller-revision-hash": f"{name}-{stable_suffix(name, 10)}"}
        else:
            rs_hash = stable_suffix(f"{ns}/{name}/{revision}", 10)
            owner_kind, owner_name, owner_api = "ReplicaSet", f"{name}-{rs_hash}", "apps/v1"
            # failedCreate: the ReplicaSet controller could not create a single pod (quota,
            # LimitRange, admission): it records ReplicaFailure and creates none.
            pod_names = [] if w.get("failedCreate") else [
                f"{owner_name}-{stable_suffix(f'{owner_name}/{i}', 5)}" for i in range(replicas)]
            extra_labels = {"pod-template-hash": rs_hash}
        pod_labels = {**labels, **extra_labels}
        template = {"metadata": {"labels": dict(labels)}, "spec": copy.deepcopy(pod_spec)}
        ready_count = 0
        overrides = w.get("pods", [])
        for i, pod_name in enumerate(pod_names):
            override = overrides[i] if i < len(overrides) else {}
            pod_states = [dict(states[0], **override), *states[1:]]
            pod = self._pod(pod_name, ns, pod_labels, pod_spec, pod_states, started,
                            w.get("node"), (owner_api, owner_kind, owner_name),
                            [c["name"] for c in init])
            ready_count += all(cs["ready"] for cs in pod["status"].get("containerStatuses",
                                                                      [{"ready": False}]))
            objects.append(pod)
        # Earlier revisions (`history:`): the Deployment controller keeps their ReplicaSets for
        # rollbacks; one may still run pods (`replicas:`) when the new ones never became ready.
        history = self._history(w, ns, name, labels, created) if kind == "Deployment" else []
        old_serving = sum(int((rs["spec"] or {}).get("replicas") or 0)
                          for rs in history if rs["kind"] == "ReplicaSet")
        objects.extend(o for o in history if o["kind"] == "Pod")  # after the current pods
        objects.insert(0, self._controller(kind, name, ns, labels, template, replicas,
                                           ready_count, created, revision, w,
                                           len(pod_names), old_serving))
        rs_created = started if w.get("history") else created  # the rollout created it
        if kind == "Deployment":
            rs_meta = meta("ReplicaSet", owner_name, ns, rs_created, labels=pod_labels,
                           annotations={"deployment.kubernetes.io/revision": str(revision),
                                        "deployment.kubernetes.io/desired-replicas":
                                        str(replicas)},
                           ownerReferences=[_owner("apps/v1", "Deployment", name, ns)])
            rs_template = copy.deepcopy(template)
            rs_template["metadata"]["labels"] = pod_labels
            objects[1:1] = [o for o in history if o["kind"] == "ReplicaSet"]
            objects.insert(1, {
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": rs_meta,
                "spec": {"replicas": replicas, "selector": {"matchLabels": pod_labels},
                         "template": rs_template},
                "status": {"replicas": len(pod_names), "fullyLabeledReplicas": len(pod_names),
                           "readyReplicas": ready_count, "availableReplicas": ready_count,
                           "observedGeneration": 1,
                           **({"conditions": [_failure(w["failedCreate"], rs_created)]}
                              if w.get("failedCreate") else {})},
            })
        service = w.get("service", True)
        if service is not False and (main.get("ports") or isinstance(service, dict)):
            objects.append(self._service(name, ns, labels, main, {} if service is True
                                         else service, created))
        self.workload_pods[(ns, name)] = pod_names
        self.workload_objects[(ns, name)] = [
            (o["kind"], ns, o["metadata"]["name"]) for o in objects]
        return objects

    def _history(self, w: dict[str, Any], ns: str, name: str, labels: dict[str, str],
                 created: datetime) -> list[dict[str, Any]]:
        """Earlier revisions (`history:`): ReplicaSets scaled to 0, what `rollout undo` uses —
        or, with `replicas:`, still running Ready pods of that revision (a rollout whose new
        pods never became ready leaves the old ones serving). `env: {NAME: null}` in an entry:
        the variable did not exist in that revision."""
        objects: list[dict[str, Any]] = []
        for old in w.get("history", []):
            revision = old["revision"]
            keep = int(old.get("replicas", 0))
            changes = {k: v for k, v in old.items() if k not in ("revision", "replicas",
                                                                  "started")}
            env = changes.get("env")
            dropped: set[str] = set()
            if isinstance(env, dict):
                dropped = {k for k, v in env.items() if v is None}
            if dropped and isinstance(env, dict):
                changes["env"] = {k: v for k, v in env.items() if k not in dropped}
            body = deep_merge({k: v for k, v in w.items() if k != "history"}, changes)
            if dropped:
                body["env"] = [e for e in env_list(body.get("env")) if e["name"] not in dropped]
            rs_hash = stable_suffix(f"{ns}/{name}/{revision}", 10)
            rs_name = f"{name}-{rs_hash}"
            rs_labels = {**labels, "pod-template-hash": rs_hash}
            spec = _pod_spec(body)
            started = parse_time(old.get("started", "-2d"), self.now) or self.now
            pods = [self._pod(f"{rs_name}-{stable_suffix(f'{rs_name}/{i}', 5)}", ns, rs_labels,
                              spec, [{} for _ in spec["containers"]], started, w.get("node"),
                              ("apps/v1", "ReplicaSet", rs_name),
                              [c["name"] for c in spec.get("initContainers", [])])
                    for i in range(keep)]
            objects.append({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": meta("ReplicaSet", rs_name, ns, created, labels=rs_labels,
                                 annotations={"deployment.kubernetes.io/revision": str(revision)},
                                 ownerReferences=[_owner("apps/v1", "Deployment", name, ns)]),
                "spec": {"replicas": keep, "selector": {"matchLabels": rs_labels},
                         "template": {"metadata": {"labels": rs_labels}, "spec": spec}},
                "status": {"replicas": keep, "fullyLabeledReplicas": keep, "readyReplicas": keep,
                           "availableReplicas": keep, "observedGeneration": 1},
            })
            objects.extend(pods)
        return objects

    def _controller(self, kind: str, name: str, ns: str, labels: dict[str, str],
                    template: dict[str, Any], replicas: int, ready: int, created: datetime,
                    revision: int, w: dict[str, Any], created_pods: int | None = None,
                    old_serving: int = 0) -> dict[str, Any]:
        created_pods = replicas if created_pods is None else created_pods
        annotations = {"deployment.kubernetes.io/revision": str(revision)} \
            if kind == "Deployment" else {}
        annotations.update(w.get("annotations", {}))
        body: dict[str, Any] = {
            "apiVersion": "apps/v1", "kind": kind,
            "metadata": meta(kind, name, ns, created, labels=labels, annotations=annotations,
                             generation=revision),
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": template, "revisionHistoryLimit": 10},
        }
        available = "True" if ready + old_serving >= replicas else "False"
        if kind == "Deployment":
            body["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {
                "maxSurge": "25%", "maxUnavailable": "25%"}}
            body["spec"]["progressDeadlineSeconds"] = 600
            body["status"] = {
                "observedGeneration": revision, "replicas": created_pods + old_serving,
                "updatedReplicas": created_pods, "readyReplicas": ready + old_serving,
                "availableReplicas": ready + old_serving,
                "conditions": [
                    {"type": "Available", "status": available,
                     "reason": "MinimumReplicasAvailable" if available == "True"
                     else "MinimumReplicasUnavailable",
                     "message": "Deployment has minimum availability." if available == "True"
                     else "Deployment does not have minimum availability.",
                     "lastUpdateTime": fmt(created), "lastTransitionTime": fmt(created)},
                    {"type": "Progressing", "status": "True",
                     "reason": "NewReplicaSetAvailable",
                     "message": f'ReplicaSet "{name}-{stable_suffix(f"{ns}/{name}/{revision}", 10)}'
                                f'" has successfully progressed.',
                     "lastUpdateTime": fmt(created), "lastTransitionTime": fmt(created)},
                ],
            }
            if ready + old_serving < replicas:
                body["status"]["unavailableReplicas"] = replicas - ready - old_serving
            if w.get("failedCreate"):
                body["status"]["conditions"].append(_failure(w["failedCreate"], created))
            for cond in body["status"]["conditions"]:  # `conditions:` overrides by type
                cond.update(w.get("conditions", {}).get(cond["type"], {}))
            known = {c["type"] for c in body["status"]["conditions"]}
            for kind_, extra in w.get("conditions", {}).items():
                if kind_ not in known:
                    body["status"]["conditions"].append({"type": kind_, **extra})
        else:
            body["spec"]["serviceName"] = name
            body["status"] = {"replicas": replicas, "readyReplicas": ready,
                              "currentReplicas": replicas, "updatedReplicas": replicas,
                              "availableReplicas": ready, "observedGeneration": 1}
        return body

    def _pod(self, name: str, ns: str, labels: dict[str, str], spec: dict[str, Any],
             states: list[dict[str, Any]], started: datetime, node: str | None,
             owner: tuple[str, str, str], init_names: list[str]) -> dict[str, Any]:
        pod_spec = copy.deepcopy(spec)
        pending = states[0].get("state") == "pending"
        node_ip = pod_ip = None
        if not pending and self.nodes:
            target = next((n for n in self.nodes if n["metadata"]["name"] == node), None)
            if target is None:
                target = self.nodes[self._placed % len(self.nodes)]
                self._placed += 1
            node_name = target["metadata"]["name"]
            pod_spec["nodeName"] = node_name
            node_ip = target["status"]["addresses"][0]["address"]
            count = self._ips_per_node.get(node_name, 1) + 1
            self._ips_per_node[node_name] = count
            cidr = ipaddress.ip_network(target["spec"]["podCIDR"])
            pod_ip = str(cidr.network_address + count)
        status = pod_status(name, ns, pod_spec["containers"], states, init_names, started,
                            node_ip, pod_ip, states[0])
        return {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": meta("Pod", name, ns, started, labels=labels,
                             ownerReferences=[_owner(*owner, ns)]),
            "spec": pod_spec, "status": status,
        }

    def _service(self, name: str, ns: str, labels: dict[str, str], main: dict[str, Any],
                 given: dict[str, Any], created: datetime) -> dict[str, Any]:
        first = (main.get("ports") or [{"containerPort": 80}])[0]["containerPort"]
        ports = given.get("ports") or [{
            "name": "grpc" if first != 8080 else "http",
            "port": given.get("port", first), "targetPort": given.get("targetPort", first),
        }]
        ports = [dict({"protocol": "TCP"}, **p) for p in ports]
        service_name = given.get("name", name)
        cluster_ip = given.get("clusterIP") or _cluster_ip(f"{ns}/{service_name}")
        return {
            "apiVersion": "v1", "kind": "Service",
            "metadata": meta("Service", service_name, ns, created, labels=labels),
            "spec": {"type": given.get("type", "ClusterIP"),
                     "selector": dict(given.get("selector", labels)), "ports": ports,
                     "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                     "sessionAffinity": "None", "ipFamilies": ["IPv4"],
                     "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"},
            "status": {"loadBalancer": {}},
        }


def _pod_spec(w: dict[str, Any]) -> dict[str, Any]:
    main = _container(w, w.get("container", "server"))
    containers = [main] + [_container(c, c["name"]) for c in w.get("containers", [])]
    init = [copy.deepcopy(c) for c in w.get("initContainers", [])]
    pod_spec: dict[str, Any] = {
        "containers": containers, "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default", "terminationGracePeriodSeconds": 5,
        "schedulerName": "default-scheduler", "securityContext": {},
    }
    if init:
        pod_spec["initContainers"] = init
    pod_spec.update(copy.deepcopy(w.get("podSpec", {})))
    return pod_spec


def _failure(message: str, when: datetime) -> dict[str, Any]:
    """The ReplicaFailure condition the ReplicaSet controller sets (and the Deployment
    controller copies) when pod creation is refused."""
    return {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
            "message": message, "lastTransitionTime": fmt(when)}


def _owner(api: str, kind: str, name: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "name": name, "controller": True,
            "blockOwnerDeletion": True, "uid": stable_uid(f"{kind}/{ns}/{name}")}


def _cluster_ip(seed: str) -> str:
    number = int(stable_hex(seed, 4), 16)
    return f"10.96.{(number >> 8) % 254 + 1}.{number % 254 + 1}"
