"""Networking findings: addresses in env that name no Service or a port it does not expose,
Services that select nothing or target a port no container has, Ingress backends and TLS
Secrets, NetworkPolicies that shut out a caller, and DNS failures while CoreDNS is down."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from agent.analyzers.common import (
    CRITICAL,
    WARNING,
    Finding,
    Obj,
    edit_distance,
    labels_of,
    matches,
    name_of,
    near_hint,
    selector_text,
    selects,
)

HOST_ENV_NAME = re.compile(r"(?:^|_)(?:ADDR|ADDRESS|HOST|HOSTNAME|URL|URI|ENDPOINT|DSN)S?$")
# `PAYMENT_SERVICE=payments:50051` names an address too, but `LOG_SERVICE=true` does not:
# these suffixes count only with a port or a scheme.
PORTED_ENV_NAME = re.compile(r"(?:^|_)(?:SERVICE|SERVER|BROKER|BACKEND|UPSTREAM)S?$")


def address_var(var: str, value: str) -> bool:
    upper = var.upper()
    return bool(HOST_ENV_NAME.search(upper)) or (
        bool(PORTED_ENV_NAME.search(upper)) and ":" in value)
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOSTNAME = re.compile(rf"^{_HOST_LABEL}(?:\.{_HOST_LABEL})*$")
SCHEME_PORTS = {"http": 80, "https": 443, "grpc": 80, "redis": 6379, "postgres": 5432,
                "postgresql": 5432, "mysql": 3306, "amqp": 5672, "mongodb": 27017}


def env_target(value: str, namespace: str) -> tuple[str, int | None] | None:
    """(in-namespace Service name, port or None) an env value points at, or None when the
    value is not a cluster hostname (an IP, localhost, an external FQDN, a path, a sentence)."""
    text = value.strip().lower()
    if not text or any(ch.isspace() for ch in text) or "," in text:
        return None
    port: int | None = None
    if "://" in text:
        try:
            parts = urlsplit(text)
            host = parts.hostname or ""
            port = parts.port or SCHEME_PORTS.get(parts.scheme)
        except ValueError:
            return None
    else:
        host = text.split("/", 1)[0]
        if host.count(":") == 1:
            host, raw = host.split(":", 1)
            port = int(raw) if raw.isdigit() else None
    try:
        ipaddress.ip_address(host.strip("[]"))
        return None
    except ValueError:
        pass
    if not host or host == "localhost" or not HOSTNAME.match(host) or host.isdigit():
        return None
    labels = host.split(".")
    if len(labels) == 1:
        return labels[0], port
    # svc.ns / svc.ns.svc / svc.ns.svc.cluster.local: only this namespace's Services are known.
    if labels[2:] in ([], ["svc"], ["svc", "cluster", "local"]) and labels[1] == namespace:
        return labels[0], port
    return None


def env_host(value: str, namespace: str) -> str | None:
    target = env_target(value, namespace)
    return target[0] if target else None


def service_ports(service: Obj) -> set[int]:
    return {int(p["port"]) for p in (service.get("spec") or {}).get("ports") or []
            if str(p.get("port", "")).isdigit()}


def env_host_findings(
    owner: str, containers: Sequence[Obj], services: Sequence[Obj], namespace: str,
    endpoints: Sequence[Obj] | None = None, config: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Finding]:
    """For each address-like env value (`*_ADDR`, `*_HOST`, `*_URL`, …) whose host is no
    Service in ``namespace`` (with the closest name), whose port the Service does not expose,
    or whose Service has no ready endpoint. ``config`` maps ConfigMap name -> data, so values
    a container takes through envFrom are checked too."""
    by_name = {name_of(s): s for s in services}
    empty = _services_without_endpoints(services, endpoints) if endpoints is not None else {}
    found: list[Finding] = []
    for container in containers:
        for var, value, origin in _addresses(container, config or {}):
            target = env_target(value, namespace)
            if target is None:
                continue
            host, port = target
            where = (f"{owner} container {container.get('name', '?')} env {var}={value}"
                     f"{origin}")
            if host in empty:
                found.append(Finding(f"{where}: Service {host!r} has 0 ready endpoints "
                                     f"(selector {empty[host]})", CRITICAL))
                continue
            service = by_name.get(host)
            if service is None:
                hint = near_hint(host, by_name, "Service")
                # A name one typo from a real Service is a cause; a name like nothing here
                # may be an optional or external dependency: still worth saying, ranked lower.
                found.append(Finding(f"{where}: no Service {host!r} in namespace "
                                     f"{namespace!r}{hint}",
                                     CRITICAL if "closest" in hint else WARNING))
                continue
            exposed = service_ports(service)
            if port is not None and exposed and port not in exposed:
                found.append(Finding(
                    f"{where}: Service {host!r} does not expose port {port} (its ports: "
                    f"{', '.join(map(str, sorted(exposed)))})", CRITICAL))
    return found


def _addresses(container: Obj, config: Mapping[str, Mapping[str, str]]
               ) -> Iterable[tuple[str, str, str]]:
    for env in container.get("env", []) or []:
        var, value = str(env.get("name", "")), env.get("value")
        if isinstance(value, str) and address_var(var, value):
            yield var, value, ""
    for source in container.get("envFrom", []) or []:
        ref = (source.get("configMapRef") or {}).get("name")
        for key, value in (config.get(str(ref)) or {}).items():
            if isinstance(value, str) and address_var(str(key), value):
                yield f"{source.get('prefix', '')}{key}", value, f" (from ConfigMap {ref})"


def _services_without_endpoints(services: Sequence[Obj], endpoints: Sequence[Obj]
                                ) -> dict[str, str]:
    """Service name -> selector text, for Services with a selector and no ready address."""
    ready = {name_of(e) for e in endpoints
             if any(s.get("addresses") for s in e.get("subsets") or [])}
    return {name_of(s): selector_text(s["spec"]["selector"]) for s in services
            if (s.get("spec") or {}).get("selector") and name_of(s) not in ready}


# --- services ---------------------------------------------------------------------------------


def service_findings(service: Obj, endpoints: Obj | None, pods: Sequence[Obj]) -> list[Finding]:
    """A Service with a selector: no ready endpoint (its selector, the pods it matches and
    those that almost match), or a targetPort that no selected container exposes."""
    selector = (service.get("spec") or {}).get("selector") or {}
    if not selector:
        return []
    name = name_of(service)
    matched = [p for p in pods if matches(labels_of(p), selector)]
    found = target_port_findings(service, matched)
    subsets = (endpoints or {}).get("subsets") or []
    if sum(len(s.get("addresses") or []) for s in subsets):
        return found
    base = f"Service {name} has 0 ready endpoints; selector {selector_text(selector)}"
    if matched:
        names = ", ".join(name_of(p) for p in matched[:5])
        return [Finding(f"{base} matches {len(matched)} pod(s) but none is Ready: {names}",
                        CRITICAL), *found]
    near = _near_matches(selector, pods)
    if near:
        return [Finding(f"{base} matches no pods; almost: {'; '.join(near[:3])}", CRITICAL),
                *found]
    return [Finding(f"{base} matches no pods in the namespace", CRITICAL), *found]


def target_port_findings(service: Obj, pods: Sequence[Obj]) -> list[Finding]:
    """A targetPort (number or name) that no container of the selected pods declares. A
    name that no container carries gives no endpoints at all; an undeclared number is
    usually a wrong port (declaring ports is optional, so only when some are declared)."""
    if not pods:
        return []
    numbers: set[int] = set()
    names: set[str] = set()
    for pod in pods[:1]:  # replicas share a template
        for c in (pod.get("spec") or {}).get("containers") or []:
            for p in c.get("ports") or []:
                numbers.add(int(p.get("containerPort", 0)))
                if p.get("name"):
                    names.add(str(p["name"]))
    found = []
    for port in (service.get("spec") or {}).get("ports") or []:
        target = port.get("targetPort", port.get("port"))
        shown = f"Service {name_of(service)} port {port.get('port')} targets"
        if isinstance(target, str) and not target.isdigit():
            if target not in names:
                found.append(Finding(f"{shown} port name {target!r}, which no container of "
                                     f"its pods (e.g. {name_of(pods[0])}) names; named ports: "
                                     f"{', '.join(sorted(names)) or 'none'}", CRITICAL))
        elif numbers and int(target) not in numbers:
            found.append(Finding(f"{shown} {target}, but its pods (e.g. {name_of(pods[0])}) "
                                 f"declare only {', '.join(map(str, sorted(numbers)))}",
                                 CRITICAL))
    return found


def _near_matches(selector: Mapping[str, str], pods: Sequence[Obj]) -> list[str]:
    """Pods off by one selector label: a missing key or a value within a few edits."""
    near: list[tuple[int, str]] = []
    seen: set[tuple[str, str]] = set()
    for pod in pods:
        labels = labels_of(pod)
        wrong = [k for k, v in selector.items() if labels.get(k) != v]
        if len(wrong) != 1:
            continue
        key, want = wrong[0], selector[wrong[0]]
        have = labels.get(key)
        if have is None:
            distance, text = len(want), f"pod {name_of(pod)} lacks label {key}"
        else:
            distance = edit_distance(have, want)
            if distance > max(2, len(want) // 3):
                continue
            text = f"pod {name_of(pod)} has {key}={have} (selector wants {key}={want})"
        if (key, str(have)) not in seen:  # replicas say the same; one line per value
            seen.add((key, str(have)))
            near.append((distance, text))
    return [text for _, text in sorted(near)]


# --- ingress ----------------------------------------------------------------------------------


def ingress_findings(ingress: Obj, services: Sequence[Obj], endpoints: Sequence[Obj] | None,
                     secrets: Sequence[str] | None) -> list[Finding]:
    """Backends naming a missing Service or port, backends with no ready endpoint, and TLS
    Secrets that do not exist (``secrets`` None: not readable, so not checked)."""
    name = name_of(ingress)
    spec = ingress.get("spec") or {}
    by_name = {name_of(s): s for s in services}
    empty = _services_without_endpoints(services, endpoints) if endpoints is not None else {}
    backends: list[tuple[str, Obj]] = []
    if spec.get("defaultBackend"):
        backends.append(("default backend", spec["defaultBackend"]))
    for rule in spec.get("rules") or []:
        for path in (rule.get("http") or {}).get("paths") or []:
            where = f"{rule.get('host', '*')}{path.get('path', '/')}"
            backends.append((where, path.get("backend") or {}))
    found: list[Finding] = []
    for where, backend in backends:
        svc = backend.get("service") or {}
        target = svc.get("name")
        if not target:
            continue
        port = svc.get("port") or {}
        service = by_name.get(target)
        if service is None:
            found.append(Finding(f"Ingress {name} {where} routes to Service {target!r}, which "
                                 f"does not exist{near_hint(target, by_name, 'Service')}",
                                 CRITICAL))
            continue
        ports = (service.get("spec") or {}).get("ports") or []
        if "number" in port and int(port["number"]) not in service_ports(service):
            found.append(Finding(f"Ingress {name} {where} routes to Service {target} port "
                                 f"{port['number']}, which it does not expose (ports "
                                 f"{', '.join(map(str, sorted(service_ports(service))))})",
                                 CRITICAL))
        elif "name" in port and port["name"] not in {p.get("name") for p in ports}:
            found.append(Finding(f"Ingress {name} {where} routes to Service {target} port "
                                 f"name {port['name']!r}, which it has no port named",
                                 CRITICAL))
        elif target in empty:
            found.append(Finding(f"Ingress {name} {where} routes to Service {target}, which "
                                 f"has 0 ready endpoints (selector {empty[target]})", CRITICAL))
    for tls in spec.get("tls") or []:
        secret = tls.get("secretName")
        if secret and secrets is not None and secret not in secrets:
            found.append(Finding(f"Ingress {name} TLS for {', '.join(tls.get('hosts') or [])} "
                                 f"names Secret {secret!r}, which does not exist", CRITICAL))
    return found


# --- network policy ---------------------------------------------------------------------------


def _admits(rule_peers: Sequence[Obj] | None, caller_labels: Mapping[str, str],
            same_namespace: bool) -> bool:
    if rule_peers is None or rule_peers == []:
        return True  # a rule without `from` admits every source
    for peer in rule_peers:
        if "ipBlock" in peer:
            continue
        pod_sel, ns_sel = peer.get("podSelector"), peer.get("namespaceSelector")
        if ns_sel is None and not same_namespace:
            continue
        if ns_sel is not None and ns_sel != {} and same_namespace:
            # a namespaceSelector we cannot evaluate without namespace labels: assume yes
            return True
        if pod_sel is None or selects(pod_sel, caller_labels):
            return True
    return False


def network_policy_findings(policies: Sequence[Obj], callers: Sequence[tuple[str, Obj, Obj]],
                            ) -> list[Finding]:
    """``callers``: (who, caller pod template labels holder, target Service) for each
    workload whose config names a Service. A policy that selects the Service's pods for
    Ingress and has no rule admitting the caller blocks it (policies are additive: any
    admitting policy is enough)."""
    found: list[Finding] = []
    for who, caller, service in callers:
        selector = (service.get("spec") or {}).get("selector") or {}
        if not selector:
            continue
        caller_labels = labels_of(caller)
        applying = [p for p in policies
                    if "Ingress" in ((p.get("spec") or {}).get("policyTypes") or ["Ingress"])
                    and _selects_service_pods(p, selector)]
        if not applying:
            continue
        if any(_admits(rule.get("from"), caller_labels, True)
               for p in applying for rule in (p.get("spec") or {}).get("ingress") or []):
            continue
        names = ", ".join(name_of(p) for p in applying)
        found.append(Finding(
            f"NetworkPolicy {names} selects the pods of Service {name_of(service)} "
            f"({selector_text(selector)}) and admits no ingress from {who} "
            f"(labels {selector_text(caller_labels)}), which is configured to call it",
            CRITICAL))
    return found


def _selects_service_pods(policy: Obj, service_selector: Mapping[str, str]) -> bool:
    """Does the policy's podSelector select pods carrying the Service's selector labels?"""
    return selects((policy.get("spec") or {}).get("podSelector"), service_selector)


# --- DNS ----------------------------------------------------------------------------------

DNS_FAILURE = re.compile(
    r"(lookup \S+ on [\d.:\[\]]+:53: (?:read udp|dial udp|.*i/o timeout|server misbehaving"
    r"|.*no such host)|Temporary failure in name resolution|getaddrinfo EAI_AGAIN|"
    r"Name or service not known|could not resolve host)", re.I)
LOOKUP = re.compile(r"lookup ([a-z0-9.-]+) on [\d.:\[\]]+:53: no such host", re.I)


def dns_findings(lines: Iterable[str], namespace: str, services: Sequence[str],
                 dns_pods: Sequence[Obj] | None) -> list[Finding]:
    """Log lines that fail DNS: a name that is no Service (closest name), or timeouts while
    the cluster DNS pods are not ready (``dns_pods`` None: kube-system not readable)."""
    failures = [line for line in lines if DNS_FAILURE.search(line)]
    if not failures:
        return []
    found: list[Finding] = []
    missing: dict[str, int] = {}
    for line in failures:
        match = LOOKUP.search(line)
        if match:
            host = match.group(1).lower().rstrip(".")
            target = env_target(host, namespace)
            if target and target[0] not in services:
                missing[target[0]] = missing.get(target[0], 0) + 1
    for host, count in missing.items():
        found.append(Finding(f"logs: {count} lookup(s) of {host!r} failed with 'no such host': "
                             f"no Service {host!r} in namespace {namespace!r}"
                             + near_hint(host, services, "Service"), CRITICAL))
    others = len(failures) - sum(missing.values())
    if others:
        if dns_pods is None:
            found.append(Finding(f"logs: {others} DNS lookup failure(s); the cluster DNS pods "
                                 "in kube-system are outside budo's read scope", WARNING))
        else:
            down = [p for p in dns_pods if not _ready(p)]
            if down or not dns_pods:
                found.append(Finding(
                    f"logs: {others} DNS lookup failure(s) while cluster DNS in kube-system "
                    f"has {len(dns_pods) - len(down)}/{len(dns_pods)} pods ready"
                    + (f" (not ready: {', '.join(name_of(p) for p in down[:5])})" if down
                       else ""), CRITICAL))
            else:
                found.append(Finding(f"logs: {others} DNS lookup failure(s); cluster DNS pods "
                                     f"in kube-system are all ready ({len(dns_pods)})",
                                     WARNING))
    return found


def _ready(pod: Obj) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return bool(statuses) and all(cs.get("ready") for cs in statuses)
