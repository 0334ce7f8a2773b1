"""Pod log requests: which text to serve and how the kubelet's options cut it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from scenarios.logtext import split_timestamp
from scenarios.model import ContainerLogs
from scenarios.times import fmt_nano

# Waiting reasons for which the kubelet has no log to show at all.
NOT_STARTED = {"ContainerCreating", "PodInitializing", "ImagePullBackOff", "ErrImagePull",
               "CreateContainerConfigError", "CreateContainerError", "InvalidImageName"}


class LogError(Exception):
    """A 400 the API server would answer; the message is its wording."""


def pick_container(pod: dict[str, Any], container: str | None) -> str:
    name = pod["metadata"]["name"]
    spec = pod.get("spec", {})
    names: list[str] = [c["name"] for c in spec.get("containers", [])]
    inits = [c["name"] for c in spec.get("initContainers", [])]
    if not container:
        if len(names) == 1:
            return names[0]
        choice = f"a container name must be specified for pod {name}, choose one of: " \
                 f"[{' '.join(names)}]"
        if inits:
            choice += f" or one of the init containers: [{' '.join(inits)}]"
        raise LogError(choice)
    if container not in names + inits:
        raise LogError(f"container {container} is not valid for pod {name}")
    return container


def choose_text(pod: dict[str, Any], container: str, entry: ContainerLogs | None,
                previous: bool) -> str:
    """The log text to serve, or LogError as the kubelet would refuse."""
    name = pod["metadata"]["name"]
    entry = entry or ContainerLogs()
    status = next((s for s in pod.get("status", {}).get("containerStatuses", [])
                   if s["name"] == container), None)
    if previous:
        if entry.previous is None:
            raise LogError(f'previous terminated container "{container}" in pod "{name}" '
                           "not found")
        return entry.previous
    waiting = (status or {}).get("state", {}).get("waiting")
    if status is None and pod.get("status", {}).get("phase") == "Pending":
        is_init = container in [c["name"] for c in pod["spec"].get("initContainers", [])]
        if not is_init:
            raise LogError(f'container "{container}" in pod "{name}" is waiting to start: '
                           "ContainerCreating")
    if waiting and waiting.get("reason") in NOT_STARTED and not (status or {}).get(
            "restartCount"):
        reason = waiting["reason"]
        if reason in ("ImagePullBackOff", "ErrImagePull"):
            reason = "trying and failing to pull image"
        elif reason == "CreateContainerConfigError":
            reason = "CreateContainerConfigError"
        raise LogError(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
    if waiting and not entry.current and entry.previous:
        # A crash-looping container's "current" log is the last run's until it restarts.
        return entry.previous
    return entry.current


def cut(text: str, *, start: datetime, timestamps: bool, tail_lines: int | None,
        since: datetime | None, limit_bytes: int | None) -> str:
    """Apply sinceSeconds/sinceTime, tailLines, timestamps and limitBytes, in kubelet order."""
    lines = text.splitlines()
    moment = start
    out: list[str] = []
    for line in lines:
        stamp, rest = split_timestamp(line)
        if stamp is not None:
            moment = stamp
        if since is not None and moment < since:
            continue
        out.append(f"{fmt_nano(moment)} {rest}" if timestamps else rest)
    if tail_lines is not None:
        out = out[-tail_lines:] if tail_lines > 0 else []
    body = "".join(line + "\n" for line in out)
    if limit_bytes is not None:
        body = body.encode()[:limit_bytes].decode(errors="ignore")
    return body
