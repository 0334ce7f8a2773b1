"""Request routing and handlers of the replay API server (state lives in ReplayState)."""

from __future__ import annotations

import json
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aiohttp import web

from scenarios.replay_discovery import (
    SERVER_VERSION,
    Resource,
    api_versions,
    find_resource,
    forbidden,
    group,
    group_list,
    resource_list,
    status,
    to_events_v1,
)
from scenarios.replay_logs import LogError, choose_text, cut, pick_container
from scenarios.replay_patch import SCALABLE, handle_patch, scale_of
from scenarios.replay_selectors import SelectorError, field_selector, label_selector
from scenarios.replay_state import ReplayState
from scenarios.replay_table import table, wants_table
from scenarios.times import parse_timestamp


class ReplayServer(Protocol):
    """What the handlers read of the server (scenarios/replay.py): its state, the forbidden
    namespaces among its fault switches, its address and the user it answers as."""

    port: int
    user: str

    @property
    def state(self) -> ReplayState: ...

    @property
    def faults(self) -> _Forbidding: ...


class _Forbidding(Protocol):
    forbidden_namespaces: set[str]


def reply(body: dict[str, Any], code: int = 200) -> web.Response:
    return web.Response(status=code, text=json.dumps(body), content_type="application/json")


def fail(code: int, message: str, **details: Any) -> web.Response:
    return reply(status(code, message, **details), code)


async def dispatch(server: ReplayServer, request: web.Request) -> web.Response:
    parts = [p for p in request.path.split("/") if p]
    if request.method == "GET":
        answer = _discovery(server, parts)
        if answer is not None:
            return answer
    if parts[:1] == ["openapi"] or (parts[:1] == ["version"] and len(parts) > 1):
        return fail(404, "the server could not find the requested resource")
    if parts[:2] == ["api", "v1"]:
        group_name, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group_name, version, rest = parts[1], parts[2], parts[3:]
    else:
        return fail(404, "the server could not find the requested resource")
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return fail(404, "the server could not find the requested resource")
    res = find_resource(group_name, version, rest[0])
    if (res is None or (namespace is not None and not res.namespaced)
            or (namespace is None and res.namespaced and len(rest) > 1)):
        return fail(404, "the server could not find the requested resource")
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if len(rest) > 3 or (sub and (res.kind, sub) != ("Pod", "log") and not (
            sub == "scale" and res.kind in SCALABLE)):
        return fail(404, "the server could not find the requested resource")
    server.state.rollouts.tick()  # controllers catch up before anyone looks
    verb = {"GET": "list" if name is None else "get", "DELETE": "delete",
            "PATCH": "patch"}.get(request.method)
    if verb is None or (verb in ("delete", "patch") and verb not in res.verbs) or (
            verb == "patch" and name is None):
        return fail(405, "the server does not allow this method on the requested resource",
                    name=name, kind=res.plural, group=res.group)
    if namespace in server.faults.forbidden_namespaces or (
            namespace is None and res.namespaced and server.faults.forbidden_namespaces):
        return reply(forbidden(server.user, verb, res, namespace, name), 403)
    if sub == "log":
        return _logs(server, request, namespace or "", name or "")
    if verb == "delete":
        return await _delete(server, request, res, namespace or "", name or "")
    if verb == "patch":
        return await handle_patch(server, request, res, namespace or "", name or "", sub)
    if sub == "scale":
        obj = server.state.find(res.kind, namespace, name or "")
        return reply(scale_of(obj)) if obj else fail(404, f'{res.plural}.{res.group} "{name}" '
                                                      "not found", name=name, kind=res.plural)
    if name is not None:
        return _get(server, request, res, namespace, name)
    return _list(server, request, res, namespace)


def _discovery(server: ReplayServer, parts: list[str]) -> web.Response | None:
    if parts in (["version"],):
        return reply(SERVER_VERSION)
    if parts == ["api"]:
        return reply(api_versions(f"127.0.0.1:{server.port}"))
    if parts == ["apis"]:
        return reply(group_list())
    if parts == ["api", "v1"] or (len(parts) == 3 and parts[0] == "apis"):
        body = resource_list("" if parts[0] == "api" else parts[1], parts[-1])
        return reply(body) if body else fail(404, "the server could not find the requested "
                                              "resource")
    if len(parts) == 2 and parts[0] == "apis":
        body = group(parts[1])
        return reply(body) if body else fail(404, "the server could not find the requested "
                                              "resource")
    return None


