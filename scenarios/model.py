"""The Scenario: one incident, loaded from YAML, validated, expanded into Kubernetes objects.

`load_scenario(name_or_path)` is the only way in; see scenarios/FORMAT.md for the file format.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from budo.errors import ScenarioError
from scenarios.validate import Checker, check_document, check_now

LIBRARY = Path(__file__).parent / "library"


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


def bundled_scenarios() -> list[str]:
    """Names of the bundled incidents (bases starting with `_` are left out)."""
    return sorted(p.stem for p in LIBRARY.glob("*.yaml") if not p.stem.startswith("_"))


def resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or "/" in text or path.is_file():
        if not path.is_file():
            raise ScenarioError(text, "(file)", "no such file")
        return path
    bundled = LIBRARY / f"{text}.yaml"
    if not bundled.is_file():
        raise ScenarioError(text, "(name)", "not a bundled scenario or a file; bundled: "
                            + ", ".join(bundled_scenarios()))
    return bundled


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise ScenarioError(path.name, where, f"invalid YAML: {exc.problem}") from exc
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ScenarioError(path.name, "(file)", f"cannot read: {exc}") from exc


def _load_document(path: Path, seen: tuple[str, ...] = ()) -> tuple[dict[str, Any], datetime]:
    """The validated document with its bases merged in, and its `now`."""
    doc = _read(path)
    file = path.name
    if not isinstance(doc, dict):
        raise ScenarioError(file, "(top level)", "expected a mapping (name:, title:, ...)")
    base: dict[str, Any] | None = None
    base_now = None
    if "extends" in doc:
        parent = doc["extends"]
        if not isinstance(parent, str) or parent in seen or parent == path.stem:
            raise ScenarioError(file, "extends", f"cannot extend {parent!r} (cycle or not a name)")
        parent_path = path.parent / f"{parent}.yaml"
        if not parent_path.is_file():
            parent_path = LIBRARY / f"{parent}.yaml"
        if not parent_path.is_file():
            raise ScenarioError(file, "extends", f"no base scenario named {parent!r}")
        base, base_now = _load_document(parent_path, (*seen, path.stem))
    now = check_now(file, doc, required=base_now is None) or base_now
    assert now is not None
    check_document(Checker(file, now), doc, path.stem, path.stem.startswith("_"),
                   extends=base is not None)
    return (merge(base, doc) if base else doc), now


def merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    # Where the child's own events start, so reference errors name the child's index.
    out["_base_events"] = len(base.get("events", []))
    for key, value in child.items():
        if key == "workloads":
            out[key] = _merge_named(out.get(key, []), value, ("namespace", "name"), out)
        elif key == "nodes":
            out[key] = _merge_named(out.get(key, []), value, ("name",), out)
        elif key == "namespaces":
            out[key] = list(dict.fromkeys([*out.get(key, []), *value]))
        elif key in ("objects", "events", "remove"):
            out[key] = [*out.get(key, []), *copy.deepcopy(value)]
        elif key == "logs":
            out[key] = {**out.get(key, {}), **copy.deepcopy(value)}
        elif key != "extends":
            out[key] = copy.deepcopy(value)
    return out


def _merge_named(base: list[dict[str, Any]], child: list[dict[str, Any]],
                 keys: tuple[str, ...], doc: dict[str, Any]) -> list[dict[str, Any]]:
    def ident(item: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(item.get(k) or (doc.get("namespace") if k == "namespace" else "")
                     for k in keys)

    merged = [copy.deepcopy(b) for b in base]
    index = {ident(item): i for i, item in enumerate(merged)}
    for item in child:
        if ident(item) in index:
            merged[index[ident(item)]] = deep_merge(merged[index[ident(item)]], item)
        else:
            merged.append(copy.deepcopy(item))
    return merged


def deep_merge(base: Any, child: Any, key: str = "") -> Any:
    if key == "env":
        from scenarios.expand import env_list

        by_name = {e["name"]: e for e in env_list(base)}
        by_name.update({e["name"]: e for e in env_list(child)})
        return list(by_name.values())
    if key == "containers" and isinstance(base, list) and isinstance(child, list):
        return _merge_named(base, child, ("name",), {})
    if isinstance(base, dict) and isinstance(child, dict):
        out = dict(base)
        for k, v in child.items():
            out[k] = deep_merge(base[k], v, k) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(child)


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load, validate and expand a bundled scenario (by name) or a scenario file (by path)."""
    path = resolve(name_or_path)
    doc, now = _load_document(path)
    from scenarios.build import build

    return build(doc, now, path)


__all__ = ["ContainerLogs", "Scenario", "bundled_scenarios", "load_scenario"]

