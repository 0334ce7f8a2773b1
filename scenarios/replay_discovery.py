"""What the replay API server says about itself: versions, groups, resources, Status bodies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SERVER_VERSION = {
    "major": "1", "minor": "30", "gitVersion": "v1.30.5", "gitCommit":
    "74e84a90c725047b1328ff3d589fedb1cb7a120e", "gitTreeState": "clean",
    "buildDate": "2024-09-12T00:11:55Z", "goVersion": "go1.22.6", "compiler": "gc",
    "platform": "linux/amd64",
}
READ = ["get", "list", "watch"]
WRITE = ("get", "list", "watch", "patch")  # PATCH only: scenarios/replay_patch.py


@dataclass(frozen=True)
class Resource:
    group: str           # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    short: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("get", "list", "watch")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()


RESOURCES = [
    Resource("", "v1", "namespaces", "Namespace", False, ("ns",)),
    Resource("", "v1", "nodes", "Node", False, ("no",)),
    Resource("", "v1", "pods", "Pod", True, ("po",), ("get", "list", "watch", "delete")),
    Resource("", "v1", "services", "Service", True, ("svc",)),
    Resource("", "v1", "endpoints", "Endpoints", True, ("ep",)),
    Resource("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    Resource("", "v1", "secrets", "Secret", True),
    Resource("", "v1", "events", "Event", True, ("ev",)),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",)),
    Resource("apps", "v1", "deployments", "Deployment", True, ("deploy",), WRITE),
    Resource("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",)),
    Resource("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",), WRITE),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",), WRITE),
    Resource("apps", "v1", "controllerrevisions", "ControllerRevision", True),
    Resource("", "v1", "persistentvolumes", "PersistentVolume", False, ("pv",)),
    Resource("", "v1", "resourcequotas", "ResourceQuota", True, ("quota",)),
    Resource("", "v1", "limitranges", "LimitRange", True, ("limits",)),
    Resource("batch", "v1", "jobs", "Job", True),
    Resource("batch", "v1", "cronjobs", "CronJob", True, ("cj",)),
    Resource("networking.k8s.io", "v1", "ingresses", "Ingress", True, ("ing",)),
    Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ("netpol",)),
    Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True,
             ("hpa",)),
    Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",)),
    Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
    Resource("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ("sc",)),
    Resource("events.k8s.io", "v1", "events", "Event", True, ("ev",)),
]
# The preferred version of each group a v1.30 API server serves (autoscaling also has v1,
# which this replay does not serve; clients that ask for it get a 404 as for any unknown
# version).
GROUPS = {"apps": "v1", "events.k8s.io": "v1", "batch": "v1", "networking.k8s.io": "v1",
          "autoscaling": "v2", "policy": "v1", "discovery.k8s.io": "v1",
          "storage.k8s.io": "v1"}


def find_resource(group: str, version: str, plural: str) -> Resource | None:
    for res in RESOURCES:
        if (res.group, res.version, res.plural) == (group, version, plural):
            return res
    return None


def api_versions(address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": address}]}


def _group(name: str, version: str) -> dict[str, Any]:
    gv = {"groupVersion": f"{name}/{version}", "version": version}
    return {"name": name, "versions": [gv], "preferredVersion": gv}


def group_list() -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group(name, version) for name, version in GROUPS.items()]}


def group(name: str) -> dict[str, Any] | None:
    if name not in GROUPS:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, GROUPS[name])}


def resource_list(group_name: str, version: str) -> dict[str, Any] | None:
    chosen = [r for r in RESOURCES if r.group == group_name and r.version == version]
    if not chosen:
        return None
    resources: list[dict[str, Any]] = []
    for res in chosen:
        entry: dict[str, Any] = {
            "name": res.plural, "singularName": res.singular, "namespaced": res.namespaced,
            "kind": res.kind, "verbs": list(res.verbs),
        }
        if res.short:
            entry["shortNames"] = list(res.short)
        if res.kind in ("Pod", "Deployment", "Service", "ReplicaSet", "StatefulSet",
                        "DaemonSet", "Job", "CronJob", "HorizontalPodAutoscaler"):
            entry["categories"] = ["all"]
        resources.append(entry)
        if res.kind == "Pod":
            resources.append({"name": "pods/log", "singularName": "", "namespaced": True,
                              "kind": "Pod", "verbs": ["get"]})
        if res.kind in ("Deployment", "StatefulSet"):
            resources.append({"name": f"{res.plural}/scale", "singularName": "",
                              "namespaced": True, "group": "autoscaling", "version": "v1",
                              "kind": "Scale", "verbs": ["get", "patch"]})
    gv = f"{group_name}/{version}" if group_name else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": resources}


REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 409: "Conflict", 500: "InternalError",
           503: "ServiceUnavailable", 504: "Timeout"}


def status(code: int, message: str, *, name: str | None = None, kind: str | None = None,
           group: str = "") -> dict[str, Any]:
    """A `v1/Status` failure as the API server writes it."""
    body: dict[str, Any] = {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": REASONS.get(code, "Unknown"), "code": code,
    }
    details = {k: v for k, v in (("name", name), ("group", group), ("kind", kind)) if v}
    if details:
        body["details"] = details
    if code == 400:
        body.pop("reason")  # the API sends 400s such as log errors without a reason
    return body


def forbidden(user: str, verb: str, res: Resource, namespace: str | None,
              name: str | None = None) -> dict[str, Any]:
    target = f'{res.plural} "{name}"' if name else res.plural
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (f'{target} is forbidden: User "{user}" cannot {verb} resource "{res.plural}" '
               f'in API group "{res.group}" {where}')
    return status(403, message, name=name, kind=res.plural, group=res.group)


def to_events_v1(core: dict[str, Any]) -> dict[str, Any]:
    """A core/v1 Event in its events.k8s.io/v1 shape."""
    return {
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": core["metadata"],
        "regarding": core.get("involvedObject", {}), "note": core.get("message", ""),
        "reason": core.get("reason", ""), "type": core.get("type", "Normal"),
        "deprecatedCount": core.get("count", 1),
        "deprecatedFirstTimestamp": core.get("firstTimestamp"),
        "deprecatedLastTimestamp": core.get("lastTimestamp"),
        "deprecatedSource": core.get("source", {}),
        "reportingController": core.get("reportingComponent", ""),
        "reportingInstance": core.get("reportingInstance", ""),
        # events.k8s.io requires eventTime (clients validate it); legacy events have none.
        "eventTime": (core.get("eventTime") or core.get("firstTimestamp") or "").replace(
            "Z", ".000000Z") or None,
        "action": "",
    }
