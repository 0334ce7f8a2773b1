"""The kubernetes client's failures as ``budo.errors``, translated once: an API Status (404,
403, 409, 400, 429/5xx…) into the ClusterError subclass with one line naming the object, and a
transport error reduced to the few words that say what happened."""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException

from budo.errors import ClusterError, ClusterUnreachable, Conflict, Forbidden, NotFound


def short_reason(exc: object) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out",
                   "No route to host", "certificate verify failed"):
        if marker.lower() in text.lower():
            return marker.lower()
    return " ".join(text.split())[:160]


def _api_message(exc: ApiException) -> str:
    """The Status object's message when the server sent one, else the HTTP reason."""
    try:
        body = json.loads(exc.body or "")
        if isinstance(body, dict) and body.get("message"):
            return " ".join(str(body["message"]).split())
    except ValueError:
        pass
    return f"{exc.status} {exc.reason}".strip()


def translate_api(exc: ApiException, what: str) -> ClusterError:
    status, message = exc.status or 0, _api_message(exc)
    if status == 404:
        return NotFound(f"{what} not found")
    if status in (401, 403):
        return Forbidden(f"access to {what} denied ({status}): {message}")
    if status == 0:
        return ClusterUnreachable(f"cannot reach the Kubernetes API while reading {what}: "
                                  f"{message}")
    if status == 409:
        return Conflict(f"{what} changed: {message}")
    if status == 400:
        return ClusterError(f"the API rejected the request for {what}: {message}")
    if status == 429 or status >= 500:
        return ClusterError(f"the Kubernetes API failed ({status}) on {what}: {message}; "
                            "retry in a moment")
    return ClusterError(f"the Kubernetes API answered {status} on {what}: {message}")
