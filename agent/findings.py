"""Findings: short facts read straight off Kubernetes objects that name a known fault.

Pure functions over the API's JSON (plain dicts, camelCase keys), so they are tested without a
server and the tools only decide which objects to fetch. A finding states what the API says
(reason, exit code, limit, scheduler message, selector); it never guesses at a cause.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from agent.protocols import Obj
from agent.text import labels as labels_text

IMAGE_PULL_REASONS = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName",
                                "ErrImageNeverPull"})
CONFIG_ERROR_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError"})
HOST_ENV_NAME = re.compile(r"(?:^|_)(?:ADDR|ADDRESS|HOST|HOSTNAME|URL|URI|ENDPOINT)$")
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOSTNAME = re.compile(rf"^{_HOST_LABEL}(?:\.{_HOST_LABEL})*$")


def _name(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("name", "?"))


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute all cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def closest(name: str, candidates: Iterable[str]) -> tuple[str, int] | None:
    """The candidate with the smallest edit distance to ``name`` (ties: alphabetical)."""
    ranked = sorted((edit_distance(name, c), c) for c in candidates)
    return (ranked[0][1], ranked[0][0]) if ranked else None


# --- pods -------------------------------------------------------------------------------------


def _container_specs(pod: Obj) -> dict[str, Obj]:
    spec = pod.get("spec", {})
    return {c.get("name", "?"): c for c in
            [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]}


def _statuses(pod: Obj) -> list[Obj]:
    status = pod.get("status", {})
    return [*(status.get("initContainerStatuses") or []),
            *(status.get("containerStatuses") or [])]


def probe_summary(probe: Obj | None) -> str:
    """`httpGet :8080/healthz` / `grpc :5050` / `exec cat /tmp/ready` / `tcp :6379`."""
    if not probe:
        return "none"
    if "httpGet" in probe:
        get = probe["httpGet"]
        return f"httpGet :{get.get('port', '?')}{get.get('path', '/')}"
    if "grpc" in probe:
        return f"grpc :{probe['grpc'].get('port', '?')}"
    if "tcpSocket" in probe:
        return f"tcp :{probe['tcpSocket'].get('port', '?')}"
    if "exec" in probe:
        return "exec " + " ".join(probe["exec"].get("command", []) or [])
    return "custom"


def _probe_failures(events: Sequence[Obj], pod_name: str, kind: str) -> list[str]:
    """Messages of `Unhealthy` events for this pod whose message starts with ``kind``."""
    return [
        str(e.get("message", "")).strip() for e in events
        if e.get("involvedObject", {}).get("name") == pod_name
        and e.get("reason") == "Unhealthy"
        and str(e.get("message", "")).startswith(kind)
    ]


def pod_findings(pod: Obj, events: Sequence[Obj] = ()) -> list[str]:
    """Facts about one pod's known faults. ``events`` (the namespace's, any order) adds the
    scheduler's and the kubelet's messages where the pod status lacks them."""
    name = _name(pod)
    status = pod.get("status", {})
    specs = _container_specs(pod)
    found: list[str] = []
    if status.get("phase") == "Pending" and not status.get("containerStatuses"):
        found.extend(_pending(pod, events))
    for cs in _statuses(pod):
        cname = cs.get("name", "?")
        state, last = cs.get("state", {}) or {}, cs.get("lastState", {}) or {}
        waiting = state.get("waiting") or {}
        reason = waiting.get("reason", "")
        message = " ".join(str(waiting.get("message", "")).split())
        where = f"pod {name} container {cname}"
        if reason in IMAGE_PULL_REASONS:
            image = cs.get("image") or specs.get(cname, {}).get("image", "?")
            detail = f": {message}" if message else ""
            found.append(f"{where} cannot pull image {image!r} ({reason}){detail}")
        elif reason in CONFIG_ERROR_REASONS:
            found.append(f"{where} {reason}: {message or _config_refs(specs.get(cname, {}))}")
        elif reason == "CrashLoopBackOff":
            term = last.get("terminated") or {}
            image = specs.get(cname, {}).get("image") or cs.get("image", "?")
            found.append(
                f"{where} (image {image}) is in CrashLoopBackOff: last exit code "
                f"{term.get('exitCode', '?')} ({term.get('reason', 'unknown reason')}), "
                f"{cs.get('restartCount', 0)} restarts"
            )
        for term in (state.get("terminated"), last.get("terminated")):
            if term and term.get("reason") == "OOMKilled":
                limit = (specs.get(cname, {}).get("resources", {}) or {}).get("limits", {}) or {}
                memory = limit.get("memory")
                shown = f"memory limit {memory}" if memory else "no memory limit set"
                found.append(f"{where} was OOMKilled (exit code {term.get('exitCode', 137)}); "
                             f"{shown}")
                break
        if "running" in state and not cs.get("ready", True) and cname in {
            c.get("name") for c in pod.get("spec", {}).get("containers", []) or []
        }:
            probe = specs.get(cname, {}).get("readinessProbe")
            failures = _probe_failures(events, name, "Readiness probe failed")
            said = f"; last: {failures[0]}" if failures else ""
            found.append(f"{where} is Running but not Ready; readinessProbe "
                         f"{probe_summary(probe)}{said}")
    return found


def _pending(pod: Obj, events: Sequence[Obj]) -> list[str]:
    name = _name(pod)
    for condition in pod.get("status", {}).get("conditions", []) or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            message = condition.get("message") or ""
            if not message:
                message = next((str(e.get("message")) for e in events
                                if e.get("reason") == "FailedScheduling"
                                and e.get("involvedObject", {}).get("name") == name), "")
            why = condition.get("reason", "Unschedulable")
            return [f"pod {name} is Pending ({why}): {message or 'no scheduler message'}"]
    failed = [str(e.get("message")) for e in events if e.get("reason") == "FailedScheduling"
              and e.get("involvedObject", {}).get("name") == name]
    return [f"pod {name} is Pending (FailedScheduling): {failed[0]}"] if failed else []


def _config_refs(container: Obj) -> str:
    """The ConfigMaps/Secrets a container references: the API named none as missing."""
    refs: set[str] = set()
    for source in container.get("envFrom", []) or []:
        for key, kind in (("configMapRef", "configmap"), ("secretRef", "secret")):
            if key in source:
                refs.add(f"{kind} {source[key].get('name')}")
    for env in container.get("env", []) or []:
        value_from = env.get("valueFrom", {}) or {}
        for key, kind in (("configMapKeyRef", "configmap"), ("secretKeyRef", "secret")):
            if key in value_from:
                refs.add(f"{kind} {value_from[key].get('name')}")
    return "references " + ", ".join(sorted(refs)) if refs else "no message from the kubelet"


# --- env hosts --------------------------------------------------------------------------------


def env_host(value: str, namespace: str) -> str | None:
    """The in-namespace Service name an env value points at, or None when the value is not a
    cluster hostname (an IP, localhost, an external FQDN, a path, a sentence)."""
    text = value.strip().lower()
    if not text or any(ch.isspace() for ch in text):
        return None
    if "://" in text:
        try:
            host = urlsplit(text).hostname or ""
        except ValueError:
            return None
    else:
        host = text.split("/", 1)[0]
        if host.count(":") == 1:
            host = host.split(":", 1)[0]
    try:
        ipaddress.ip_address(host.strip("[]"))
        return None
    except ValueError:
        pass
    if not host or host == "localhost" or not HOSTNAME.match(host) or host.isdigit():
        return None
    labels = host.split(".")
    if len(labels) == 1:
        return labels[0]
    # svc.ns / svc.ns.svc / svc.ns.svc.cluster.local: only this namespace's Services are known.
    cluster_forms = (labels[2:] in ([], ["svc"], ["svc", "cluster", "local"]))
    if cluster_forms and labels[1] == namespace:
        return labels[0]
    return None


def env_host_findings(
    owner: str, containers: Sequence[Obj], services: Sequence[Obj], namespace: str,
    endpoints: Sequence[Obj] | None = None,
) -> list[str]:
    """For each *_ADDR/*_HOST/*_URL env value whose host is no Service in ``namespace``: the
    variable, its value and the closest Service by edit distance. With ``endpoints`` (the
    namespace's Endpoints list), also a host whose Service selects no ready pod."""
    names = [_name(s) for s in services]
    empty = _services_without_endpoints(services, endpoints) if endpoints is not None else {}
    found: list[str] = []
    for container in containers:
        for env in container.get("env", []) or []:
            var, value = str(env.get("name", "")), env.get("value")
            if not isinstance(value, str) or not HOST_ENV_NAME.search(var.upper()):
                continue
            host = env_host(value, namespace)
            if host is None:
                continue
            if host in empty:
                found.append(
                    f"{owner} container {container.get('name', '?')} env {var}={value}: "
                    f"Service {host!r} has 0 ready endpoints (selector {empty[host]})")
                continue
            if host in names:
                continue
            near = closest(host, names)
            if near and near[1] <= max(2, len(host) // 3):
                hint = f"; closest Service is {near[0]!r} (edit distance {near[1]})"
            else:
                hint = "; no Service has a similar name" if names else "; it has no Services"
            found.append(
                f"{owner} container {container.get('name', '?')} env {var}={value}: no Service "
                f"{host!r} in namespace {namespace!r}{hint}"
            )
    return found


def _services_without_endpoints(services: Sequence[Obj], endpoints: Sequence[Obj]
                               ) -> dict[str, str]:
    """Service name -> selector text, for Services with a selector and no ready address."""
    ready = {_name(e) for e in endpoints
             if any(s.get("addresses") for s in e.get("subsets") or [])}
    return {_name(s): selector_text(s["spec"]["selector"]) for s in services
            if (s.get("spec") or {}).get("selector") and _name(s) not in ready}


# --- services ---------------------------------------------------------------------------------


def selector_text(selector: Mapping[str, str]) -> str:
    return labels_text(selector)


def matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def service_findings(service: Obj, endpoints: Obj | None, pods: Sequence[Obj]) -> list[str]:
    """A Service with a selector and no ready endpoint: its selector, the pods it matches
    (none, or none Ready) and the pods whose labels almost match."""
    selector = service.get("spec", {}).get("selector") or {}
    if not selector:
        return []
    subsets = (endpoints or {}).get("subsets") or []
    ready = sum(len(s.get("addresses") or []) for s in subsets)
    if ready:
        return []
    name = _name(service)
    matched = [p for p in pods if matches(p.get("metadata", {}).get("labels") or {}, selector)]
    base = f"Service {name} has 0 ready endpoints; selector {selector_text(selector)}"
    if matched:
        names = ", ".join(_name(p) for p in matched[:5])
        return [f"{base} matches {len(matched)} pod(s) but none is Ready: {names}"]
    near = _near_matches(selector, pods)
    if near:
        return [f"{base} matches no pods; almost: {'; '.join(near[:3])}"]
    return [f"{base} matches no pods in the namespace"]


def _near_matches(selector: Mapping[str, str], pods: Sequence[Obj]) -> list[str]:
    """Pods off by one selector label: a missing key or a value within a few edits."""
    near: list[tuple[int, str]] = []
    seen: set[tuple[str, str]] = set()
    for pod in pods:
        labels = pod.get("metadata", {}).get("labels") or {}
        wrong = [k for k, v in selector.items() if labels.get(k) != v]
        if len(wrong) != 1:
            continue
        key, want = wrong[0], selector[wrong[0]]
        have = labels.get(key)
        if have is None:
            distance, text = len(want), f"pod {_name(pod)} lacks label {key}"
        else:
            distance = edit_distance(have, want)
            if distance > max(2, len(want) // 3):
                continue
            text = f"pod {_name(pod)} has {key}={have} (selector wants {key}={want})"
        # Replicas of one workload say the same thing; keep one line per label value.
        if (key, str(have)) not in seen:
            seen.add((key, str(have)))
            near.append((distance, text))
    return [text for _, text in sorted(near)]
