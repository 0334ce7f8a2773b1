"""The three patch types the API server accepts for built-in types, chosen by Content-Type
(k8s.io/apiserver/pkg/endpoints/handlers/patch.go): JSON patch (RFC 6902: malformed is 400, an
op that cannot apply — a failed ``test`` included — is 422), merge patch (RFC 7386) and
strategic merge patch (lists with a patch merge key merge item by item; ``$patch:
delete|replace`` and ``$setElementOrder`` as k8s.io/apimachinery/pkg/util/strategicpatch
writes them). scenarios/replay_patch.py serves them.
"""

from __future__ import annotations

import copy
import json
from typing import Any

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH)
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")

# Patch merge keys of the pod template's lists (k8s.io/api/core/v1 `patchMergeKey` tags).
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "ports": "containerPort", "imagePullSecrets": "name", "hostAliases": "ip",
    "ownerReferences": "uid", "conditions": "type",
}


class PatchError(Exception):
    def __init__(self, code: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: null deletes, objects merge, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def strategic_merge(original: Any, patch: Any) -> Any:
    """Strategic merge for the fields a workload patch touches (see MERGE_KEYS)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    out = dict(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue  # ordering hints: our merge keeps the original order, new items last
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            out[field] = [v for v in out.get(field) or [] if v not in (value or [])]
            continue
        if value is None:
            out.pop(key, None)
        elif isinstance(value, list) and key in MERGE_KEYS:
            out[key] = _merge_list(out.get(key) or [], value, MERGE_KEYS[key])
        elif isinstance(value, dict):
            merged = strategic_merge(out.get(key), value)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_list(original: list[Any], patch: list[Any], key: str) -> list[Any]:
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [copy.deepcopy(i) for i in patch
                if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    out = copy.deepcopy(original)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(400, f"map: {item!r} does not contain declared merge key: {key}")
        index = next((i for i, o in enumerate(out) if isinstance(o, dict)
                      and o.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                out.pop(index)
            continue
        if index is None:
            out.append(strategic_merge({}, item))
        else:
            out[index] = strategic_merge(out[index], item)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(422, f'add operation does not apply: doc is missing path: "{path}"')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> tuple[Any, str]:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise PatchError(422, f'doc is missing path: "{path}": missing value')
    return node, parts[-1]


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 (add, remove, replace, move, copy, test) on a copy of ``doc``."""
    if not isinstance(ops, list) or not all(isinstance(o, dict) and "op" in o for o in ops):
        raise PatchError(400, "json: cannot unmarshal object into Go value of type "
                              "jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        kind, path = op["op"], str(op.get("path", ""))
        parts = _pointer(path)
        if kind in ("move", "copy"):
            source = _get(doc, _pointer(str(op.get("from", ""))), str(op.get("from")))
            if kind == "move":
                doc = _remove(doc, _pointer(str(op["from"])), str(op["from"]))
            doc = _add(doc, parts, copy.deepcopy(source), path, replace=False)
        elif kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")), path, replace=False)
        elif kind == "replace":
            _get(doc, parts, path)  # must exist
            doc = _add(doc, parts, copy.deepcopy(op.get("value")), path, replace=True)
        elif kind == "remove":
            doc = _remove(doc, parts, path)
        elif kind == "test":
            if _get(doc, parts, path) != op.get("value"):
                raise PatchError(422, f"testing value {path} failed: test failed")
        else:
            raise PatchError(400, f"Unexpected kind: {kind}")
    return doc


def _get(doc: Any, parts: list[str], path: str) -> Any:
    if not parts:
        return doc
    parent, last = _parent(doc, parts, path)
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise PatchError(422, f'replace operation does not apply: doc is missing key: {path}: '
                          "missing value")


def _add(doc: Any, parts: list[str], value: Any, path: str, replace: bool) -> Any:
    if not parts:
        return value
    parent, last = _parent(doc, parts, path)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent) - (1 if replace else 0):
            if replace:
                parent[int(last)] = value
            else:
                parent.insert(int(last), value)
        else:
            raise PatchError(422, f"add operation does not apply: doc is missing path: "
                                  f'"{path}": missing value')
    else:
        raise PatchError(422, f'doc is missing path: "{path}": missing value')
    return doc


def _remove(doc: Any, parts: list[str], path: str) -> Any:
    _get(doc, parts, path)
    parent, last = _parent(doc, parts, path)
    if isinstance(parent, dict):
        del parent[last]
    else:
        parent.pop(int(last))
    return doc


def apply_patch(content_type: str, obj: dict[str, Any], body: bytes) -> dict[str, Any]:
    try:
        patch = json.loads(body or b"null")
    except ValueError as exc:
        raise PatchError(400, f"error decoding patch: {exc}") from exc
    obj = copy.deepcopy(obj)  # the merges share untouched branches: never the stored ones
    if content_type == JSON_PATCH:
        result = json_patch(obj, patch)
    elif not isinstance(patch, dict):
        raise PatchError(400, "json: cannot unmarshal array into Go value of type "
                              "map[string]interface {}")
    elif content_type == MERGE_PATCH:
        result = merge_patch(obj, patch)
    else:
        result = strategic_merge(obj, patch)
    if not isinstance(result, dict):
        raise PatchError(400, "the patch did not produce an object")
    return result
