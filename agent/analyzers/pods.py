"""Pod findings: container states with their messages, what exit codes mean, image pulls by
cause, config errors, init containers, scheduling, eviction, volumes and probes.

Everything is read from the pod's status and spec plus the kubelet's and scheduler's events
about that pod (an ``EventIndex``): never from names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent.analyzers.common import (
    CRITICAL,
    INFO,
    WARNING,
    EventIndex,
    Finding,
    Obj,
    as_index,
    name_of,
    one_line,
)

IMAGE_PULL_REASONS = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName",
                                "ErrImageNeverPull", "RegistryUnavailable"})
CONFIG_ERROR_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError",
                                  "RunContainerError", "StartError", "ContainerCannotRun"})
QUIET_WAITING = frozenset({"ContainerCreating", "PodInitializing"})

# What an exit code says, from the container runtime's and the shell's conventions.
EXIT_MEANING = {
    1: "the application exited with an error",
    2: "the application reported a usage or configuration error",
    126: "the command exists but is not executable (permission or format)",
    127: "the command was not found in the image",
    128: "the runtime could not start the process (StartError: bad command, path or "
         "mount)",
    134: "aborted (SIGABRT)",
    137: "killed by SIGKILL: the kernel OOM killer, or the kubelet after a failed liveness "
         "probe or grace period",
    139: "segmentation fault (SIGSEGV)",
    143: "terminated by SIGTERM (stopped by Kubernetes or shut itself down)",
    255: "exit status out of range (often a crash before main)",
}

_PULL_CAUSES = (
    (re.compile(r"not found|manifest unknown|does not exist|404", re.I),
     "the tag or repository does not exist in the registry"),
    (re.compile(r"unauthorized|authentication required|denied|forbidden|401|403|"
                r"no basic auth credentials", re.I),
     "the registry refused the credentials: a missing or wrong imagePullSecret"),
    (re.compile(r"toomanyrequests|rate limit|429", re.I), "the registry is rate limiting pulls"),
    (re.compile(r"no such host|i/o timeout|connection refused|dial tcp|TLS handshake", re.I),
     "the registry cannot be reached from the node"),
)


def exit_meaning(code: object, message: str = "") -> str:
    if "exec format error" in message:
        return "exec format error: the image's binary is built for another CPU architecture " \
               "than the node's"
    if isinstance(code, int) and code in EXIT_MEANING:
        return EXIT_MEANING[code]
    if isinstance(code, int) and 128 < code < 160:
        return f"killed by signal {code - 128}"
    return ""


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


def container_specs(pod: Obj) -> dict[str, Obj]:
    spec = pod.get("spec", {}) or {}
    return {c.get("name", "?"): c for c in
            [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]}


def _init_names(pod: Obj) -> set[str]:
    return {c.get("name") for c in (pod.get("spec", {}) or {}).get("initContainers") or []}


def _term_text(term: Obj) -> str:
    """`exit code 1 (Error): <message>; <meaning>`."""
    code = term.get("exitCode", "?")
    message = one_line(term.get("message"), 240)
    text = f"exit code {code} ({term.get('reason') or 'unknown reason'})"
    if message:
        text += f": {message}"
    meaning = exit_meaning(code, message)
    return f"{text} — {meaning}" if meaning else text


def pod_findings(pod: Obj, events: Sequence[Obj] | EventIndex = ()) -> list[Finding]:
    """Facts about one pod's known faults. ``events`` (the pod's or the namespace's, any
    order, or an index of them) adds the scheduler's and kubelet's messages."""
    index = as_index(events)
    name = name_of(pod)
    status = pod.get("status", {}) or {}
    specs = container_specs(pod)
    inits = _init_names(pod)
    found: list[Finding] = []
    if status.get("reason") == "Evicted" or (status.get("phase") == "Failed"
                                            and status.get("reason")):
        found.append(Finding(f"pod {name} was {status.get('reason')}: "
                             f"{one_line(status.get('message'))}", WARNING))
    if status.get("phase") == "Pending" and not status.get("containerStatuses") \
            and not status.get("initContainerStatuses"):
        found.extend(_pending(pod, index))
    statuses = [*(status.get("initContainerStatuses") or []),
                *(status.get("containerStatuses") or [])]
    for cs in statuses:
        found.extend(_container(pod, name, cs, specs, inits, index))
    found.extend(_volume_events(name, index))
    found.extend(probe_port_findings(pod))
    return found


def _container(pod: Obj, name: str, cs: Obj, specs: dict[str, Obj], inits: set[str],
               index: EventIndex) -> list[Finding]:
    cname = cs.get("name", "?")
    is_init = cname in inits
    where = f"pod {name} {'init container' if is_init else 'container'} {cname}"
    state, last = cs.get("state", {}) or {}, cs.get("lastState", {}) or {}
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason", "")
    message = one_line(waiting.get("message"), 300)
    spec = specs.get(cname, {})
    image = spec.get("image") or cs.get("image", "?")
    found: list[Finding] = []
    if reason in IMAGE_PULL_REASONS:
        pulled = cs.get("image") or image  # the status names the reference being pulled
        found.append(_image_pull(where, name, pulled, reason, message, pod, index))
    elif reason in CONFIG_ERROR_REASONS:
        found.append(Finding(f"{where} {reason}: {message or _config_refs(spec)}", CRITICAL))
    elif reason == "CrashLoopBackOff":
        term = last.get("terminated") or {}
        found.append(Finding(
            f"{where} (image {image}) is in CrashLoopBackOff: last {_term_text(term)}, "
            f"{cs.get('restartCount', 0)} restarts", CRITICAL))
        found.extend(_liveness_kill(where, name, spec, term, index))
    elif reason and reason not in QUIET_WAITING:
        found.append(Finding(f"{where} is waiting: {reason}"
                             + (f": {message}" if message else ""), WARNING))
    terminated = state.get("terminated") or {}
    if terminated and terminated.get("exitCode", 0) != 0 and reason != "CrashLoopBackOff":
        found.append(Finding(f"{where} terminated with {_term_text(terminated)}", CRITICAL))
    for term in (terminated, last.get("terminated") or {}):
        if term.get("reason") == "OOMKilled":
            limit = ((spec.get("resources") or {}).get("limits") or {}).get("memory")
            shown = f"memory limit {limit}" if limit else "no memory limit set"
            found.append(Finding(f"{where} was OOMKilled (exit code {term.get('exitCode', 137)})"
                                 f"; {shown}", CRITICAL))
            break
    if not reason and not terminated and (last.get("terminated") or {}).get("exitCode") not in (
            None, 0) and cs.get("restartCount", 0) >= 3 and \
            (last.get("terminated") or {}).get("reason") != "OOMKilled":
        found.append(Finding(f"{where} restarted {cs.get('restartCount')} times; last "
                             f"{_term_text(last['terminated'])}", WARNING))
        found.extend(_liveness_kill(where, name, spec, last["terminated"], index))
    if "running" in state and not cs.get("ready", True) and not is_init:
        probe = spec.get("readinessProbe")
        failure = next((one_line(e.get("message")) for e in index.about(name, "Unhealthy")
                        if str(e.get("message", "")).startswith("Readiness probe failed")), "")
        said = f"; last: {failure}" if failure else ""
        found.append(Finding(f"{where} is Running but not Ready; readinessProbe "
                             f"{probe_summary(probe)}{said}", CRITICAL if failure else WARNING))
    return found


def _liveness_kill(where: str, pod_name: str, spec: Obj, term: Obj,
                   index: EventIndex) -> list[Finding]:
    """A container the kubelet killed (137/143) after liveness failures: the probe, its
    failure, and the CPU the container may use (a throttled process answers probes late)."""
    if term.get("exitCode") not in (137, 143):
        return []
    failure = next((one_line(e.get("message")) for e in index.about(pod_name, "Unhealthy")
                    if str(e.get("message", "")).startswith("Liveness probe failed")), "")
    if not failure:
        return []
    res = spec.get("resources") or {}
    cpu = ((res.get("limits") or {}).get("cpu"), (res.get("requests") or {}).get("cpu"))
    budget = (f"; cpu limit {cpu[0]}, request {cpu[1] or 'none'}" if cpu[0]
              else "; no cpu limit")
    return [Finding(f"{where} was killed by its livenessProbe "
                    f"{probe_summary(spec.get('livenessProbe'))} (exit "
                    f"{term.get('exitCode')}): {failure}{budget}", CRITICAL)]


def _image_pull(where: str, pod_name: str, image: str, reason: str, message: str, pod: Obj,
                index: EventIndex) -> Finding:
    """Why a pull fails, from the kubelet's `Failed` event (the waiting message of
    ImagePullBackOff only says it is backing off)."""
    failures = [" ".join(str(e.get("message") or "").split())
                for e in index.about(pod_name, "Failed")]
    detailed = [f for f in failures if "pull" in f.lower() and len(f) > 40]
    detail = detailed[0] if detailed else message
    cause = ""
    if reason == "InvalidImageName":
        cause = "the image reference is malformed"
    elif reason == "ErrImageNeverPull":
        cause = "imagePullPolicy is Never and the image is not on the node"
    else:
        for pattern, meaning in _PULL_CAUSES:
            if pattern.search(detail):
                cause = meaning
                break
    if "imagePullSecret" in cause:
        secrets = [s.get("name") for s in (pod.get("spec", {}) or {}).get("imagePullSecrets")
                   or []]
        cause += f" (pod imagePullSecrets: {', '.join(map(str, secrets)) or 'none'})"
    text = f"{where} cannot pull image {image!r} ({reason})"
    if cause:
        text += f": {cause}"
    if detail:
        # containerd nests causes: the telling part ("403 Forbidden", "not found") is last.
        shown = detail if len(detail) <= 260 else "…" + detail[-259:]
        text += f"; kubelet: {shown}"
    return Finding(text, CRITICAL)


_SCHEDULER_HINTS = (
    ("Insufficient", "not enough allocatable resources for the pod's requests"),
    ("untolerated taint", "the nodes carry taints the pod does not tolerate"),
    ("node affinity/selector", "no node matches the pod's nodeSelector/nodeAffinity"),
    ("didn't match pod affinity", "pod affinity rules cannot be met"),
    ("anti-affinity", "pod anti-affinity rules cannot be met"),
    ("unbound immediate PersistentVolumeClaims", "a PersistentVolumeClaim it mounts is not "
     "bound"),
    ("persistentvolumeclaim", "a PersistentVolumeClaim it mounts is missing or not bound"),
    ("Too many pods", "the nodes are at their pod limit"),
    ("volume node affinity conflict", "its volume lives in another zone than the free nodes"),
    ("unschedulable", "nodes are cordoned (unschedulable)"),
)


def _pending(pod: Obj, index: EventIndex) -> list[Finding]:
    name = name_of(pod)
    spec = pod.get("spec", {}) or {}
    why, message = "", ""
    for condition in (pod.get("status", {}) or {}).get("conditions", []) or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            why = condition.get("reason", "Unschedulable")
            message = one_line(condition.get("message"))
    if not message:
        message = index.message(name, "FailedScheduling")
        if message and not why:
            why = "FailedScheduling"
    if not why:
        return []
    hints = [h for marker, h in _SCHEDULER_HINTS if marker.lower() in message.lower()]
    extra = []
    if spec.get("nodeSelector"):
        extra.append("nodeSelector " + ",".join(f"{k}={v}" for k, v in
                                                 spec["nodeSelector"].items()))
    if any("requests" in h or "resources" in h for h in hints):
        for c in spec.get("containers") or []:
            req = (c.get("resources") or {}).get("requests") or {}
            if req:
                extra.append(f"{c.get('name')} requests "
                             + ",".join(f"{k}={v}" for k, v in sorted(req.items())))
    text = f"pod {name} is Pending ({why}): {message or 'no scheduler message'}"
    if hints:
        text += f" — {'; '.join(dict.fromkeys(hints))}"
    if extra:
        text += f" ({'; '.join(extra)})"
    return [Finding(text, CRITICAL)]


def _volume_events(name: str, index: EventIndex) -> list[Finding]:
    found = []
    for reason in ("FailedMount", "FailedAttachVolume", "FailedCreatePodSandBox"):
        message = index.message(name, reason)
        if message:
            found.append(Finding(f"pod {name} {reason}: {message}", CRITICAL))
    return found


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
                refs.add(f"{kind} {value_from[key].get('name')}/{value_from[key].get('key')}")
    return "references " + ", ".join(sorted(refs)) if refs else "no message from the kubelet"


def probe_port_findings(pod: Obj) -> list[Finding]:
    """Probes aimed at a port the container does not declare. A named port that no
    container port carries cannot work at all; a number that is not declared while others
    are is most likely a wrong port."""
    name = name_of(pod)
    statuses = {cs.get("name"): cs for cs in
                (pod.get("status", {}) or {}).get("containerStatuses") or []}
    found: list[Finding] = []
    for c in (pod.get("spec", {}) or {}).get("containers") or []:
        declared = {p.get("containerPort") for p in c.get("ports") or []}
        names = {p.get("name") for p in c.get("ports") or [] if p.get("name")}
        cs = statuses.get(c.get("name"), {})
        failing = not cs.get("ready", True) or int(cs.get("restartCount") or 0) > 0
        for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe = c.get(kind) or {}
            handler = probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc")
            if not handler or "port" not in handler:
                continue
            port = handler["port"]
            if isinstance(port, str) and not port.isdigit():
                if port not in names:
                    found.append(Finding(
                        f"pod {name} container {c.get('name')} {kind} uses port name "
                        f"{port!r}, which no port of the container is named (ports: "
                        f"{', '.join(sorted(map(str, names))) or 'none named'})", CRITICAL))
            elif declared and int(port) not in declared:
                found.append(Finding(
                    f"pod {name} container {c.get('name')} {kind} {probe_summary(probe)} "
                    f"targets port {port}, but the container declares "
                    f"{', '.join(str(p) for p in sorted(declared))}",
                    CRITICAL if failing else INFO))
    return found
