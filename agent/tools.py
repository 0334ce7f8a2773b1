"""The tools the model calls: plain async functions with their JSON schemas, and
``build_toolbox(cluster)`` that wraps each one so that

- arguments are validated (missing, unknown, wrong type) with a one-line error the model can
  act on, before anything reaches the cluster;
- every ``ClusterError`` becomes ``ToolResult(ok=False, error=...)`` with a next step
  ("list pods with get_pods"), never an exception;
- every result is redacted (output, error, findings) before it leaves the toolbox, so no tool
  can forget to.

There is no approval gate here: ``delete_pod`` is marked ``mutating`` and the loop gates it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from agent.arguments import ArgumentError, validate_arguments
from agent.changes import recent_changes
from agent.describe import DESCRIBABLE, describe
from agent.events_read import events_about
from agent.kinds import ALIASES, CLUSTER_SCOPED
from agent.kube import Cluster
from agent.logs import MAX_CONTEXT, parse_since, read_logs
from agent.names import check_scope
from agent.podlist import get_pods_result
from agent.protocols import Preview, ToolResult, ToolSpec
from agent.reads import forget_run, run_reads
from agent.redact import redact_result
from agent.render import events_text, fold_events
from budo.errors import ClusterError, Conflict, Forbidden, NotFound

# Descriptions say what a tool does and when to use it, in a line or two; a parameter has a
# description only where its name does not say it. Every token here is paid on every request
# (eleven schemas on a 4096-token server: bench/context.py prints the cost), and the method
# itself lives in the system prompt (agent/prompts.py), not here.
_NS = {"type": "string"}

DESCRIPTIONS = {
    "list_namespaces": "The namespaces you may read. Use it when none is given or one is "
                       "refused.",
    "get_pods": (
        "Pods of a namespace, unhealthy first: ready, status and reason, restarts with the "
        "last exit, age, node. FINDINGS state the faults of the pods and of the objects around "
        "them. Start here."
    ),
    "get_events": "Events of a namespace, warnings and newest first, repeats folded with a "
                  "count.",
    "describe": (
        "One object in detail: spec, env (secret values hidden), container states and "
        "messages, conditions, events; a workload's latest change as old → new, a service's "
        "endpoints. FINDINGS state its faults."
    ),
    "recent_changes": (
        "What changed in a namespace, newest first: workload template changes (old → new), "
        "scaling, and config objects created or modified (never values)."
    ),
    "logs": (
        "Log lines of a pod's container (or a deployment's first pod). grep (a "
        "case-insensitive regex) searches far beyond tail and returns each match with "
        "`context` lines around it, repeats counted."
    ),
    "delete_pod": "Delete a pod so its controller recreates it: a restart, which fixes no bad "
                  "config or image.",
}

PARAMETERS: dict[str, dict[str, Any]] = {
    "list_namespaces": {"type": "object", "properties": {}, "required": []},
    "get_pods": {"type": "object", "properties": {"namespace": _NS}, "required": ["namespace"]},
    "get_events": {
        "type": "object",
        "properties": {
            "namespace": _NS,
            "involved_object": {"type": "string", "description": "Only this pod, or this "
                                "workload and its pods."},
        },
        "required": ["namespace"],
    },
    "describe": {
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": list(DESCRIBABLE)},
            "name": {"type": "string"},
            "namespace": {"type": "string", "description": "Not for node, pv, storageclass."},
        },
        "required": ["kind", "name"],
    },
    "recent_changes": {
        "type": "object",
        "properties": {
            "namespace": _NS,
            "since": {"type": "string", "description": "e.g. '30m' (default 2h)."},
        },
        "required": ["namespace"],
    },
    "logs": {
        "type": "object",
        "properties": {
            "namespace": _NS,
            "pod": {"type": "string"},
            "container": {"type": "string", "description": "Needed when the pod has several."},
            "tail": {"type": "integer", "minimum": 1, "maximum": 1000},
            "previous": {"type": "boolean", "description": "The crashed container before this "
                         "one."},
            "since": {"type": "string", "description": "e.g. '15m'."},
            "grep": {"type": "string"},
            "context": {"type": "integer", "minimum": 0, "maximum": MAX_CONTEXT},
        },
        "required": ["namespace", "pod"],
    },
    "delete_pod": {
        "type": "object",
        "properties": {"namespace": _NS, "pod": {"type": "string"}},
        "required": ["namespace", "pod"],
    },
}


def check_call(tool: str, scope: tuple[str, ...], args: dict[str, Any]) -> dict[str, Any]:
    """The toolbox's ``check`` hook (the loop runs it before any API call and any card):
    types, names, and for a mutating tool the BUDO_NAMESPACES scope."""
    clean = validate_arguments(tool, PARAMETERS[tool], args)
    if tool in MUTATING:
        check_scope(tool, clean.get("namespace"), scope)
    return clean


def error_text(exc: ClusterError) -> str:
    """One line with the next step for the model."""
    message = str(exc)
    if isinstance(exc, NotFound):
        if message.startswith("pod "):
            return f"{message} — list pods with get_pods"
        if message.startswith("logs of pod "):
            return f"{message.removeprefix('logs of ')} — list pods with get_pods"
        return f"{message} — check the name with get_pods or list_namespaces"
    if isinstance(exc, Forbidden):
        return f"{message} — use list_namespaces to see what you may read"
    return message


def _wrap(tool: str, func: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    schema = PARAMETERS[tool]

    @functools.wraps(func)
    async def call(**args: Any) -> Any:
        extra = {"approved": args.pop("approved")} if "approved" in args else {}
        try:
            clean = validate_arguments(tool, schema, args)
            result = await func(**clean, **extra)
        except ArgumentError as exc:
            result = ToolResult.failure(str(exc))
        except ClusterError as exc:
            result = ToolResult.failure(error_text(exc))
        except (ValueError, TypeError, KeyError, OSError) as exc:
            # A surprise from the client or a body: still one tool error, and still redacted
            # (its text may quote what the cluster sent).
            result = ToolResult.failure(f"{tool} failed: {type(exc).__name__}: {exc}")
        return redact_result(result) if isinstance(result, ToolResult) else result

    return call


def build_toolbox(cluster: Cluster, max_replicas: int = 50, poll_s: float = 0.5
                  ) -> list[ToolSpec]:
    """The read tools, delete_pod and the four actions (agent/actions.py) bound to
    ``cluster``, validated, error-translated and redacted."""

    async def list_namespaces() -> ToolResult:
        items = await cluster.list_namespaces()
        names = [f"{i['metadata']['name']} ({(i.get('status') or {}).get('phase', 'Active')})"
                 for i in items]
        scope = " (limited by BUDO_NAMESPACES)" if cluster.namespaces else ""
        return ToolResult(ok=True, output=f"namespaces{scope}: " + ", ".join(names or ["none"]))

    async def get_pods(namespace: str) -> ToolResult:
        output, found = await get_pods_result(run_reads(cluster), namespace)
        return ToolResult(ok=True, output=output, findings=found)

    async def get_events(namespace: str, involved_object: str | None = None) -> ToolResult:
        if involved_object:
            events, scope = await events_about(run_reads(cluster), namespace, involved_object)
            if not events:
                return ToolResult(ok=True, output=(
                    f"no events for {involved_object!r} in namespace {namespace!r} (events "
                    "expire after about an hour; try without involved_object)"))
        else:
            events, scope = await cluster.list_events(namespace), ""
        folded = len(fold_events(events))
        header = (f"{len(events)} events{scope} in namespace {namespace} ({folded} after folding "
                  "duplicates); warnings first, newest first")
        return ToolResult(ok=True, output=f"{header}\n{events_text(events)}")

    async def describe_tool(kind: str, name: str, namespace: str | None = None) -> ToolResult:
        canonical = ALIASES.get(kind.lower().strip())
        if canonical not in DESCRIBABLE:
            return ToolResult.failure(f"describe: unknown kind {kind!r}; use one of: "
                                      f"{', '.join(DESCRIBABLE)}")
        if canonical not in CLUSTER_SCOPED and not namespace:
            return ToolResult.failure(f"describe: namespace is required for a {canonical}")
        text, found = await describe(cluster, canonical, name,
                                     None if canonical in CLUSTER_SCOPED else namespace)
        return ToolResult(ok=True, output=text, findings=found)

    async def changes_tool(namespace: str, since: str = "2h") -> ToolResult:
        try:
            window = timedelta(seconds=parse_since(since))
        except ValueError:
            return ToolResult.failure(f"recent_changes: since must look like 30m or 2h "
                                      f"(got {since!r})")
        text, found = await recent_changes(run_reads(cluster), namespace, window)
        return ToolResult(ok=True, output=text, findings=found)

    async def logs(namespace: str, pod: str, container: str | None = None, tail: int = 200,
                   previous: bool = False, since: str | None = None,
                   grep: str | None = None, context: int = 2) -> ToolResult:
        return await read_logs(cluster, namespace, pod, container=container, tail=tail,
                               previous=previous, since=since, grep=grep, context=context)

    async def delete_pod_preview(namespace: str, pod: str) -> Preview | ToolResult:
        """Read the pod before anyone is asked: a missing pod gets no card, and the card's
        approval is bound to this pod's uid."""
        obj = await cluster.get("pod", pod, namespace)
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        if not uid:
            return ToolResult.failure(f"pod {pod} in namespace {namespace} has no uid; "
                                      "refusing to ask for a delete that cannot be bound")
        status = obj.get("status") or {}
        statuses = status.get("containerStatuses") or []
        ready = sum(1 for c in statuses if c.get("ready"))
        restarts = sum(int(c.get("restartCount") or 0) for c in statuses)
        owners = ", ".join(f"{o.get('kind')}/{o.get('name')}"
                           for o in meta.get("ownerReferences") or []) or "no owner"
        current = (f"pod {pod}: {status.get('phase', '?')}, {ready}/{len(statuses)} ready, "
                   f"{restarts} restarts, owner {owners}, uid {uid}")
        return Preview(changes=[f"delete pod {namespace}/{pod} (uid {uid})"], current=current,
                       binding={"uid": uid})

    async def delete_pod(namespace: str, pod: str,
                         approved: Preview | None = None) -> ToolResult:
        uid = str((approved.binding if approved else {}).get("uid") or "")
        if not uid:  # never delete what no card was bound to
            return ToolResult.failure("delete_pod: no approved pod uid; the action was NOT "
                                      "performed")
        try:
            deleted = await cluster.delete_pod(namespace, pod, uid=uid)
        except Conflict:
            return ToolResult.failure(
                f"pod {pod} in namespace {namespace} was replaced since the approval (its uid "
                f"is no longer {uid}); it was NOT deleted. Check it with get_pods before "
                "asking again.")
        forget_run()  # what this run has cached no longer describes the cluster
        owners = (deleted.get("metadata") or {}).get("ownerReferences") or []
        owner = ", ".join(f"{o.get('kind')}/{o.get('name')}" for o in owners)
        after = (f"its owner {owner} will create a replacement" if owner
                 else "it has no owner: nothing will recreate it")
        return ToolResult(ok=True, output=f"deleted pod {pod} in namespace {namespace}; {after}")

    funcs: dict[str, Callable[..., Awaitable[ToolResult]]] = {
        "list_namespaces": list_namespaces, "get_pods": get_pods, "get_events": get_events,
        "describe": describe_tool, "recent_changes": changes_tool, "logs": logs,
        "delete_pod": delete_pod,
    }
    previews = {"delete_pod": delete_pod_preview}
    from agent.actions import build_actions

    return [
        ToolSpec(name=name, description=DESCRIPTIONS[name], parameters=PARAMETERS[name],
                 func=_wrap(name, func), mutating=name in MUTATING,
                 check=functools.partial(check_call, name, cluster.namespaces),
                 preview=_wrap(name, previews[name]) if name in previews else None,
                 summarise=SUMMARIES.get(name))
        for name, func in funcs.items()
    ] + [dataclasses.replace(spec, func=_forgetting(spec.func))
         for spec in build_actions(cluster, max_replicas, poll_s)]


def _forgetting(func: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """After a mutating action, this run's cached lists no longer describe the cluster."""

    @functools.wraps(func)
    async def call(**args: Any) -> Any:
        try:
            return await func(**args)
        finally:
            forget_run()

    return call


MUTATING = frozenset({"delete_pod"})


SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "delete_pod": lambda a: f"delete pod {a.get('pod')} in namespace {a.get('namespace')}",
}
