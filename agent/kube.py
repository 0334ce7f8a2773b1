"""The one module that calls the official ``kubernetes`` client.

Every call runs in a worker thread (``asyncio.to_thread``: the client is synchronous), asks for
the raw JSON (``_preload_content=False``) so findings work on plain dicts, passes
``_request_timeout``, and translates the client's exceptions into ``budo.errors`` ClusterError
subclasses with a one-line message naming the object. Namespaces outside ``namespaces`` (from
BUDO_NAMESPACES) are refused before any request is made.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from agent.kinds import KIND_WORDS, KINDS
from agent.kube_errors import short_reason, translate_api
from agent.protocols import Obj
from agent.text import labels
from budo.errors import ClusterError, ClusterUnreachable, Forbidden


def strip_secret(obj: Obj) -> Obj:
    """A Secret with its values dropped the moment it arrives: key names and sizes only."""
    kept: dict[str, Any] = dict(obj)
    for field in ("data", "stringData"):
        values = obj.get(field)
        if isinstance(values, dict):
            kept[field] = {k: f"<{len(str(v))} bytes>" for k, v in values.items()}
    meta = dict(obj.get("metadata") or {})
    # kubectl apply keeps the whole object, values included, in this annotation.
    meta["annotations"] = {k: v for k, v in (meta.get("annotations") or {}).items()
                           if k != "kubectl.kubernetes.io/last-applied-configuration"}
    kept["metadata"] = meta
    return kept


def label_selector(selector: Mapping[str, Any] | None) -> str:
    """A LabelSelector object (matchLabels + matchExpressions) as the API's query string."""
    if not selector:
        return ""
    parts = [labels(selector.get("matchLabels"))] if selector.get("matchLabels") else []
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


