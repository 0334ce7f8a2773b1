"""Label and field selectors with the API server's grammar and error messages."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]
_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_SET = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^)]*)\)\s*$")
_EQ = re.compile(rf"^\s*({_KEY})\s*(==|!=|=)\s*([-A-Za-z0-9_.]*)\s*$")
_EXISTS = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


class SelectorError(ValueError):
    """The selector does not parse; the message is the API server's wording."""


def _split(selector: str) -> list[str]:
    """Split on commas outside parentheses: `a in (x,y),b` -> [`a in (x,y)`, `b`]."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def label_selector(selector: str) -> Callable[[dict[str, str]], bool]:
    """A predicate over a labels mapping; raises SelectorError on bad syntax."""
    tests: list[Callable[[dict[str, str]], bool]] = []
    for term in _split(selector):
        if match := _SET.match(term):
            key, op, raw = match.group(1), match.group(3), match.group(4)
            values = {v.strip() for v in raw.split(",") if v.strip()}
            if not values:
                raise SelectorError(f"unable to parse requirement: for 'in', 'notin' "
                                    f"operators, values set can't be empty: {term.strip()!r}")
            tests.append(_in_set(key, values, negate=op != "in"))
        elif match := _EQ.match(term):
            key, op, value = match.group(1), match.group(3), match.group(4)
            tests.append(_equals(key, value, negate=op == "!="))
        elif match := _EXISTS.match(term):
            negate, key = match.group(1) == "!", match.group(2)
            tests.append(_exists(key, negate))
        else:
            raise SelectorError(f"unable to parse requirement: found '{term.strip()}', "
                                "expected: key, key=value, key!=value, key in (...), "
                                "key notin (...), !key")
    return lambda labels: all(test(labels) for test in tests)


# One closure per requirement (a function each, so every closure keeps its own key and value).
def _in_set(key: str, values: set[str], negate: bool) -> Callable[[dict[str, str]], bool]:
    return lambda labels: (labels.get(key) in values) != negate


def _equals(key: str, value: str, negate: bool) -> Callable[[dict[str, str]], bool]:
    if negate:
        return lambda labels: labels.get(key) != value
    return lambda labels: key in labels and labels[key] == value


def _exists(key: str, negate: bool) -> Callable[[dict[str, str]], bool]:
    return lambda labels: (key in labels) != negate


def _lookup(obj: dict[str, Any], path: str) -> str | None:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if value is None:
        return None
    return str(value).lower() if isinstance(value, bool) else str(value)


# Field selectors the API server accepts per kind beyond metadata.name/namespace.
FIELDS = {
    "Pod": {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
            "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
            "status.nominatedNodeName"},
    "Event": {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
              "involvedObject.uid", "involvedObject.apiVersion",
              "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
              "reportingComponent", "source", "type", "regarding.name", "regarding.kind",
              "regarding.namespace", "regarding.uid"},
    "Secret": {"type"},
    "Namespace": {"status.phase"},
    "Node": {"spec.unschedulable"},
    "ReplicaSet": {"status.replicas"},
}


def field_selector(selector: str, kind: str) -> Predicate:
    """A predicate over an object; unsupported fields are a 400, as in the real API."""
    tests: list[Predicate] = []
    for term in _split(selector):
        match = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*?)\s*$", term)
        if not match:
            raise SelectorError(f"invalid selector: '{selector}'; can't understand '{term}'")
        path, op, value = match.groups()
        allowed = {"metadata.name", "metadata.namespace"} | FIELDS.get(kind, set())
        if path not in allowed:
            raise SelectorError(f'field label not supported: {path}')
        lookup_path = "source.component" if (kind, path) == ("Event", "source") else path
        tests.append(_field_equals(lookup_path, value, negate=op == "!="))
    return lambda obj: all(test(obj) for test in tests)


def _field_equals(path: str, value: str, negate: bool) -> Predicate:
    return lambda obj: ((_lookup(obj, path) or "") == value) != negate
