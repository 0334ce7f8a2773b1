"""PATCH on the replay API: workloads and their ``scale`` subresource, as the API server does it.

What is modelled, with where the real behaviour is written down:

- The three patch types, chosen by Content-Type (scenarios/patch_types.py); anything else
  is 415.
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

from scenarios.patch_types import PATCH_TYPES, PatchError, apply_patch
from scenarios.replay_discovery import Resource, status

if TYPE_CHECKING:
    from scenarios.replay_state import ReplayState


class ReplayServer(Protocol):
    """What PATCH reads of the server (scenarios/replay.py): its state and fault switches."""

    @property
    def state(self) -> ReplayState: ...

    @property
    def faults(self) -> Any: ...

SCALABLE = ("Deployment", "StatefulSet")
OPTIMISTIC_LOCK = ("the object has been modified; please apply your changes to the latest "
                   "version and try again")
WEBHOOK = "policy.budo.replay"

# Matched whole (fullmatch): Go's "^…$" ends at the end of the text, Python's "$" also before
# a final newline, so ``.match`` would take "server\n" that the API server refuses.
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


def _reply(body: dict[str, Any], code: int = 200) -> web.Response:
    return web.Response(status=code, text=json.dumps(body), content_type="application/json")


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
        if not DNS_LABEL.fullmatch(name) or len(name) > 63:
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
            if not ENV_NAME.fullmatch(env_name):
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
