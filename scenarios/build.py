"""From a merged, shape-checked scenario document to a Scenario: expansion plus the checks
that need the whole picture (does the pod a log or event names exist, does the golden
answer meet the expectations)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from budo.errors import ScenarioError
from scenarios.expand import NAMESPACED, Expander, meta
from scenarios.expand_cluster import endpoints_for, event_object, namespace_object, node_object
from scenarios.logtext import compose
from scenarios.model import ContainerLogs, Scenario, _workload_pods
from scenarios.times import fmt, parse_time


def build(doc: dict[str, Any], now: datetime, path: Path) -> Scenario:
    file = path.name
    ns_default = doc["namespace"]
    expander = Expander(now, ns_default)
    expander.nodes = [node_object(n, i, now) for i, n in enumerate(doc.get("nodes", []))]
    objects: list[dict[str, Any]] = list(expander.nodes)
    for w in doc.get("workloads", []):
        if "image" not in w:
            raise ScenarioError(file, f"workloads.{w['name']}.image",
                                "required (no base workload of that name to inherit it from)")
        objects.extend(expander.workload(w))
    for raw in doc.get("objects", []):
        objects.append(_complete(raw, ns_default, now))
    objects = _dedupe(objects)
    objects = _remove(objects, doc.get("remove", []), expander, file)
    namespaces = list(dict.fromkeys(
        [*doc.get("namespaces", []), ns_default,
         *(o["metadata"]["namespace"] for o in objects if o["metadata"].get("namespace"))]))
    have = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
    objects[:0] = [namespace_object(n, now.replace(year=now.year - 1)) for n in namespaces
                   if n not in have]
    pods = [o for o in objects if o["kind"] == "Pod"]
    existing = {(o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects
                if o["kind"] == "Endpoints"}
    for svc in [o for o in objects if o["kind"] == "Service"]:
        key = (svc["metadata"]["namespace"], svc["metadata"]["name"])
        if svc["spec"].get("selector") and key not in existing:
            objects.append(endpoints_for(svc, pods))
    offset = doc.get("_base_events", 0)
    for i, spec in enumerate(doc.get("events", [])):
        where = f"events[{i - offset}]" if i >= offset else f"(base) events[{i}]"
        involved = _involved(spec, ns_default, objects, file, where)
        objects.append(event_object(spec, involved, now, i))
    logs = _logs(doc.get("logs", {}), pods, now, file)
    _add_implicit_previous(logs, pods)
    scenario = Scenario(
        name=doc["name"], title=doc["title"], question=doc.get("question", ""),
        namespace=ns_default, now=now, objects=objects, logs=logs,
        expect_root_cause=_patterns(doc, "root_cause"), expect_fix=_patterns(doc, "fix"),
        script=doc.get("script", []), description=doc.get("description", ""), source=path,
        remedies=_remedies(doc, objects, file),
    )
    _check_script(scenario, file)
    return scenario


def _remedies(doc: dict[str, Any], objects: list[dict[str, Any]], file: str
              ) -> list[dict[str, Any]]:
    remedies = []
    for i, given in enumerate(doc.get("remedies", [])):
        remedy = {**given, "namespace": given.get("namespace", doc["namespace"])}
        if not any(o["kind"] in ("Deployment", "StatefulSet", "DaemonSet")
                   and o["metadata"]["name"] == remedy["workload"]
                   and o["metadata"].get("namespace") == remedy["namespace"] for o in objects):
            raise ScenarioError(file, f"remedies[{i}].workload", f"no workload "
                                f"{remedy['workload']!r} in namespace {remedy['namespace']!r}")
        remedies.append(remedy)
    return remedies


def _patterns(doc: dict[str, Any], key: str) -> list[str]:
    value = doc.get("expect", {}).get(key, [])
    return [value] if isinstance(value, str) else list(value)


def _complete(raw: dict[str, Any], ns_default: str, now: datetime) -> dict[str, Any]:
    import copy

    obj = copy.deepcopy(raw)
    kind, name = obj["kind"], obj["metadata"]["name"]
    ns = obj["metadata"].get("namespace") or (ns_default if kind in NAMESPACED else None)
    filled = meta(kind, name, ns, now)
    created = obj["metadata"].get("creationTimestamp")
    if isinstance(created, str) and not created[:1].isdigit():  # relative: -10m
        moment = parse_time(created, now)
        created = fmt(moment) if moment else created
    filled["creationTimestamp"] = created if isinstance(created, str) else \
        filled["creationTimestamp"]
    for entry in obj["metadata"].get("managedFields") or []:  # when a field manager wrote
        if isinstance(entry.get("time"), str) and not entry["time"][:1].isdigit():
            moment = parse_time(entry["time"], now)
            entry["time"] = fmt(moment) if moment else entry["time"]
    obj["metadata"] = {**filled, **{k: v for k, v in obj["metadata"].items()
                                    if k != "creationTimestamp"}}
    if ns is None:
        obj["metadata"].pop("namespace", None)
    if kind == "Pod":
        obj.setdefault("spec", {}).setdefault("containers", [])
        obj.setdefault("status", {}).setdefault("phase", "Running")
    return obj


def _key(obj: dict[str, Any]) -> tuple[str, str | None, str]:
    return obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]


def _dedupe(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Later wins, but keeps the earlier object's position (stable listings)."""
    position: dict[tuple[str, str | None, str], int] = {}
    out: list[dict[str, Any]] = []
    for obj in objects:
        key = _key(obj)
        if key in position:
            out[position[key]] = obj
        else:
            position[key] = len(out)
            out.append(obj)
    return out