def _shape(res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    if res.group == "events.k8s.io":
        return to_events_v1(obj)
    return obj


def _get(server: ReplayServer, request: web.Request, res: Resource, namespace: str | None,
         name: str) -> web.Response:
    obj = server.state.find(res.kind, namespace, name)
    if obj is None:
        return fail(404, f'{res.plural}{"." + res.group if res.group else ""} "{name}" '
                    "not found", name=name, kind=res.plural, group=res.group)
    if wants_table(request.headers.get("Accept", "")) and res.group != "events.k8s.io":
        return reply(table(res.kind, [obj], str(server.state.resource_version)))
    return reply(_shape(res, obj))


def _list(server: ReplayServer, request: web.Request, res: Resource,
          namespace: str | None) -> web.Response:
    query = request.query
    if query.get("watch") in ("true", "1"):
        # No changes stream from a replay: an empty watch that ends lets clients re-list.
        return web.Response(status=200, text="", content_type="application/json")
    items = _candidates(server, res.kind, query.get("fieldSelector") or "")
    if namespace is not None:
        items = [o for o in items if o["metadata"].get("namespace") == namespace]
    try:
        if query.get("labelSelector"):
            labels = label_selector(query["labelSelector"])
            items = [o for o in items if labels(o["metadata"].get("labels") or {})]
        if query.get("fieldSelector"):
            fields = field_selector(query["fieldSelector"], res.kind)
            items = [o for o in items if fields(o)]
    except SelectorError as exc:
        return fail(400, str(exc), kind=res.plural)
    limit = query.get("limit")
    if limit and limit.isdigit() and int(limit) > 0:
        items = items[: int(limit)]
    if wants_table(request.headers.get("Accept", "")) and res.group != "events.k8s.io":
        return reply(table(res.kind, items, str(server.state.resource_version)))
    shaped = [_shape(res, o) for o in items]
    return reply({"kind": f"{res.kind}List", "apiVersion": res.api_version,
                  "metadata": {"resourceVersion": str(server.state.resource_version)},
                  "items": shaped})


_INVOLVED = "involvedObject.name="


class _Index:
    """Objects by kind, and events by involved object name: the API server answers lists
    from its watch cache, per resource, without walking every other kind; the index keeps the
    replay's cost per list in proportion to what a real server does. Rebuilt whenever the
    state changes (its object list or resourceVersion)."""

    def __init__(self, objects: list[dict[str, Any]], version: int) -> None:
        self.key = (id(objects), len(objects), version)
        self.by_kind: dict[str, list[dict[str, Any]]] = {}
        self.events_by_name: dict[str, list[dict[str, Any]]] = {}
        for obj in objects:
            self.by_kind.setdefault(obj["kind"], []).append(obj)
            if obj["kind"] == "Event":
                name = str((obj.get("involvedObject") or {}).get("name", ""))
                self.events_by_name.setdefault(name, []).append(obj)


_INDEXES: weakref.WeakKeyDictionary[Any, _Index] = weakref.WeakKeyDictionary()


def _candidates(server: ReplayServer, kind: str, fields: str) -> list[dict[str, Any]]:
    """The objects of ``kind`` (narrowed to one involved object when the field selector
    names it exactly; the full selector is still applied afterwards)."""
    state = server.state
    key = (id(state.objects), len(state.objects), state.resource_version)
    index = _INDEXES.get(server)
    if index is None or index.key != key:
        index = _INDEXES[server] = _Index(state.objects, state.resource_version)
    if kind == "Event":
        for term in fields.split(","):
            name = term.strip().replace("==", "=")
            if name.startswith(_INVOLVED):
                return index.events_by_name.get(name[len(_INVOLVED):].strip(), [])
    return index.by_kind.get(kind, [])


def _int(query: Any, key: str) -> int | None:
    raw = query.get(key)
    if raw in (None, ""):
        return None
    if not raw.lstrip("-").isdigit():
        raise LogError(f"{key}: invalid value {raw!r}: must be an integer")
    return int(raw)


def _logs(server: ReplayServer, request: web.Request, namespace: str,
          name: str) -> web.Response:
    pod = server.state.find("Pod", namespace, name)
    if pod is None:
        return fail(404, f'pods "{name}" not found', name=name, kind="pods")
    query = request.query
    try:
        container = pick_container(pod, query.get("container"))
        previous = query.get("previous") in ("true", "1")
        text = choose_text(pod, container, server.state.logs.get((namespace, name, container)),
                           previous)
        now = datetime.now(UTC)
        since = None
        since_seconds = _int(query, "sinceSeconds")
        if since_seconds is not None:
            since = now - timedelta(seconds=since_seconds)
        elif query.get("sinceTime"):
            since = parse_timestamp(query["sinceTime"])
        start = parse_timestamp(pod.get("status", {}).get("startTime") or "") or now
        body = cut(text, start=start, timestamps=query.get("timestamps") in ("true", "1"),
                   tail_lines=_int(query, "tailLines"), since=since,
                   limit_bytes=_int(query, "limitBytes"))
    except LogError as exc:
        return fail(400, str(exc))
    return web.Response(status=200, text=body, content_type="text/plain")


async def _delete(server: ReplayServer, request: web.Request, res: Resource, namespace: str,
                  name: str) -> web.Response:
    pod = server.state.find(res.kind, namespace, name)
    if pod is None:
        return fail(404, f'pods "{name}" not found', name=name, kind="pods")
    # DeleteOptions.preconditions, as apiserver's generic registry store checks them
    # (staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go, Delete →
    # preconditions.Check): a mismatch is 409 Conflict and nothing is deleted.
    body = await request.read()
    options = json.loads(body) if body.strip() else {}
    pre = (options.get("preconditions") or {}) if isinstance(options, dict) else {}
    meta = pod["metadata"]
    for key, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
        if pre.get(key) and pre[key] != meta.get(key):
            return fail(409, f'Operation cannot be fulfilled on pods "{name}": Precondition '
                        f"failed: {label} in precondition: {pre[key]}, {label} in object meta: "
                        f"{meta.get(key)}", name=name, kind="pods")
    gone = server.state.delete_pod(namespace, name, request.headers.get("User-Agent", ""))
    return reply(gone)
