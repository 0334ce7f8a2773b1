"""Log findings: repeated lines collapsed into templates (counts, first and last time), and
the hosts and ports error lines name, linked to the namespace's Services."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agent.analyzers.common import CRITICAL, WARNING, Finding, Obj, name_of, near_hint
from agent.analyzers.network import env_target

_VARIABLE = re.compile(
    r"\d{4}-\d\d-\d\dT[\d:.]+Z?|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|\b[0-9a-f]{12,}\b|\b\d+(?:\.\d+)?\b", re.I)
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
DIAL = re.compile(r"(?:dial tcp|connect to|connecting to|upstream|host)\s*:?\s*"
                  r"\[?([a-z0-9.-]+)\]?:(\d{2,5})", re.I)
REFUSED = re.compile(r"connection refused|no route to host|i/o timeout|deadline exceeded|"
                     r"connection reset|503|unavailable", re.I)


def template(line: str) -> str:
    """The line with times, ids and numbers replaced: lines that differ only there match."""
    return _VARIABLE.sub("#", line)[:400]


@dataclass
class Template:
    example: str
    count: int = 0
    first: str = ""
    last: str = ""


def templates(lines: Iterable[str]) -> list[Template]:
    """Repeated lines as templates, most frequent first (ties: first seen)."""
    seen: dict[str, Template] = {}
    for line in lines:
        key = template(line)
        entry = seen.get(key)
        if entry is None:
            entry = seen[key] = Template(example=line)
        entry.count += 1
        stamp = _TIME.search(line)
        if stamp:
            entry.first = entry.first or stamp.group(0)
            entry.last = stamp.group(0)
    return sorted(seen.values(), key=lambda t: -t.count)


def host_findings(lines: Sequence[str], namespace: str, services: Sequence[Obj],
                  endpoints: Sequence[Obj] | None) -> list[Finding]:
    """Error lines that name `host:port`: a host that is a Service (by name or clusterIP)
    is linked to it with its ready endpoints and ports; a cluster name that is no Service
    gets the closest name."""
    by_name = {name_of(s): s for s in services}
    by_ip = {str((s.get("spec") or {}).get("clusterIP")): s for s in services}
    ready = {name_of(e): sum(len(ss.get("addresses") or []) for ss in e.get("subsets") or [])
             for e in endpoints or []}
    counts: dict[tuple[str, int], int] = {}
    for line in lines:
        if not REFUSED.search(line):
            continue
        for host, port in DIAL.findall(line):
            counts[(host.lower(), int(port))] = counts.get((host.lower(), int(port)), 0) + 1
    found: list[Finding] = []
    for (host, port), count in sorted(counts.items(), key=lambda kv: -kv[1])[:5]:
        service = by_ip.get(host)
        if service is None:
            target = env_target(host, namespace)
            if target is None:
                continue
            service = by_name.get(target[0])
            if service is None:
                found.append(Finding(f"logs: {count} failed connection(s) to {host}:{port}: no "
                                     f"Service {target[0]!r} in namespace {namespace!r}"
                                     + near_hint(target[0], by_name, "Service"), CRITICAL))
                continue
        name = name_of(service)
        ports = sorted(int(p.get("port")) for p in (service.get("spec") or {}).get("ports")
                       or [] if str(p.get("port", "")).isdigit())
        facts = []
        if ports and port not in ports:
            facts.append(f"it does not expose port {port} (ports {', '.join(map(str, ports))})")
        if endpoints is not None and not ready.get(name):
            facts.append("it has 0 ready endpoints")
        if facts:
            found.append(Finding(f"logs: {count} failed connection(s) to {host}:{port}, which is "
                                 f"Service {name}: {'; '.join(facts)}", CRITICAL))
        else:
            found.append(Finding(f"logs: {count} failed connection(s) to {host}:{port} (Service "
                                 f"{name}, {ready.get(name, '?')} ready endpoints): look at "
                                 f"its pods' logs", WARNING))
    return found


def summary_lines(found: Sequence[Template], limit: int = 8) -> list[str]:
    lines = []
    for t in found[:limit]:
        when = f" first {t.first} last {t.last}" if t.first else ""
        lines.append(f"  x{t.count}{when}: {t.example[:300]}")
    return lines


