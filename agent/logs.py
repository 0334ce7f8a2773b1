"""The ``logs`` tool's work: resolve the pod and container, read, filter, and say what was read.

Without ``grep`` it reads the last ``tail`` lines (at most ``MAX_TAIL``). With ``grep`` it
searches a much larger window — the last ``GREP_WINDOW_LINES`` lines, or the ``since``
window — streamed line by line and keeping only the matches and their context (like
``grep -C``), so a sparse error in a busy 50 MB log is found without holding the log.

The header line always says which pod/container/window was read and, with ``grep``, how many
lines matched, so "nothing matched" is an explicit answer the model can widen, not silence.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque

from agent.analyzers import logs as log_an
from agent.analyzers.common import CRITICAL, Finding, fit, matches
from agent.analyzers.network import dns_findings
from agent.kube import Cluster, label_selector
from agent.protocols import Obj, ToolResult
from agent.reads import run_reads
from budo.errors import ClusterError, Forbidden, NotFound

MAX_TAIL = 1000
GREP_WINDOW_LINES = 100_000   # ~20 MB of typical 200-byte lines
GREP_WINDOW_BYTES = 32 << 20  # and never more than this from the API
MAX_BLOCKS = 10               # kinds of matching line shown (newest of each); rest counted
MAX_CONTEXT = 10
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
    for kind in ("deployment", "statefulset", "daemonset"):
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


class Matcher:
    """Streams lines, keeping for each kind of matching line (its template: numbers, ids and
    times masked) only the newest match with ``context`` lines before and after it, for at
    most ``MAX_BLOCKS`` kinds, plus a count and first/last time per template. A busy log that
    repeats one error a thousand times costs one block. Memory: the blocks kept plus
    ``context`` lines."""

    def __init__(self, pattern: re.Pattern[str], context: int) -> None:
        self.pattern, self.context = pattern, context
        self.lines = 0
        self.matched = 0
        self.before: deque[str] = deque(maxlen=context)
        self.blocks: OrderedDict[str, list[str]] = OrderedDict()
        self.dropped_blocks = 0
        self.after = 0
        self.open_key: str | None = None
        self.templates: dict[str, log_an.Template] = {}
        self.recent: deque[str] = deque(maxlen=200)  # matched lines for the host/DNS checks

    def __call__(self, line: str) -> None:
        self.lines += 1
        if self.pattern.search(line):
            self.matched += 1
            self.recent.append(line)
            key = log_an.template(line)
            entry = self.templates.get(key)
            if entry is None:
                entry = self.templates[key] = log_an.Template(example=line)
            entry.count += 1
            stamp = log_an._TIME.search(line)
            if stamp:
                entry.first = entry.first or stamp.group(0)
                entry.last = stamp.group(0)
            if self.after > 0 and self.open_key is not None:  # inside the previous block
                self.blocks[self.open_key].append(line)
            else:
                self.blocks.pop(key, None)  # the newest of its kind replaces the older
                if len(self.blocks) >= MAX_BLOCKS:
                    self.blocks.popitem(last=False)
                    self.dropped_blocks += 1
                self.blocks[key] = [*self.before, line]
                self.open_key = key
            self.before.clear()
            self.after = self.context
            return
        if self.after > 0 and self.open_key is not None:
            self.blocks[self.open_key].append(line)
            self.after -= 1
        else:
            self.before.append(line)

    def shown(self) -> list[list[str]]:
        return list(self.blocks.values())


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
    context: int = 2,
) -> ToolResult:
    if tail < 1:
        return ToolResult.failure(f"logs: tail must be at least 1 (got {tail})")
    capped = tail > MAX_TAIL
    tail = min(tail, MAX_TAIL)
    context = max(0, min(context, MAX_CONTEXT))
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
        if pattern is not None:
            return await _grep(cluster, namespace, pod_obj, container, pattern, grep or "",
                               previous, since, since_seconds, context, note)
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
    found = await _log_findings(cluster, namespace, lines, pod_obj)
    return ToolResult(ok=True, output=f"{prefix}{what}: {len(lines)} lines\n" + text.rstrip(),
                      findings=found)


async def _grep(cluster: Cluster, namespace: str, pod_obj: Obj,
                container: str | None,
                pattern: re.Pattern[str], grep: str, previous: bool, since: str | None,
                since_seconds: int | None, context: int, note: str) -> ToolResult:
    pod_name = pod_obj["metadata"]["name"]
    matcher = Matcher(pattern, context)
    read = await cluster.scan_log(
        namespace, pod_name, matcher, container=container, previous=previous,
        since_seconds=since_seconds,
        tail_lines=None if since_seconds else GREP_WINDOW_LINES,
        limit_bytes=GREP_WINDOW_BYTES if since_seconds else None)
    window = (f"within {since}" if since else f"the last {GREP_WINDOW_LINES} lines at most")
    what = (f"pod {pod_name} container {container}" + (" (previous)" if previous else "")
            + f", searched {matcher.lines} lines ({read / 1e6:.1f} MB) — {window}")
    prefix = f"{note}\n" if note else ""
    if not matcher.matched:
        return ToolResult(ok=True, output=(
            f"{prefix}{what}: no lines matched /{grep}/ in {matcher.lines} lines; widen with "
            "since, previous=true or another pattern"))
    header = f"{matcher.matched} of {matcher.lines} lines matched /{grep}/ ({what})"
    out = [f"{prefix}{header}"]
    repeated = sorted(matcher.templates.values(), key=lambda t: -t.count)
    if matcher.matched > len(repeated):
        out.append(f"matched lines as {len(repeated)} template(s) (numbers, ids and times "
                   "masked), most frequent first:")
        out.extend(log_an.summary_lines(repeated))
        more = (f"; {matcher.dropped_blocks} older kinds not shown"
                if matcher.dropped_blocks else "")
        out.append(f"the newest match of each kind{more}"
                   + (f", with {context} line(s) of context" if context else "")
                   + ", blocks separated by --:")
    elif context:
        out.append(f"matches with {context} line(s) of context, blocks separated by --:")
    out.append("\n--\n".join("\n".join(block) for block in matcher.shown()))
    found = await _log_findings(cluster, namespace, list(matcher.recent), pod_obj)
    return ToolResult(ok=True, output="\n".join(out), findings=found)


async def _log_findings(cluster: Cluster, namespace: str, lines: list[str],
                        pod: Obj) -> list[str]:
    """DNS failures and failed connections named in the lines, linked to Services; for DNS
    timeouts, the cluster DNS pods where they live (kube-system), if budo may read there; a
    binary the kernel cannot execute, with the node's architecture."""
    found: list[Finding] = []
    if any("exec format error" in line for line in lines):
        arch = "?"
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            try:
                info = (await run_reads(cluster).cluster.get("node", node)).get("status") or {}
                arch = str((info.get("nodeInfo") or {}).get("architecture", "?"))
            except ClusterError:
                arch = "?"
        image = ", ".join(str(c.get("image")) for c in (pod.get("spec") or {}).get(
            "containers") or [])
        found.append(Finding(f"logs: 'exec format error': the kernel cannot execute the "
                             f"binary in image {image}: it is built for another CPU "
                             f"architecture than node {node} ({arch})", CRITICAL))
    if not any(log_an.REFUSED.search(line) or "lookup" in line or "resolv" in line.lower()
               for line in lines):
        return fit(found)
    reads = run_reads(cluster)
    lists = await reads.many(namespace, "service", "endpoints")
    services = lists["service"] or []
    found += log_an.host_findings(lines, namespace, services, lists["endpoints"])
    dns_pods = None
    try:
        dns_pods = await cluster.list_pods("kube-system", "k8s-app=kube-dns")
    except (Forbidden, ClusterError):
        dns_pods = None
    names = [str((s.get("metadata") or {}).get("name")) for s in services]
    found += dns_findings(lines, namespace, names, dns_pods)
    return fit(found)
