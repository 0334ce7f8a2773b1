"""PATCH on the replay API: workloads and their ``scale`` subresource, as the API server does it.

What is modelled, with where the real behaviour is written down:

- The three patch types the API server accepts for built-in types, chosen by Content-Type
  (k8s.io/apiserver/pkg/endpoints/handlers/patch.go): ``application/json-patch+json`` (RFC 6902;
  a malformed patch is 400, an op that cannot apply — a failed ``test`` included — is 422),
  ``application/merge-patch+json`` (RFC 7386) and ``application/strategic-merge-patch+json``
  (lists with a patch merge key — containers/env by ``name``, ports by ``containerPort``,
  volumeMounts by ``mountPath`` — merge item by item; ``$patch: delete|replace`` and
  ``$setElementOrder`` directives as k8s.io/apimachinery/pkg/util/strategicpatch writes them).
  Anything else is 415.
- Optimistic concurrency: a patch that sets ``metadata.resourceVersion`` makes the update
  conditional; a stale one is 409 Conflict "the object has been modified; please apply your
  changes to the latest version and try again" (k8s.io/apiserver/pkg/registry/generic/registry/
  store.go, OptimisticLockErrorMsg). The scale subresource shares its parent's
  resourceVersion (pkg/registry/apps/deployment/storage/storage.go, scaleUpdatedObjectInfo).
- ``dryRun=All``: every stage runs — decoding, patching, validation, admission — and nothing is
  stored; the response is the object as it would be. Any other dryRun value is 400.
- Validation (pkg/apis/apps/validation, pkg/apis/core/validation) of what a patch can break here:
  replicas ≥ 0, immutable selector, selector matching the template labels, container names
  (DNS-1123 labels, unique), images required, env var names (IsEnvVarName), value vs valueFrom.
  A failure is 422 Invalid naming the field, before admission.
- A validating admission webhook that denies (``server.faults.deny_writes``): 403
  'admission webhook "…" denied the request: …', dry runs included.

What happens after a stored change (new ReplicaSets, pods, rollout status) is
scenarios/replay_rollout.py.
"""

from __future__ import annotations

import copy
import json
import re
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from scenarios.replay_discovery import Resource, status

if TYPE_CHECKING:
    from scenarios.replay_state import ReplayState


class ReplayServer(Protocol):
    """What PATCH reads of the server (scenarios/replay.py): its state and fault switches."""

    @property
    def state(self) -> ReplayState: ...

    @property
    def faults(self) -> Any: ...

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH)
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
SCALABLE = ("Deployment", "StatefulSet")
OPTIMISTIC_LOCK = ("the object has been modified; please apply your changes to the latest "
                   "version and try again")
WEBHOOK = "policy.budo.replay"

# Patch merge keys of the pod template's lists (k8s.io/api/core/v1 `patchMergeKey` tags).
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "ports": "containerPort", "imagePullSecrets": "name", "hostAliases": "ip",
    "ownerReferences": "uid", "conditions": "type",
}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class PatchError(Exception):
    def __init__(self, code: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason


def _reply(body: dict[str, Any], code: int = 200) -> web.Response:
    return web.Response(status=code, text=json.dumps(body), content_type="application/json")


# --- the three patch algorithms -------------------------------------------------------------


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


# --- validation -------------------------------------------------------------------------------


def _invalid(kind: str, group: str, name: str, causes: list[tuple[str, str]]) -> PatchError:
    text = ", ".join(f"{field}: {message}" for field, message in causes)
    qualified = f"{kind}.{group}" if group else kind
    return PatchError(422, f'{qualified} "{name}" is invalid: {text}', reason="Invalid")


def validate_workload(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str]]:
    causes: list[tuple[str, str]] = []
    spec = new.get("spec") or {}
    replicas = spec.get("replicas", 1)
    if new["kind"] in SCALABLE and (not isinstance(replicas, int) or replicas < 0):
        causes.append(("spec.replicas", f"Invalid value: {replicas}: must be greater than or "
                                        "equal to 0"))
    if spec.get("selector") != (old.get("spec") or {}).get("selector"):
        causes.append(("spec.selector", f"Invalid value: {json.dumps(spec.get('selector'))}: "
                                        "field is immutable"))
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    wanted = ((spec.get("selector") or {}).get("matchLabels") or {})
    if any(labels.get(k) != v for k, v in wanted.items()):
        causes.append(("spec.template.metadata.labels", f"Invalid value: {json.dumps(labels)}: "
                                                        "`selector` does not match template "
                                                        "`labels`"))
    containers = (template.get("spec") or {}).get("containers") or []
    base = "spec.template.spec.containers"
    if not containers:
        causes.append((base, "Required value"))
    seen: set[str] = set()
    for i, container in enumerate(containers):
        name = str(container.get("name", ""))
        if not DNS_LABEL.match(name) or len(name) > 63:
            causes.append((f"{base}[{i}].name", f'Invalid value: "{name}": a lowercase RFC '
                                                "1123 label must consist of lower case "
                                                "alphanumeric characters or '-'"))
        elif name in seen:
            causes.append((f"{base}[{i}].name", f'Duplicate value: "{name}"'))
        seen.add(name)
        if not container.get("image"):
            causes.append((f"{base}[{i}].image", "Required value"))
        for j, env in enumerate(container.get("env") or []):
            where = f"{base}[{i}].env[{j}]"
            env_name = str(env.get("name", ""))
            if not ENV_NAME.match(env_name):
                causes.append((f"{where}.name", f'Invalid value: "{env_name}": a valid '
                               "environment variable name must consist of alphabetic "
                               "characters, digits, '_', '-', or '.', and must not start with "
                               "a digit (regex used for validation is "
                               "'[-._a-zA-Z][-._a-zA-Z0-9]*')"))
            if env.get("value") and env.get("valueFrom"):
                causes.append((f"{where}.valueFrom", 'Invalid value: "": may not be specified '
                                                    "when `value` is not empty"))
    return causes


