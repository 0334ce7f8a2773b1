"""The remediation actions: four typed, mutating tools beside ``delete_pod``.

    rollout_restart(namespace, kind, name)           what `kubectl rollout restart` does
    rollout_undo(namespace, name, to_revision?)      what `kubectl rollout undo` does
    scale(namespace, kind, name, replicas)           what `kubectl scale` does
    set_env(namespace, kind, name, container, env_name, value)   one plain env var

Each goes through the loop's gate (agent/loop.py):

1. ``check`` — names, kinds, env var names, replica bounds and BUDO_NAMESPACES are checked
   here, so an invalid call costs no API request and posts no card;
2. ``preview`` — reads the object, builds the patch bound to its resourceVersion, sends it as
   a server-side dry run (``dryRun=All``) and diffs the answer against the object: the card
   shows exactly what would change. A refused dry run (validation, admission, quota) or a
   change that changes nothing is the tool result, and no card is posted;
3. ``func`` — sends *the same patch* (same body, same resourceVersion) for real; a 409 means
   the object changed since it was approved, and nothing is applied;
4. ``verify`` — watches the rollout until the new pods are updated and Ready or
   BUDO_VERIFY_TIMEOUT passes (agent/rollout.py).

The patches follow kubectl (pkg/polymorphichelpers/objectrestarter.go, rollback.go;
pkg/scale/scale.go; pkg/cmd/set/set_env.go), plus ``metadata.resourceVersion`` in the body,
which makes the API server's update conditional (409 Conflict when stale).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from agent.arguments import validate_arguments
from agent.kinds import ALIASES
from agent.kube import Cluster
from agent.kube_write import JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, WorkloadWriter
from agent.protocols import Obj, Preview, ToolResult, ToolSpec, Verification
from agent.redact import redact, redact_result
from agent.rollout import current_line, diff, watch_rollout
from budo.errors import ClusterError, Conflict, Forbidden, NotFound, ToolArgumentError

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
REVISION = "deployment.kubernetes.io/revision"
# Annotations `rollout undo` keeps from the Deployment instead of copying from the ReplicaSet.
UNDO_KEEP = {"kubectl.kubernetes.io/last-applied-configuration", REVISION,
             "deployment.kubernetes.io/revision-history",
             "deployment.kubernetes.io/desired-replicas",
             "deployment.kubernetes.io/max-replicas", "deprecated.deployment.rollback.to"}
MAX_VALUE = 4096

_NS = {"type": "string"}
_NAME = {"type": "string"}
_KIND = {"type": "string", "enum": ["deployment", "statefulset", "daemonset"]}

# Brief: every schema is paid on every request (agent/tools.py says why).
DESCRIPTIONS = {
    "rollout_restart": "Restart a workload's pods with a rolling update, so they re-read a "
                       "fixed ConfigMap or Secret; it fixes no bad config.",
    "rollout_undo": "Roll a Deployment back to its previous revision (or to_revision) when a "
                    "recent rollout broke it.",
    "scale": "Set a workload's replicas: for capacity, not for a crash.",
    "set_env": "Set one plain (never secret) environment variable on a workload's container; "
               "this rolls out new pods. Use it to correct a wrong value.",
}
PARAMETERS: dict[str, dict[str, Any]] = {
    "rollout_restart": {"type": "object", "properties": {
        "namespace": _NS, "kind": _KIND, "name": _NAME}, "required": ["namespace", "kind", "name"]},
    "rollout_undo": {"type": "object", "properties": {
        "namespace": _NS, "name": _NAME, "to_revision": {"type": "integer", "minimum": 1}},
        "required": ["namespace", "name"]},
    "scale": {"type": "object", "properties": {
        "namespace": _NS, "kind": {"type": "string", "enum": ["deployment", "statefulset"]},
        "name": _NAME, "replicas": {"type": "integer", "minimum": 0}},
        "required": ["namespace", "kind", "name", "replicas"]},
    "set_env": {"type": "object", "properties": {
        "namespace": _NS, "kind": _KIND, "name": _NAME, "container": {"type": "string"},
        "env_name": {"type": "string"}, "value": {"type": "string"}},
        "required": ["namespace", "kind", "name", "container", "env_name", "value"]},
}
KINDS = {"rollout_restart": ("deployment", "statefulset", "daemonset"),
         "scale": ("deployment", "statefulset"),
         "set_env": ("deployment", "statefulset", "daemonset")}


def summarise(tool: str, a: dict[str, Any]) -> str:
    target = f"{a.get('kind', 'deployment')}/{a.get('name')} in namespace {a.get('namespace')}"
    if tool == "set_env":
        return (f"set env {a.get('env_name')}={redact(str(a.get('value')))[0]} on container "
                f"{a.get('container')} of {target}")
    if tool == "scale":
        return f"scale {target} to {a.get('replicas')} replicas"
    if tool == "rollout_restart":
        return f"rollout restart {target}"
    to = f"revision {a['to_revision']}" if a.get("to_revision") else "its previous revision"
    return f"roll back deployment/{a.get('name')} in namespace {a.get('namespace')} to {to}"


def check_action(tool: str, cluster: Cluster, max_replicas: int, args: dict[str, Any]
                 ) -> dict[str, Any]:
    """Validate and normalise before any request: raises ToolArgumentError. Names (namespace,
    workload, container, env var) are checked by validate_arguments with agent/names.py's
    NAME_RULES, the one place the API's naming rules live."""
    clean = validate_arguments(tool, PARAMETERS[tool], args)
    try:
        cluster.check_namespace(clean["namespace"])
    except Forbidden as exc:
        raise ToolArgumentError(f"{tool}: {exc}") from None
    if tool != "rollout_undo":
        kind = ALIASES.get(clean["kind"].lower())
        if kind not in KINDS[tool]:
            raise ToolArgumentError(f"{tool}: kind must be one of {', '.join(KINDS[tool])}, "
                                    f"got {clean['kind']!r}")
        clean["kind"] = kind
    if tool == "scale" and not 0 <= clean["replicas"] <= max_replicas:
        raise ToolArgumentError(f"scale: replicas must be between 0 and {max_replicas} "
                                f"(BUDO_MAX_REPLICAS), got {clean['replicas']}")
    if tool == "rollout_undo" and clean.get("to_revision") is not None and \
            clean["to_revision"] < 1:
        raise ToolArgumentError("rollout_undo: to_revision must be 1 or more")
    if tool == "set_env":
        value = str(args.get("value", ""))  # as given: leading spaces may be meant
        if len(value) > MAX_VALUE or "\n" in value:
            raise ToolArgumentError(f"set_env: the value must be one line of at most "
                                    f"{MAX_VALUE} characters")
        if redact(f"{clean['env_name']}={value}")[1]:
            raise ToolArgumentError("set_env: the value looks like a secret; set_env only sets "
                                    "plain values (reference a Secret in the manifest instead)")
        clean["value"] = value
    return clean


