"""Reads shared by the tools of one run: at most one list per kind and namespace per run.

The cross-object checks (which Service does this env value name, which ReplicaSet is the
old one, is the quota used up) need whole lists; fetching them again on every tool call is
what makes a big namespace slow. The cache belongs to the run: it lives in a ContextVar of
the task running the agent loop (each run is its own task), expires after ``TTL`` seconds as
a backstop, and is cleared by every mutating call. The tools' primary reads (the pods in
get_pods, the object in describe, events) are not cached: the model asked to see them now.

A list the API refuses (403 Forbidden, or a kind the server does not serve) is remembered
as None: "unknown", which the analyzers must not read as "none".
"""

from __future__ import annotations

import asyncio
import time
from contextvars import ContextVar

from agent.kube import Cluster
from agent.protocols import Obj
from budo.errors import ClusterError, Forbidden, NotFound

TTL = 300.0


class RunReads:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.created = time.monotonic()
        self.lists: dict[tuple[str, str | None], list[Obj] | None] = {}
        self.calls = 0  # API list calls made through this cache (for tests and benches)
        self._pending: dict[tuple[str, str | None], asyncio.Future[list[Obj] | None]] = {}

    def expired(self) -> bool:
        return time.monotonic() - self.created > TTL

    def clear(self) -> None:
        self.lists.clear()

    async def list_of(self, kind: str, namespace: str | None = None) -> list[Obj] | None:
        """Every ``kind`` in ``namespace`` (None for cluster-scoped kinds), or None when it
        may not be read. Other errors (the API unreachable) propagate."""
        key = (kind, namespace)
        if key in self.lists:
            return self.lists[key]
        if key in self._pending:  # a concurrent caller is already fetching it
            return await asyncio.shield(self._pending[key])
        future: asyncio.Future[list[Obj] | None] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            self.calls += 1
            try:
                items: list[Obj] | None = await self.cluster.list_of(kind, namespace)
            except (Forbidden, NotFound):
                items = None
            except ClusterError as exc:
                if "forbidden" in str(exc).lower():
                    items = None
                else:
                    raise
            self.lists[key] = items
            future.set_result(items)
            return items
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a failed read must not warn at teardown
            raise
        finally:
            del self._pending[key]

    async def many(self, namespace: str | None, *kinds: str) -> dict[str, list[Obj] | None]:
        """Several lists at once (concurrently, each still once per run)."""
        values = await asyncio.gather(*(self.list_of(k, namespace) for k in kinds))
        return dict(zip(kinds, values, strict=True))


_RUN: ContextVar[RunReads | None] = ContextVar("budo_run_reads", default=None)


def run_reads(cluster: Cluster) -> RunReads:
    """This run's cache for ``cluster`` (a new one at the run's first tool call)."""
    reads = _RUN.get()
    if reads is None or reads.cluster is not cluster or reads.expired():
        reads = RunReads(cluster)
        _RUN.set(reads)
    return reads


def forget_run() -> None:
    """Drop the current context's cache (after a mutation, or between bench repetitions)."""
    _RUN.set(None)