class Cluster:
    """Async, namespace-scoped access to one Kubernetes API. Methods return raw JSON dicts and
    raise ``NotFound``/``Forbidden``/``ClusterUnreachable``/``ClusterError``."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        namespaces: tuple[str, ...] = (),
        request_timeout: float = 10.0,
        source: str = "",
    ) -> None:
        self.api_client = api_client
        self.namespaces = tuple(namespaces)
        self.request_timeout = request_timeout
        self.source = source
        self._apis: dict[str, Any] = {
            "core": client.CoreV1Api(api_client), "apps": client.AppsV1Api(api_client),
            "batch": client.BatchV1Api(api_client),
            "networking": client.NetworkingV1Api(api_client),
            "autoscaling": client.AutoscalingV2Api(api_client),
            "policy": client.PolicyV1Api(api_client),
            "discovery": client.DiscoveryV1Api(api_client),
            "storage": client.StorageV1Api(api_client),
        }
        self._core = self._apis["core"]
        self._apps = self._apis["apps"]

    # --- construction -------------------------------------------------------------------

    @classmethod
    def from_kubeconfig(
        cls,
        path: str | os.PathLike[str] | None = None,
        namespaces: tuple[str, ...] = (),
        request_timeout: float = 10.0,
    ) -> Cluster:
        """Load ``path`` (None: the client's default, KUBECONFIG or ~/.kube/config), falling
        back to the in-cluster service account when no file exists and no path was given."""
        configuration = client.Configuration()
        # A slow or dead API server must surface as one tool error, not minutes of retries:
        # retry refused connections briefly, never re-send a request that timed out.
        configuration.retries = urllib3.Retry(total=2, connect=2, read=0, status=0,
                                              redirect=0, backoff_factor=0.05)
        default = config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION
        file = os.fspath(path) if path else default
        files = [os.path.expanduser(p) for p in file.split(os.pathsep) if p]
        if any(os.path.exists(f) for f in files):
            try:
                config.load_kube_config(config_file=file, client_configuration=configuration)
            except yaml.YAMLError as exc:  # its str() is several lines with a code excerpt
                mark = getattr(exc, "problem_mark", None)
                where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
                problem = getattr(exc, "problem", None) or type(exc).__name__
                raise ClusterUnreachable(f"kubeconfig {file} is not valid YAML: "
                                         f"{problem}{where}") from exc
            except (ConfigException, OSError, ValueError, TypeError) as exc:
                one_line = " ".join(str(exc).split())
                raise ClusterUnreachable(f"kubeconfig {file} is not usable: {one_line}") from exc
            source = file
        elif path:
            raise ClusterUnreachable(f"kubeconfig {path} not found")
        else:
            try:
                config.load_incluster_config(client_configuration=configuration)
            except ConfigException as exc:
                raise ClusterUnreachable(
                    "no kubeconfig found (set KUBECONFIG or run in a cluster)"
                ) from exc
            source = "in-cluster"
        return cls(client.ApiClient(configuration), namespaces=namespaces,
                   request_timeout=request_timeout, source=source)

    def close(self) -> None:
        self.api_client.close()

    # --- scope ----------------------------------------------------------------------------

    def check_namespace(self, namespace: str) -> None:
        """Raise Forbidden when BUDO_NAMESPACES is set and ``namespace`` is not in it."""
        if self.namespaces and namespace not in self.namespaces:
            raise Forbidden(
                f"namespace {namespace!r} is outside BUDO_NAMESPACES; allowed namespaces: "
                f"{', '.join(self.namespaces)}"
            )

    # --- calls ------------------------------------------------------------------------------

    async def _call(self, what: str, method: Callable[..., Any], /, **kwargs: Any) -> Any:
        """Run one client call in a thread; return the raw urllib3 response body as bytes."""
        def call() -> bytes:
            response = method(**kwargs, _preload_content=False,
                              _request_timeout=self.request_timeout)
            return bytes(response.data)

        return await self._guarded(what, call)

    async def _guarded(self, what: str, call: Callable[[], Any]) -> Any:
        """Run ``call`` in a worker thread, translating the client's errors once."""
        try:
            return await asyncio.to_thread(call)
        except ApiException as exc:
            raise translate_api(exc, what) from exc
        except urllib3.exceptions.MaxRetryError as exc:
            reason = exc.reason
            # NewConnectionError subclasses ConnectTimeoutError in urllib3: test it first.
            if isinstance(reason, urllib3.exceptions.TimeoutError) and not isinstance(
                    reason, urllib3.exceptions.NewConnectionError):
                raise self._timeout(what) from exc
            raise ClusterUnreachable(
                f"cannot reach the Kubernetes API at {self.api_client.configuration.host} "
                f"({short_reason(reason)}) while reading {what}"
            ) from exc
        except urllib3.exceptions.TimeoutError as exc:
            raise self._timeout(what) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterUnreachable(
                f"the Kubernetes API connection failed while reading {what}: {short_reason(exc)}"
            ) from exc

    def _timeout(self, what: str) -> ClusterUnreachable:
        return ClusterUnreachable(
            f"the Kubernetes API did not answer within {self.request_timeout:g}s while "
            f"reading {what}; try again or narrow the request"
        )

    async def _json(self, what: str, method: Callable[..., Any], /, **kwargs: Any) -> Obj:
        body = await self._call(what, method, **kwargs)
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise ClusterError(f"the Kubernetes API sent a body that is not JSON for {what}") \
                from exc
        if not isinstance(data, dict):
            raise ClusterError(f"the Kubernetes API sent an unexpected body for {what}")
        return data

    async def _items(self, what: str, method: Callable[..., Any], /, **kwargs: Any) -> list[Obj]:
        kwargs = {k: v for k, v in kwargs.items() if v}
        return list((await self._json(what, method, **kwargs)).get("items") or [])

    async def list_namespaces(self) -> list[Obj]:
        """Namespaces visible to us; with BUDO_NAMESPACES set, only those (and without
        cluster-wide list permission, the configured names as stubs)."""
        try:
            items = await self._items("namespaces", self._core.list_namespace)
        except Forbidden:
            if not self.namespaces:
                raise
            return [{"metadata": {"name": n}, "status": {}} for n in self.namespaces]
        if self.namespaces:
            items = [i for i in items if i.get("metadata", {}).get("name") in self.namespaces]
        return items

    async def list_of(self, kind: str, namespace: str | None = None, *, labels: str = "",
                   fields: str = "") -> list[Obj]:
        """Every ``kind`` (a key of ``KINDS``) in ``namespace`` (ignored for cluster-scoped
        kinds), narrowed on the server by label and field selectors."""
        group, stem, namespaced = KINDS[kind]
        method = getattr(self._apis[group], f"list_{stem}")
        word = KIND_WORDS.get(kind, kind)
        if not namespaced:
            items = await self._items(f"{word}s", method, label_selector=labels,
                                      field_selector=fields)
        else:
            if not namespace:
                raise ClusterError(f"listing {word}s needs a namespace")
            self.check_namespace(namespace)
            items = await self._items(f"{word}s in namespace {namespace!r}", method,
                                      namespace=namespace, label_selector=labels,
                                      field_selector=fields)
        return [strip_secret(i) for i in items] if kind == "secret" else items

    async def list_pods(self, namespace: str, selector: str = "") -> list[Obj]:
        return await self.list_of("pod", namespace, labels=selector)

    async def list_events(self, namespace: str, *, fields: str = "") -> list[Obj]:
        """Events, narrowed on the server (``involvedObject.name=x``, ``type=Warning``): a
        busy namespace holds tens of megabytes of them."""
        return await self.list_of("event", namespace, fields=fields)

    async def list_services(self, namespace: str) -> list[Obj]:
        return await self.list_of("service", namespace)

    async def list_endpoints(self, namespace: str) -> list[Obj]:
        return await self.list_of("endpoints", namespace)

    async def list_replicasets(self, namespace: str, selector: str = "") -> list[Obj]:
        return await self.list_of("replicaset", namespace, labels=selector)

    async def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        """Read one object; ``kind`` is a canonical key of ``KINDS`` (lower case)."""
        group, stem, namespaced = KINDS[kind]
        method = getattr(self._apis[group], f"read_{stem}")
        word = KIND_WORDS.get(kind, kind)
        if namespaced:
            if not namespace:
                raise ClusterError(f"{word} needs a namespace")
            self.check_namespace(namespace)
            obj = await self._json(f"{word} {name!r} in namespace {namespace!r}", method,
                                   name=name, namespace=namespace)
        else:
            obj = await self._json(f"{word} {name!r}", method, name=name)
        return strip_secret(obj) if kind == "secret" else obj

    async def read_log(
        self,
        namespace: str,
        pod: str,
        *,
        container: str | None = None,
        tail_lines: int | None = None,
        previous: bool = False,
        since_seconds: int | None = None,
    ) -> str:
        self.check_namespace(namespace)
        kwargs: dict[str, Any] = {"name": pod, "namespace": namespace}
        for key, value in (("container", container), ("tail_lines", tail_lines),
                           ("since_seconds", since_seconds)):
            if value is not None:
                kwargs[key] = value
        if previous:
            kwargs["previous"] = True
        body = await self._call(f"logs of pod {pod!r} in namespace {namespace!r}",
                                self._core.read_namespaced_pod_log, **kwargs)
        return str(body.decode("utf-8", errors="replace"))

    async def scan_log(
        self,
        namespace: str,
        pod: str,
        consume: Callable[[str], None],
        *,
        container: str | None = None,
        tail_lines: int | None = None,
        previous: bool = False,
        since_seconds: int | None = None,
        limit_bytes: int | None = None,
    ) -> int:
        """Stream a log through ``consume`` one line at a time (in the worker thread) without
        holding it: a 50 MB log costs the memory of one chunk. Returns the bytes read."""
        self.check_namespace(namespace)
        kwargs: dict[str, Any] = {"name": pod, "namespace": namespace}
        for key, value in (("container", container), ("tail_lines", tail_lines),
                           ("since_seconds", since_seconds), ("limit_bytes", limit_bytes)):
            if value is not None:
                kwargs[key] = value
        if previous:
            kwargs["previous"] = True
        what = f"logs of pod {pod!r} in namespace {namespace!r}"
        method = self._core.read_namespaced_pod_log

        def call() -> int:
            response = method(**kwargs, _preload_content=False,
                              _request_timeout=self.request_timeout)
            total, rest = 0, b""
            try:
                for chunk in response.stream(1 << 16):
                    total += len(chunk)
                    lines = (rest + chunk).split(b"\n")
                    rest = lines.pop()
                    for line in lines:
                        consume(line.decode("utf-8", errors="replace"))
                if rest:
                    consume(rest.decode("utf-8", errors="replace"))
            finally:
                response.release_conn()
            return total

        return int(await self._guarded(what, call))

    async def delete_pod(self, namespace: str, pod: str, *, uid: str) -> Obj:
        """Delete exactly the pod with this uid: the API server answers 409 (Conflict) when
        the name now belongs to a different pod (DeleteOptions.preconditions.uid)."""
        self.check_namespace(namespace)
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid))
        return await self._json(f"pod {pod!r} in namespace {namespace!r}",
                                self._core.delete_namespaced_pod, name=pod, namespace=namespace,
                                body=options)
