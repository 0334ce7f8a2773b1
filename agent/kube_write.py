"""The write side of the Kubernetes API: reading and PATCHing workloads for the actions.

Kept apart from agent/kube.py (the read side) but built on its ``Cluster``: the same client,
worker threads, request timeout, BUDO_NAMESPACES scope and error translation, plus the one
translation the read side never needs — 409 Conflict, a stale resourceVersion.

Every patch is sent with an explicit Content-Type (the generated client would otherwise pick
``application/json-patch+json`` for any body) and ``dryRun=All`` when previewing.
"""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from agent.kube import Cluster, label_selector
from agent.protocols import Obj
from budo.errors import ClusterError, Conflict

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"

# canonical kind -> (Kind, read method, patch method, scale-subresource patch method)
WORKLOADS: dict[str, tuple[str, str, str, str | None]] = {
    "deployment": ("Deployment", "read_namespaced_deployment", "patch_namespaced_deployment",
                   "patch_namespaced_deployment_scale"),
    "statefulset": ("StatefulSet", "read_namespaced_stateful_set",
                    "patch_namespaced_stateful_set", "patch_namespaced_stateful_set_scale"),
    "daemonset": ("DaemonSet", "read_namespaced_daemon_set", "patch_namespaced_daemon_set",
                  None),
}


class WorkloadWriter:
    """Read and patch Deployments, StatefulSets and DaemonSets through a ``Cluster``."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.apps = cluster._apps

    async def read(self, kind: str, namespace: str, name: str) -> Obj:
        self.cluster.check_namespace(namespace)
        method = getattr(self.apps, WORKLOADS[kind][1])
        return await self.cluster._json(f"{kind} {name!r} in namespace {namespace!r}", method,
                                        name=name, namespace=namespace)

    async def patch(self, kind: str, namespace: str, name: str, body: Any, content_type: str,
                    *, dry_run: bool, scale: bool = False) -> Obj:
        """PATCH the workload (or its scale subresource). Raises ``Conflict`` when the body's
        resourceVersion is no longer current, other ``ClusterError``s as the read side does."""
        self.cluster.check_namespace(namespace)
        _, _, patch_name, scale_name = WORKLOADS[kind]
        method_name = scale_name if scale else patch_name
        if method_name is None:
            raise ClusterError(f"a {kind} has no scale subresource")
        what = f"{kind} {name!r}{' scale' if scale else ''} in namespace {namespace!r}"
        kwargs: dict[str, Any] = {"name": name, "namespace": namespace, "body": body,
                                  "_content_type": content_type}
        if dry_run:
            kwargs["dry_run"] = "All"
        try:
            return await self.cluster._json(what, getattr(self.apps, method_name), **kwargs)
        except ClusterError as exc:
            cause = exc.__cause__
            if isinstance(cause, ApiException) and cause.status == 409:
                raise Conflict(f"{what} changed since it was read: {exc}") from cause
            raise

    async def replicasets_of(self, deployment: Obj) -> list[Obj]:
        """The ReplicaSets a Deployment controls (by owner uid, as the controller does)."""
        meta = deployment["metadata"]
        selector = (deployment.get("spec") or {}).get("selector") or {}
        found = await self.cluster.list_replicasets(meta["namespace"], label_selector(selector))
        return [rs for rs in found if any(
            ref.get("uid") == meta.get("uid") or (ref.get("kind") == "Deployment"
                                                  and ref.get("name") == meta["name"])
            for ref in (rs.get("metadata") or {}).get("ownerReferences") or [])]
