"""The Scenario: one incident, expanded into Kubernetes objects and container logs.

`scenarios.load.load_scenario(name_or_path)` builds one from YAML (see scenarios/FORMAT.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any


@dataclass
class ContainerLogs:
    current: str = ""
    previous: str | None = None  # None: no previous container (the API answers 400)


@dataclass
class Scenario:
    name: str
    title: str
    question: str
    namespace: str
    now: datetime
    objects: list[dict[str, Any]]
    logs: dict[tuple[str, str, str], ContainerLogs]  # (namespace, pod, container)
    expect_root_cause: list[str] = field(default_factory=list)
    expect_fix: list[str] = field(default_factory=list)
    script: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""
    source: Path | None = None
    # What fixes the incident and the live symptoms that stop then (replay_rollout.py).
    remedies: list[dict[str, Any]] = field(default_factory=list)

    def find(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        for obj in self.objects:
            m = obj["metadata"]
            if obj["kind"] == kind and m["name"] == name and m.get("namespace") == namespace:
                return obj
        return None

    def of_kind(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind
                and (namespace is None or o["metadata"].get("namespace") == namespace)]

    def pod_names(self, namespace: str | None = None) -> list[str]:
        return [p["metadata"]["name"] for p in self.of_kind("Pod", namespace)]

    def pod_for(self, workload: str, namespace: str | None = None) -> str | None:
        """The first pod of a workload (by ownership prefix), or the pod itself by name."""
        ns = namespace or self.namespace
        names = self.pod_names(ns)
        if workload in names:
            return workload
        return _workload_pods(names, workload)[0] if _workload_pods(names, workload) else None

    def check_verdict(self, verdict: dict[str, Any]) -> list[str]:
        """The expectations the verdict does not meet (empty list: it passes)."""
        unmet = []
        for key, patterns in (("root_cause", self.expect_root_cause), ("fix", self.expect_fix)):
            text = str(verdict.get(key) or "")
            for pattern in patterns:
                if not re.search(pattern, text, re.IGNORECASE):
                    unmet.append(f"{key} does not match /{pattern}/")
        return unmet


def _workload_pods(pod_names: list[str], workload: str) -> list[str]:
    # Deployment pods: <workload>-<10 hash>-<5>; StatefulSet pods: <workload>-<n>.
    pattern = re.compile(rf"^{re.escape(workload)}-(?:[a-z0-9]{{6,10}}-[a-z0-9]{{5}}|\d+)$")
    return [n for n in pod_names if pattern.match(n)]


__all__ = ["ContainerLogs", "Scenario"]
