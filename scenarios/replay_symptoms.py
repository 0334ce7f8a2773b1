"""A scenario remedy's symptoms in the replay: log lines its fault keeps writing, every
``every``, from server start until the rollout of the fixed template completes (``healed_at``,
which the controllers in scenarios/replay_rollout.py set); then they stop."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any, Protocol

from scenarios.model import ContainerLogs, _workload_pods
from scenarios.times import fmt_nano, parse_duration


class ReplayedPods(Protocol):
    """What symptoms need of the replayed cluster (its ReplayState): pods and their logs."""

    objects: list[dict[str, Any]]
    logs: dict[tuple[str, str, str], ContainerLogs]


class Symptoms:
    def __init__(self, state: ReplayedPods, remedies: list[dict[str, Any]],
                 started: datetime) -> None:
        self.state = state
        self.remedies = remedies
        self.started = started
        self.healed_at: dict[int, datetime] = {}  # remedy index -> its rollout completed
        self._emitted: dict[tuple[int, str], int] = {}

    def write(self, now: datetime) -> None:
        """Every symptom line due by ``now`` (or by its remedy's healing), appended once."""
        for index, remedy in enumerate(self.remedies):
            until = self.healed_at.get(index, now)
            for key, gen in (remedy.get("symptoms") or {}).items():
                every = parse_duration(str(gen.get("every", "5s"))) or timedelta(seconds=5)
                done = self._emitted.get((index, key), 0)
                total = int((until - self.started) / every)
                if total <= done:
                    continue
                self._emitted[(index, key)] = total
                lines = []
                for k in range(done + 1, total + 1):
                    moment = self.started + every * k
                    template = gen["lines"][(k - 1) % len(gen["lines"])]
                    seed = hashlib.sha256(f"{key}{k}".encode()).digest()
                    text = (template.replace("{ts}", fmt_nano(moment))
                            .replace("{uuid}", str(uuid.UUID(bytes=seed[:16])))
                            .replace("{n}", str(int.from_bytes(seed[16:18], "big") % 999 + 1))
                            .replace("{i}", str(k)).replace("{id}", seed[18:22].hex()))
                    lines.append(f"{fmt_nano(moment)} {text}\n")
                self._append(key, "".join(lines))

    def _append(self, key: str, text: str) -> None:
        ns, target, *rest = key.split("/")
        pods = [p for p in self.state.objects if p["kind"] == "Pod"
                and p["metadata"].get("namespace") == ns]
        names = [p["metadata"]["name"] for p in pods]
        for name in [target] if target in names else _workload_pods(names, target):
            pod = next(p for p in pods if p["metadata"]["name"] == name)
            container = rest[0] if rest else pod["spec"]["containers"][0]["name"]
            entry = self.state.logs.setdefault((ns, name, container), ContainerLogs())
            entry.current += text