def _remove(objects: list[dict[str, Any]], removals: list[str], expander: Expander,
            file: str) -> list[dict[str, Any]]:
    gone: set[tuple[str, str | None, str]] = set()
    for i, entry in enumerate(removals):
        parts = entry.split("/")
        kind, ns, name = (parts[0], None, parts[1]) if len(parts) == 2 else parts
        if kind == "Workload":
            owned = expander.workload_objects.get((ns or "", name))
            if owned is None:
                raise ScenarioError(file, f"remove[{i}]", f"no workload {ns}/{name}")
            gone.update((k, n, o) for k, n, o in owned)
            gone.add(("Endpoints", ns, name))
            continue
        if not any(_key(o) == (kind, ns, name) for o in objects):
            raise ScenarioError(file, f"remove[{i}]", f"no object {entry}")
        gone.add((kind, ns, name))
    return [o for o in objects if _key(o) not in gone]


def _involved(spec: dict[str, Any], ns_default: str, objects: list[dict[str, Any]],
              file: str, where: str) -> dict[str, Any]:
    parts = spec["object"].split("/")
    kind, ns, name = (parts[0], None, parts[1]) if len(parts) == 2 else parts
    if kind in NAMESPACED and ns is None:
        ns = ns_default
    target = next((o for o in objects if _key(o) == (kind, ns, name)), None)
    if target is None and kind == "Pod":
        names = [o["metadata"]["name"] for o in objects
                 if o["kind"] == "Pod" and o["metadata"].get("namespace") == ns]
        owned = _workload_pods(names, name)
        if owned:
            target = next(o for o in objects if _key(o) == ("Pod", ns, owned[0]))
    api = {"Deployment": "apps/v1", "ReplicaSet": "apps/v1", "StatefulSet": "apps/v1",
           "DaemonSet": "apps/v1"}.get(kind, "v1")
    if target is None:
        from scenarios.expand_pods import stable_uid

        return {"kind": kind, "namespace": ns, "name": name, "apiVersion": api,
                "uid": stable_uid(spec["object"])}
    involved = {"kind": kind, "namespace": ns, "name": target["metadata"]["name"],
                "apiVersion": target.get("apiVersion", api), "uid": target["metadata"]["uid"],
                "resourceVersion": target["metadata"].get("resourceVersion", "1")}
    if spec.get("container"):
        involved["fieldPath"] = f"spec.containers{{{spec['container']}}}"
    if kind == "Pod":
        involved["_node"] = target.get("spec", {}).get("nodeName", "")
    if ns is None:
        involved.pop("namespace")
    return involved


def _logs(entries: dict[str, Any], pods: list[dict[str, Any]], now: datetime,
          file: str) -> dict[tuple[str, str, str], ContainerLogs]:
    logs: dict[tuple[str, str, str], ContainerLogs] = {}
    for key, entry in entries.items():
        parts = key.split("/")
        ns, target = parts[0], parts[1]
        in_ns = [p for p in pods if p["metadata"].get("namespace") == ns]
        names = [p["metadata"]["name"] for p in in_ns]
        chosen = [target] if target in names else _workload_pods(names, target)
        if not chosen:
            raise ScenarioError(file, f"logs.{key}", f"no pod or workload {target!r} in "
                                f"namespace {ns!r}")
        if isinstance(entry, dict) and ("current" in entry or "previous" in entry):
            current, previous = entry.get("current", ""), entry.get("previous")
        else:
            current, previous = entry, None
        current_text = compose(current, now)
        previous_text = None if previous is None else compose(previous, now)
        for pod_name in chosen:
            pod = next(p for p in in_ns if p["metadata"]["name"] == pod_name)
            containers = [c["name"] for c in pod["spec"].get("containers", [])]
            containers += [c["name"] for c in pod["spec"].get("initContainers", [])]
            container = parts[2] if len(parts) == 3 else (containers or [""])[0]
            if container not in containers:
                raise ScenarioError(file, f"logs.{key}", f"pod {pod_name} has no container "
                                    f"{container!r} (has: {', '.join(containers)})")
            logs[(ns, pod_name, container)] = ContainerLogs(current_text, previous_text)
    return logs


def _add_implicit_previous(logs: dict[tuple[str, str, str], ContainerLogs],
                           pods: list[dict[str, Any]]) -> None:
    """A container that has terminated before has a (possibly empty) previous log."""
    for pod in pods:
        ns, name = pod["metadata"].get("namespace", ""), pod["metadata"]["name"]
        for status in pod.get("status", {}).get("containerStatuses", []):
            key = (ns, name, status["name"])
            entry = logs.setdefault(key, ContainerLogs())
            if entry.previous is None and status.get("lastState", {}).get("terminated"):
                entry.previous = ""


def _check_script(scenario: Scenario, file: str) -> None:
    for i, step in enumerate(scenario.script):
        for j, call in enumerate(step.get("calls", [])):
            args = call.get("args") or {}
            pod = args.get("pod")
            if pod is None and call["tool"] in ("logs", "delete_pod"):
                pod = args.get("name")
            if pod is None:
                continue
            ns = args.get("namespace", scenario.namespace)
            if scenario.pod_for(str(pod), ns) is None:
                raise ScenarioError(file, f"script[{i}].calls[{j}].args",
                                    f"no pod or workload {pod!r} in namespace {ns!r}")
    if not scenario.script:
        return
    answer = scenario.script[-1].get("answer", "")
    for k, pattern in enumerate(scenario.expect_root_cause):
        if not re.search(pattern, answer, re.IGNORECASE):
            raise ScenarioError(file, f"script[{len(scenario.script) - 1}].answer",
                                f"does not match expect.root_cause[{k}] /{pattern}/")