class Actions:
    """The four actions bound to one cluster."""

    def __init__(self, cluster: Cluster, max_replicas: int = 50,
                 poll_s: float = 0.5) -> None:
        self.cluster = cluster
        self.writer = WorkloadWriter(cluster)
        self.max_replicas = max_replicas
        self.poll_s = poll_s

    # --- preview: the patch, bound, dry-run ------------------------------------------------

    async def preview(self, tool: str, **args: Any) -> Preview | ToolResult:
        kind = args.get("kind", "deployment")
        try:
            obj = await self.writer.read(kind, args["namespace"], args["name"])
            built = await self._build(tool, kind, obj, args)
            if isinstance(built, ToolResult):
                return redact_result(built)
            body, content_type, scale = built
            dry = await self.writer.patch(kind, args["namespace"], args["name"], body,
                                          content_type, dry_run=True, scale=scale)
        except NotFound as exc:
            return ToolResult.failure(f"{exc} — check the name with get_pods or describe")
        except Conflict as exc:
            return ToolResult.failure(f"the object changed while previewing ({exc}); try again")
        except ClusterError as exc:
            return ToolResult.failure(f"the API refused the dry run, so nothing was asked or "
                                      f"changed: {redact(str(exc))[0]}")
        after = dict(obj, spec=dict(obj.get("spec") or {}, replicas=dry["spec"]["replicas"])) \
            if scale else dry
        changes = diff(obj, after)
        if not changes:
            return ToolResult.failure(f"{summarise(tool, args)} would change nothing: "
                                      f"{current_line(kind, obj)}")
        meta = obj["metadata"]
        return Preview(changes=changes, current=redact(current_line(kind, obj))[0], binding={
            "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion"),
            "body": body, "content_type": content_type, "scale": scale})

    async def _build(self, tool: str, kind: str, obj: Obj, args: dict[str, Any]
                     ) -> tuple[Any, str, bool] | ToolResult:
        version = obj["metadata"].get("resourceVersion")
        bound = {"resourceVersion": version}
        paused = bool((obj.get("spec") or {}).get("paused"))
        if tool == "scale":
            return {"metadata": bound, "spec": {"replicas": args["replicas"]}}, MERGE_PATCH, True
        if tool == "rollout_restart":
            if paused:
                return ToolResult.failure("can't restart a paused deployment (it must be "
                                          "resumed first)")
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return ({"metadata": bound, "spec": {"template": {"metadata": {"annotations": {
                RESTARTED_AT: stamp}}}}}, STRATEGIC_PATCH, False)
        if tool == "set_env":
            containers = {c.get("name"): c for c in
                          obj["spec"]["template"]["spec"].get("containers") or []}
            container = containers.get(args["container"])
            if container is None:
                return ToolResult.failure(f"{kind}/{args['name']} has no container "
                                          f"{args['container']!r}; it has: "
                                          f"{', '.join(map(str, containers))}")
            existing = next((e for e in container.get("env") or []
                             if e.get("name") == args["env_name"]), None)
            if existing is not None and "valueFrom" in existing:
                return ToolResult.failure(
                    f"{args['env_name']} on {args['container']} is set from a reference "
                    "(valueFrom); set_env never replaces a reference with a plain value")
            return ({"metadata": bound, "spec": {"template": {"spec": {"containers": [
                {"name": args["container"], "env": [
                    {"name": args["env_name"], "value": args["value"]}]}]}}}},
                    STRATEGIC_PATCH, False)
        return await self._undo(obj, args.get("to_revision") or 0, version, paused)

    async def _undo(self, deploy: Obj, to_revision: int, version: str, paused: bool
                    ) -> tuple[Any, str, bool] | ToolResult:
        """kubectl's DeploymentRollbacker: that ReplicaSet's template, minus the hash label."""
        if paused:
            return ToolResult.failure("you cannot roll back a paused deployment; it must be "
                                      "resumed first")
        sets = await self.writer.replicasets_of(deploy)
        numbered = sorted(((int((rs["metadata"].get("annotations") or {}).get(REVISION, 0)), rs)
                           for rs in sets), key=lambda pair: pair[0])
        if to_revision:
            target = next((rs for number, rs in numbered if number == to_revision), None)
            if target is None:
                have = ", ".join(str(n) for n, _ in numbered) or "none"
                return ToolResult.failure(f"unable to find the specified revision "
                                          f"{to_revision} in history (revisions: {have})")
        else:
            if len(numbered) < 2:
                return ToolResult.failure(f"no rollout history found for deployment "
                                          f"{deploy['metadata']['name']!r}")
            target = numbered[-2][1]
        template = json.loads(json.dumps(target["spec"]["template"]))
        template.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
        if template == deploy["spec"]["template"]:
            number = (target["metadata"].get("annotations") or {}).get(REVISION)
            return ToolResult.failure(f"skipped rollback: the current template already matches "
                                      f"revision {number}")
        annotations = {k: v for k, v in (deploy["metadata"].get("annotations") or {}).items()
                       if k in UNDO_KEEP}
        annotations.update({k: v for k, v in (target["metadata"].get("annotations") or {})
                            .items() if k not in UNDO_KEEP})
        return ([{"op": "replace", "path": "/spec/template", "value": template},
                 {"op": "replace", "path": "/metadata/annotations", "value": annotations},
                 {"op": "replace", "path": "/metadata/resourceVersion", "value": version}],
                JSON_PATCH, False)

    # --- execute: exactly what was approved -------------------------------------------------

    async def execute(self, tool: str, approved: Preview | None = None, **args: Any
                      ) -> ToolResult:
        if approved is None:  # the loop always previews first; refuse rather than guess
            return ToolResult.failure(f"{tool}: no approved dry run to execute")
        kind = args.get("kind", "deployment")
        binding = approved.binding
        try:
            await self.writer.patch(kind, args["namespace"], args["name"], binding["body"],
                                    binding["content_type"], dry_run=False,
                                    scale=binding["scale"])
        except Conflict:
            return ToolResult.failure(
                f"the object changed since it was approved (resourceVersion "
                f"{binding['resourceVersion']} is no longer current); nothing was applied. "
                "Look at it again and ask again if the change is still right.")
        except ClusterError as exc:
            return ToolResult.failure(f"the change was not applied: {redact(str(exc))[0]}")
        return redact_result(ToolResult(True, f"applied: {summarise(tool, args)}\n"
                                        + "\n".join(f"  {c}" for c in approved.changes)))

    async def verify(self, tool: str, args: dict[str, Any], approved: Preview | None,
                     limit_s: float) -> Verification:
        return await watch_rollout(self.writer, args.get("kind", "deployment"),
                                   args["namespace"], args["name"], limit_s, self.poll_s)

    # --- the specs ----------------------------------------------------------------------------

    def specs(self) -> list[ToolSpec]:
        out = []
        for tool in ("rollout_restart", "rollout_undo", "scale", "set_env"):
            out.append(ToolSpec(
                name=tool, description=DESCRIPTIONS[tool], parameters=PARAMETERS[tool],
                func=_named(functools.partial(self.execute, tool), tool), mutating=True,
                check=functools.partial(check_action, tool, self.cluster, self.max_replicas),
                preview=functools.partial(self.preview, tool),
                summarise=functools.partial(summarise, tool),
                verify=functools.partial(self.verify, tool)))
        return out


def _named(func: Callable[..., Awaitable[ToolResult]], name: str
           ) -> Callable[..., Awaitable[ToolResult]]:
    async def call(**kwargs: Any) -> ToolResult:
        return await func(**kwargs)

    call.__name__ = name
    return call


def build_actions(cluster: Cluster, max_replicas: int = 50, poll_s: float = 0.5
                  ) -> list[ToolSpec]:
    """rollout_restart, rollout_undo, scale and set_env bound to ``cluster``; ``poll_s``: how
    often a verification re-reads the rollout (tests set it small)."""
    return Actions(cluster, max_replicas, poll_s).specs()