# --- the handler ------------------------------------------------------------------------------


def scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The autoscaling/v1 Scale view of a workload."""
    meta = obj["metadata"]
    selector = ",".join(f"{k}={v}" for k, v in sorted(
        ((obj["spec"].get("selector") or {}).get("matchLabels") or {}).items()))
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                              "creationTimestamp") if k in meta},
            "spec": {"replicas": obj["spec"].get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": selector}}


async def handle_patch(server: ReplayServer, request: web.Request, res: Resource,
                       namespace: str, name: str, sub: str | None) -> web.Response:
    details = {"name": name, "kind": res.plural, "group": res.group}
    try:
        response = await _patch(server, request, res, namespace, name, sub)
    except PatchError as exc:
        body = status(exc.code, exc.message, **details)
        if exc.code == 415:
            body["reason"] = "UnsupportedMediaType"
        elif exc.code == 422:
            body["reason"] = "Invalid"
        return _reply(body, exc.code)
    return _reply(response)


async def _patch(server: ReplayServer, request: web.Request, res: Resource, namespace: str,
                 name: str, sub: str | None) -> dict[str, Any]:
    content_type = request.content_type
    if content_type not in PATCH_TYPES:
        raise PatchError(415, "the body of the request was in an unknown format - accepted "
                              "media types include: " + ", ".join(PATCH_TYPES))
    dry_run = request.query.getall("dryRun", [])
    if any(value != "All" for value in dry_run):
        raise PatchError(400, f'dryRun: Unsupported value: "{dry_run[0]}": supported values: '
                              '"All"')
    body = await request.read()
    current = server.state.find(res.kind, namespace, name)
    if current is None:
        raise PatchError(404, f'{res.plural}.{res.group} "{name}" not found')
    before = scale_of(current) if sub == "scale" else current
    patched = apply_patch(content_type, before, body)
    version = str((patched.get("metadata") or {}).get("resourceVersion") or "")
    if version and version != current["metadata"]["resourceVersion"]:
        raise PatchError(409, f'Operation cannot be fulfilled on {res.plural}.{res.group} '
                              f'"{name}": {OPTIMISTIC_LOCK}', reason="Conflict")
    if (patched.get("metadata") or {}).get("name") != name:
        raise PatchError(400, f"the name of the object ({patched.get('metadata', {}).get('name')}"
                              f") does not match the name on the URL ({name})")
    if sub == "scale":
        replicas = (patched.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise _invalid("Scale", "autoscaling", name, [(
                "spec.replicas", f"Invalid value: {replicas}: must be greater than or equal "
                                 "to 0")])
        updated = copy.deepcopy(current)
        updated["spec"]["replicas"] = replicas
    else:
        updated = patched
        for key in ("uid", "creationTimestamp", "namespace", "generation"):
            if key in current["metadata"]:
                updated["metadata"][key] = current["metadata"][key]
        updated["status"] = copy.deepcopy(current.get("status") or {})
        updated["kind"], updated["apiVersion"] = current["kind"], current["apiVersion"]
        causes = validate_workload(current, updated)
        if causes:
            raise _invalid(res.kind, res.group, name, causes)
    denial = server.faults.deny_writes
    if denial:
        raise PatchError(403, f'admission webhook "{WEBHOOK}" denied the request: {denial}')
    if updated.get("spec") != current.get("spec"):
        updated["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
    if dry_run:
        result = updated
    else:
        result = server.state.rollouts.store(current, updated)
    return scale_of(result) if sub == "scale" else result
