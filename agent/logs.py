"""The ``logs`` tool's work: resolve the pod and container, read, filter, and say what was read.

The header line always says which pod/container/window was read and, with ``grep``, how many
lines matched, so "nothing matched" is an explicit answer the model can widen, not silence.
"""

from __future__ import annotations

import re

from agent.findings import matches
from agent.kube import Cluster, label_selector
from agent.protocols import Obj, ToolResult
from budo.errors import ClusterError, NotFound

MAX_TAIL = 1000
SINCE = re.compile(r"^(\d+)([smh])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


def parse_since(since: str) -> int:
    """`30s`/`15m`/`2h` -> seconds; ValueError with the accepted shape otherwise."""
    match = SINCE.match(since.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"logs: since must look like 30s, 15m or 2h (got {since!r})")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


async def _resolve_pod(cluster: Cluster, namespace: str, name: str) -> tuple[Obj, str]:
    """The pod named ``name``, or the first pod of the deployment/statefulset of that name
    (with a note saying so)."""
    try:
        return await cluster.get("pod", name, namespace), ""
    except NotFound:
        pass
    for kind in ("deployment", "statefulset"):
        try:
            workload = await cluster.get(kind, name, namespace)
        except NotFound:
            continue
        selector = workload.get("spec", {}).get("selector") or {}
        pods = await cluster.list_pods(namespace, label_selector(selector))
        wanted = selector.get("matchLabels") or {}
        pods = sorted((p for p in pods if matches(p["metadata"].get("labels") or {}, wanted)),
                      key=lambda p: p["metadata"]["name"])
        if not pods:
            raise NotFound(f"{kind} {name!r} in namespace {namespace!r} has no pods")
        first = pods[0]["metadata"]["name"]
        return pods[0], f"({kind} {name} resolved to its first pod {first}, 1 of {len(pods)})"
    raise NotFound(f"pod {name!r} not found in namespace {namespace!r}")


async def read_logs(
    cluster: Cluster,
    namespace: str,
    pod: str,
    *,
    container: str | None = None,
    tail: int = 200,
    previous: bool = False,
    since: str | None = None,
    grep: str | None = None,
) -> ToolResult:
    if tail < 1:
        return ToolResult.failure(f"logs: tail must be at least 1 (got {tail})")
    capped = tail > MAX_TAIL
    tail = min(tail, MAX_TAIL)
    try:
        since_seconds = parse_since(since) if since else None
    except ValueError as exc:
        return ToolResult.failure(str(exc))
    pattern = None
    if grep:
        try:
            pattern = re.compile(grep, re.IGNORECASE)
        except re.error as exc:
            return ToolResult.failure(f"logs: grep {grep!r} is not a valid regular expression "
                                      f"({exc}); e.g. 'error|fail'")
    pod_obj, note = await _resolve_pod(cluster, namespace, pod)
    pod_name = pod_obj["metadata"]["name"]
    spec = pod_obj.get("spec", {})
    names = [c["name"] for c in spec.get("containers") or []]
    init_names = [c["name"] for c in spec.get("initContainers") or []]
    if container is None:
        if len(names) > 1:
            return ToolResult.failure(
                f"logs: pod {pod_name} has {len(names)} containers ({', '.join(names)}); "
                "pass container=")
        container = names[0] if names else None
    elif container not in names + init_names:
        return ToolResult.failure(
            f"logs: pod {pod_name} has no container {container!r}; its containers: "
            f"{', '.join(names + init_names)}")
    try:
        text = await cluster.read_log(namespace, pod_name, container=container, tail_lines=tail,
                                      previous=previous, since_seconds=since_seconds)
    except ClusterError as exc:
        if previous and not isinstance(exc, NotFound) and "previous" in str(exc).lower():
            return ToolResult.failure(
                f"logs: pod {pod_name} container {container} has no previous (terminated) "
                "container log: it has not restarted; read the current log with previous=false")
        raise
    lines = text.splitlines()
    window = f"last {tail} lines" + (f" within {since}" if since else "")
    what = (f"pod {pod_name} container {container}" + (" (previous)" if previous else "")
            + f", {window}" + (f" (tail capped at {MAX_TAIL})" if capped else ""))
    prefix = f"{note}\n" if note else ""
    if not lines:
        return ToolResult(ok=True, output=f"{prefix}{what}: the log is empty"
                          + ("" if previous else "; for a crashed container try previous=true"))
    if pattern is None:
        return ToolResult(ok=True, output=f"{prefix}{what}: {len(lines)} lines\n" + text.rstrip())
    matched = [line for line in lines if pattern.search(line)]
    if not matched:
        return ToolResult(ok=True, output=(
            f"{prefix}{what}: no lines matched /{grep}/ in {len(lines)} lines; widen with a "
            "larger tail, since, previous=true or another pattern"))
    header = f"{len(matched)} of {len(lines)} lines matched /{grep}/ ({what})"
    return ToolResult(ok=True, output=f"{prefix}{header}\n" + "\n".join(matched))
