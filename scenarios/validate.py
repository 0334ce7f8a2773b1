"""Structural validation of one scenario file, before merging and expansion.

Every problem raises ScenarioError(file, path, problem) with the path written the way a
reader finds it in the YAML (`workloads[2].env`), so a typo costs seconds, not a debug session.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from budo.errors import ScenarioError
from scenarios.checker import Checker
from scenarios.times import parse_time, parse_timestamp

TOOLS = ("list_namespaces", "get_pods", "get_events", "describe", "recent_changes", "logs",
         "delete_pod", "rollout_restart", "rollout_undo", "scale", "set_env")
STATES = ("running", "crashloop", "waiting", "terminated", "pending")

TOP_KEYS = {
    "name", "title", "extends", "namespace", "now", "question", "description", "namespaces",
    "nodes", "workloads", "objects", "remove", "events", "logs", "expect", "script", "remedies",
}
REMEDY_KEYS = {"workload", "namespace", "env", "image", "symptoms"}
# An earlier revision: the container keys that differed (env NAME: null = not set then), and
# `replicas`/`started` when that revision's pods still run (a rollout stuck on its new pods).
HISTORY_KEYS = {"revision", "image", "env", "command", "args", "resources", "readinessProbe",
                "livenessProbe", "startupProbe", "ports", "volumeMounts", "imagePullPolicy",
                "podSpec", "replicas", "started"}
STATE_KEYS = {
    "state", "reason", "message", "exitCode", "restarts", "ready", "lastState", "phase",
}
CONTAINER_KEYS = {
    "name", "image", "command", "args", "ports", "env", "resources", "readinessProbe",
    "livenessProbe", "startupProbe", "securityContext", "volumeMounts", "imagePullPolicy",
} | STATE_KEYS
WORKLOAD_KEYS = (CONTAINER_KEYS - {"name"}) | {
    "name", "namespace", "kind", "replicas", "revision", "labels", "created", "started", "node",
    "container", "initContainers", "containers", "pods", "podSpec", "annotations", "service",
    "history", "conditions", "failedCreate",
}
SERVICE_KEYS = {"name", "type", "port", "targetPort", "selector", "ports", "clusterIP"}
NODE_KEYS = {"name", "cpu", "memory", "pods", "labels", "ready", "conditions", "taints", "created"}
EVENT_KEYS = {
    "object", "type", "reason", "message", "count", "first", "last", "source", "container",
}
GENERATOR_KEYS = {"repeat", "lines", "step", "end", "start"}


def check_now(file: str, doc: dict[str, Any], required: bool) -> datetime | None:
    if "now" not in doc:
        if required:
            raise ScenarioError(file, "now", "required: the capture time, RFC3339 UTC")
        return None
    raw = doc["now"]
    moment = parse_timestamp(raw) if isinstance(raw, str) else None
    if isinstance(raw, datetime):  # YAML may already parse an unquoted timestamp
        moment = parse_time(raw, raw)
    if moment is None:
        raise ScenarioError(file, "now", f"expected an RFC3339 UTC time, got {raw!r}")
    return moment


def check_document(c: Checker, doc: Any, stem: str, is_base: bool, extends: bool) -> None:
    """Check the shape of one file (not references: those need the merged scenario)."""
    c.mapping(doc, "", TOP_KEYS)
    if doc.get("name") != stem:
        raise c.fail("name", f"must equal the file name {stem!r}, got {doc.get('name')!r}")
    needed = ["title"] if extends else ["title", "namespace"]
    if not is_base:
        needed += ["question", "expect", "script"]
    for key in needed:
        if key not in doc:
            raise c.fail(key, "required")
    for key in ("title", "question", "description", "extends"):
        if key in doc:
            c.text(doc[key], key)
    if "namespace" in doc:
        c.name(doc["namespace"], "namespace")
    for i, ns in enumerate(c.seq(doc.get("namespaces", []), "namespaces")):
        c.name(ns, f"namespaces[{i}]")
    for i, node in enumerate(c.seq(doc.get("nodes", []), "nodes")):
        _check_node(c, node, f"nodes[{i}]")
    for i, workload in enumerate(c.seq(doc.get("workloads", []), "workloads")):
        check_workload(c, workload, f"workloads[{i}]", partial=extends)
    for i, obj in enumerate(c.seq(doc.get("objects", []), "objects")):
        _check_object(c, obj, f"objects[{i}]")
    for i, item in enumerate(c.seq(doc.get("remove", []), "remove")):
        c.text(item, f"remove[{i}]")
        if len(item.split("/")) not in (2, 3):
            raise c.fail(f"remove[{i}]", f"expected Kind/namespace/name or Kind/name, got {item!r}")
    for i, event in enumerate(c.seq(doc.get("events", []), "events")):
        _check_event(c, event, f"events[{i}]")
    for key, entry in c.mapping(doc.get("logs", {}), "logs").items():
        _check_logs(c, key, entry)
    if "expect" in doc:
        expect = c.mapping(doc["expect"], "expect", {"root_cause", "fix"})
        if "root_cause" not in expect:
            raise c.fail("expect.root_cause", "required: a list of regexes")
        for key in ("root_cause", "fix"):
            patterns = expect.get(key, [])
            if isinstance(patterns, str):
                patterns = [patterns]
            for i, pattern in enumerate(c.seq(patterns, f"expect.{key}")):
                c.regex(pattern, f"expect.{key}[{i}]")
    if "script" in doc:
        _check_script(c, doc["script"])
    for i, remedy in enumerate(c.seq(doc.get("remedies", []), "remedies")):
        check_remedy(c, remedy, f"remedies[{i}]")


def check_remedy(c: Checker, remedy: Any, path: str) -> None:
    """A fixed template (env values and/or an image) and the live symptoms it stops."""
    c.mapping(remedy, path, REMEDY_KEYS)
    c.name(remedy.get("workload"), f"{path}.workload")
    if "namespace" in remedy:
        c.name(remedy["namespace"], f"{path}.namespace")
    if "env" not in remedy and "image" not in remedy:
        raise c.fail(path, "needs env and/or image: what the fixed template has")
    if "env" in remedy:
        c.mapping(remedy["env"], f"{path}.env")
        check_env(c, remedy["env"], f"{path}.env")
    if "image" in remedy:
        c.text(remedy["image"], f"{path}.image")
    for key, gen in c.mapping(remedy.get("symptoms", {}), f"{path}.symptoms").items():
        where = f"{path}.symptoms.{key}"
        if not isinstance(key, str) or len(key.split("/")) not in (2, 3):
            raise c.fail(where, "expected namespace/pod-or-workload[/container]")
        c.mapping(gen, where, {"every", "lines"})
        c.duration(gen.get("every", "5s"), f"{where}.every")
        lines = c.seq(gen.get("lines"), f"{where}.lines")
        if not lines or not all(isinstance(line, str) for line in lines):
            raise c.fail(f"{where}.lines", "expected a non-empty list of strings")


def _check_node(c: Checker, node: Any, path: str) -> None:
    c.mapping(node, path, NODE_KEYS)
    c.name(node.get("name"), f"{path}.name")
    if "ready" in node:
        c.boolean(node["ready"], f"{path}.ready")
    for cond, body in c.mapping(node.get("conditions", {}), f"{path}.conditions").items():
        c.mapping(body, f"{path}.conditions.{cond}", {"status", "reason", "message"})
    if "created" in node:
        c.time(node["created"], f"{path}.created")


def check_workload(c: Checker, w: Any, path: str, partial: bool = False) -> None:
    c.mapping(w, path, WORKLOAD_KEYS)
    c.name(w.get("name"), f"{path}.name")
    if not partial and "image" not in w:
        raise c.fail(f"{path}.image", "required: the main container's image")
    if "kind" in w and w["kind"] not in ("Deployment", "StatefulSet"):
        raise c.fail(f"{path}.kind", f"expected Deployment or StatefulSet, got {w['kind']!r}")
    for key in ("replicas", "revision"):
        if key in w:
            c.integer(w[key], f"{path}.{key}", minimum=0 if key == "replicas" else 1)
    if "labels" in w:
        _check_str_map(c, w["labels"], f"{path}.labels")
    for key in ("created", "started"):
        if key in w:
            c.time(w[key], f"{path}.{key}")
    if "namespace" in w:
        c.name(w["namespace"], f"{path}.namespace")
    if "container" in w:
        c.name(w["container"], f"{path}.container")
    _check_container_body(c, w, path)
    for i, extra in enumerate(c.seq(w.get("containers", []), f"{path}.containers")):
        c.mapping(extra, f"{path}.containers[{i}]", CONTAINER_KEYS)
        c.name(extra.get("name"), f"{path}.containers[{i}].name")
        if not partial and "image" not in extra:
            raise c.fail(f"{path}.containers[{i}].image", "required")
        _check_container_body(c, extra, f"{path}.containers[{i}]")
    for i, init in enumerate(c.seq(w.get("initContainers", []), f"{path}.initContainers")):
        c.mapping(init, f"{path}.initContainers[{i}]")
        c.name(init.get("name"), f"{path}.initContainers[{i}].name")
    for i, override in enumerate(c.seq(w.get("pods", []), f"{path}.pods")):
        c.mapping(override, f"{path}.pods[{i}]", STATE_KEYS)
        _check_state(c, override, f"{path}.pods[{i}]")
    for key in ("podSpec", "annotations", "conditions"):
        if key in w:
            c.mapping(w[key], f"{path}.{key}")
    for i, old in enumerate(c.seq(w.get("history", []), f"{path}.history")):
        where = f"{path}.history[{i}]"
        c.mapping(old, where, HISTORY_KEYS)
        c.integer(old.get("revision"), f"{where}.revision", 1)
        _check_container_body(c, {k: v for k, v in old.items() if k != "env"}, where)
        if "env" in old:
            check_env(c, old["env"], f"{where}.env", removable=True)
        if "replicas" in old:
            c.integer(old["replicas"], f"{where}.replicas", minimum=0)
        if "started" in old:
            c.time(old["started"], f"{where}.started")
    if "failedCreate" in w:
        c.text(w["failedCreate"], f"{path}.failedCreate")
    if "service" in w and not isinstance(w["service"], bool):
        service = c.mapping(w["service"], f"{path}.service", SERVICE_KEYS)
        if "selector" in service:
            _check_str_map(c, service["selector"], f"{path}.service.selector")
        if "ports" in service:
            for i, port in enumerate(c.seq(service["ports"], f"{path}.service.ports")):
                c.mapping(port, f"{path}.service.ports[{i}]")
                c.integer(port.get("port"), f"{path}.service.ports[{i}].port", 1)


def _check_container_body(c: Checker, body: dict[str, Any], path: str) -> None:
    if "image" in body:
        c.text(body["image"], f"{path}.image")
    for key in ("command", "args"):
        for i, arg in enumerate(c.seq(body.get(key, []), f"{path}.{key}")):
            if not isinstance(arg, str):
                raise c.fail(f"{path}.{key}[{i}]", f"expected a string, got {arg!r}")
    for i, port in enumerate(c.seq(body.get("ports", []), f"{path}.ports")):
        if isinstance(port, dict):
            c.integer(port.get("containerPort"), f"{path}.ports[{i}].containerPort", 1)
        elif isinstance(port, bool) or not isinstance(port, int) or port < 1:
            raise c.fail(f"{path}.ports[{i}]", f"expected a port number or mapping, got {port!r}")
    if "env" in body:
        check_env(c, body["env"], f"{path}.env")
    for key in ("resources", "readinessProbe", "livenessProbe", "startupProbe", "securityContext"):
        if key in body:
            c.mapping(body[key], f"{path}.{key}")
    _check_state(c, body, path)


def check_env(c: Checker, env: Any, path: str, removable: bool = False) -> None:
    """``removable``: in a ``history`` entry, NAME: null says the variable did not exist then."""
    if isinstance(env, dict):
        for key, value in env.items():
            if not isinstance(key, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", key):
                raise c.fail(path, f"{key!r} is not a valid environment variable name")
            if value is None and removable:
                continue
            if isinstance(value, dict | list) or value is None:
                raise c.fail(f"{path}.{key}", "expected a mapping of NAME: value (a string); "
                             "use the list form for valueFrom")
        return
    if not isinstance(env, list):
        raise c.fail(path, "expected a mapping of NAME: value")
    for i, item in enumerate(env):
        if not isinstance(item, dict) or "name" not in item:
            raise c.fail(f"{path}[{i}]",
                         "expected {name: X, value: ...} or {name: X, valueFrom: ...}")
        if ("value" in item) == ("valueFrom" in item):
            raise c.fail(f"{path}[{i}]", "needs exactly one of value or valueFrom")


def _check_state(c: Checker, body: dict[str, Any], path: str) -> None:
    if "state" in body and body["state"] not in STATES:
        raise c.fail(f"{path}.state", f"expected one of {', '.join(STATES)}, got {body['state']!r}")
    if "exitCode" in body:
        c.integer(body["exitCode"], f"{path}.exitCode")
    if "restarts" in body:
        c.integer(body["restarts"], f"{path}.restarts")
    if "ready" in body:
        c.boolean(body["ready"], f"{path}.ready")
    for key in ("reason", "message"):
        if key in body:
            c.text(body[key], f"{path}.{key}")
    if "phase" in body and body["phase"] not in (
        "Pending", "Running", "Succeeded", "Failed", "Unknown"
    ):
        raise c.fail(f"{path}.phase", f"not a pod phase: {body['phase']!r}")
    if "lastState" in body:
        last = c.mapping(body["lastState"], f"{path}.lastState", {"terminated"})
        term = c.mapping(last.get("terminated"), f"{path}.lastState.terminated")
        if "exitCode" in term:
            c.integer(term["exitCode"], f"{path}.lastState.terminated.exitCode")


def _check_str_map(c: Checker, value: Any, path: str) -> None:
    for key, item in c.mapping(value, path).items():
        if not isinstance(item, str):
            raise c.fail(f"{path}.{key}", f"expected a string value, got {item!r} (quote it)")


def _check_object(c: Checker, obj: Any, path: str) -> None:
    c.mapping(obj, path)
    for key in ("apiVersion", "kind"):
        c.text(obj.get(key), f"{path}.{key}")
    meta = c.mapping(obj.get("metadata"), f"{path}.metadata")
    c.name(meta.get("name"), f"{path}.metadata.name")


def _check_event(c: Checker, event: Any, path: str) -> None:
    c.mapping(event, path, EVENT_KEYS)
    target = c.text(event.get("object"), f"{path}.object")
    if len(target.split("/")) not in (2, 3):
        raise c.fail(f"{path}.object", f"expected Kind/namespace/name, got {target!r}")
    c.text(event.get("reason"), f"{path}.reason")
    c.text(event.get("message"), f"{path}.message")
    if event.get("type", "Normal") not in ("Normal", "Warning"):
        raise c.fail(f"{path}.type", f"expected Normal or Warning, got {event['type']!r}")
    if "count" in event:
        c.integer(event["count"], f"{path}.count", 1)
    for key in ("first", "last"):
        if key in event:
            c.time(event[key], f"{path}.{key}")


def _check_logs(c: Checker, key: Any, entry: Any) -> None:
    path = f"logs.{key}"
    if not isinstance(key, str) or len(key.split("/")) not in (2, 3):
        raise c.fail(path, "key must be namespace/pod-or-workload[/container]")
    if isinstance(entry, str | list) or (isinstance(entry, dict) and "repeat" in entry):
        check_log_text(c, entry, path)
        return
    c.mapping(entry, path, {"current", "previous"})
    for part in ("current", "previous"):
        if part in entry:
            check_log_text(c, entry[part], f"{path}.{part}")


def check_log_text(c: Checker, value: Any, path: str) -> None:
    parts = value if isinstance(value, list) else [value]
    for i, part in enumerate(parts):
        where = f"{path}[{i}]" if isinstance(value, list) else path
        if isinstance(part, str):
            continue
        gen = c.mapping(part, where, GENERATOR_KEYS)
        c.integer(gen.get("repeat"), f"{where}.repeat", 1)
        lines = c.seq(gen.get("lines"), f"{where}.lines")
        if not lines or not all(isinstance(line, str) for line in lines):
            raise c.fail(f"{where}.lines", "expected a non-empty list of strings")
        if "step" in gen:
            c.duration(gen["step"], f"{where}.step")
        if "start" in gen and "end" in gen:
            raise c.fail(where, "give start or end, not both")
        for key in ("start", "end"):
            if key in gen:
                c.time(gen[key], f"{where}.{key}")


def _check_script(c: Checker, script: Any) -> None:
    steps = c.seq(script, "script")
    if not steps:
        raise c.fail("script", "expected at least one step")
    for i, step in enumerate(steps):
        path = f"script[{i}]"
        c.mapping(step, path, {"say", "calls", "answer"})
        if ("calls" in step) == ("answer" in step):
            raise c.fail(path, "needs exactly one of calls or answer")
        if "say" in step:
            c.text(step["say"], f"{path}.say")
        if "answer" in step:
            c.text(step["answer"], f"{path}.answer")
            continue
        calls = c.seq(step["calls"], f"{path}.calls")
        if not calls:
            raise c.fail(f"{path}.calls", "expected at least one call")
        for j, call in enumerate(calls):
            where = f"{path}.calls[{j}]"
            c.mapping(call, where, {"tool", "args"})
            if call.get("tool") not in TOOLS:
                raise c.fail(f"{where}.tool", f"unknown tool {call.get('tool')!r} "
                             f"(expected one of: {', '.join(TOOLS)})")
            c.mapping(call.get("args", {}), f"{where}.args")
    if "answer" not in steps[-1]:
        raise c.fail(f"script[{len(steps) - 1}]", "the last step must be an answer")
