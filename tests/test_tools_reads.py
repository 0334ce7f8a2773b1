"""The read tools at scale and across kinds, through the real client against the replay API:
what they fetch (field selectors, one list per kind per run), what they state (what changed,
every kind's findings), and that every bundled incident's cause is stated by get_pods."""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from agent.kube import Cluster
from agent.protocols import ToolResult, ToolSpec
from agent.reads import forget_run
from agent.tools import build_toolbox
from scenarios import bundled_scenarios, load_scenario

Replay = Callable[..., Awaitable[Any]]
CHANGE = "PAYMENT_SERVICE_ADDR: paymentservice:50051 → paymetnservce:50051"


class Tools:
    def __init__(self, server: Any, cluster: Cluster) -> None:
        self.server, self.cluster = server, cluster
        self.specs: dict[str, ToolSpec] = {t.name: t for t in build_toolbox(cluster)}

    async def __call__(self, tool: str, /, **args: Any) -> ToolResult:
        result = await self.specs[tool].func(**args)
        assert result.ok, result.error
        return result

    def lists(self, resource: str) -> list[dict[str, list[str]]]:
        """The query of every list request for ``resource`` (e.g. "events") so far."""
        return [urllib.parse.parse_qs(r.query) for r in self.server.requests
                if r.method == "GET" and r.path.endswith(f"/{resource}")]


@pytest.fixture
async def tools(replay: Replay) -> AsyncIterator[Callable[[str | Path], Awaitable[Tools]]]:
    made: list[Cluster] = []

    async def make(scenario: str | Path) -> Tools:
        server = await replay(scenario)
        cluster = Cluster.from_kubeconfig(server.kubeconfig)
        made.append(cluster)
        forget_run()  # each test starts a run of its own
        return Tools(server, cluster)

    yield make
    for cluster in made:
        cluster.close()


# --- what changed -------------------------------------------------------------------------------


async def test_recent_changes_and_describe_state_the_typo_as_old_to_new(tools) -> None:
    typo = await tools("checkout-typo")
    changes = await typo("recent_changes", namespace="shop")
    text = changes.text()
    assert CHANGE in text and re.search(r"revision 1 → 2, 25m ago \(\d{4}-", text), text
    assert any(CHANGE in f for f in changes.findings)
    describe = (await typo("describe", kind="deployment", name="checkoutservice",
                           namespace="shop")).text()
    assert "latest change: deployment checkoutservice revision 1 → 2, 25m ago" in describe
    assert CHANGE in describe
    narrow = (await typo("recent_changes", namespace="shop", since="10m")).text()
    assert CHANGE not in narrow and "no changes recorded" in narrow


async def test_recent_changes_names_config_objects_never_their_values(tools) -> None:
    keys = await tools("missing-secret-key")
    text = (await keys("recent_changes", namespace="shop")).text()
    assert "Secret redis-auth created 17m ago" in text
    assert "keys: redis-password (values not shown)" in text
    assert "c2VjcmV0" not in text  # the value, base64
    assert "container server env REDIS_PASSWORD: <unset> → <secretKeyRef redis-auth/password>" \
        in text


# --- bounded reads --------------------------------------------------------------------------


async def test_events_for_one_object_are_fetched_by_field_selector(tools) -> None:
    typo = await tools("checkout-typo")
    await typo("get_events", namespace="shop", involved_object="checkoutservice")
    await typo("describe", kind="deployment", name="checkoutservice", namespace="shop")
    await typo("get_pods", namespace="shop")
    queries = typo.lists("events")
    assert queries and all("fieldSelector" in q for q in queries), queries
    assert all(q["fieldSelector"][0].startswith(("involvedObject.name=", "reason="))
               for q in queries)


async def test_one_list_per_kind_per_run(tools) -> None:
    typo = await tools("checkout-typo")
    await typo("get_pods", namespace="shop")
    await typo("describe", kind="deployment", name="checkoutservice", namespace="shop")
    await typo("describe", kind="pod", name=typo.server.scenario.pod_for("frontend"),
               namespace="shop")
    assert len(typo.lists("services")) == 1 and len(typo.lists("replicasets")) == 1

    async def another_run() -> None:
        forget_run()
        await typo("get_pods", namespace="shop")

    await asyncio.get_running_loop().create_task(another_run())
    assert len(typo.lists("services")) == 2  # a new run reads afresh


LARGE = """
name: large
title: a namespace of 90 pods with three failing workloads
extends: _shop
now: "2025-03-14T10:30:00Z"
question: what is failing?
workloads:
  - {name: worker, replicas: 60, image: "registry.example/worker:1", ports: [8080]}
  - {name: api, replicas: 8, image: "registry.example/api:1", ports: [8080], state: crashloop,
     reason: Error, exitCode: 1}
  - {name: puller, replicas: 5, image: "registry.example/puller:v9", ports: [8080],
     state: waiting, reason: ImagePullBackOff, message: 'Back-off pulling image "x"'}
  - {name: batch, replicas: 3, image: "registry.example/batch:1", ports: [8080],
     state: pending, message: "0/3 nodes are available: 3 Insufficient memory."}
  - {name: gate, replicas: 4, image: "registry.example/gate:1", ports: [8080], ready: false}
logs:
  shop/chatty/server: ""
expect: {root_cause: [api]}
script:
  - answer: "ROOT CAUSE: api"
"""


async def test_get_pods_in_a_large_namespace_puts_every_unhealthy_pod_first(
        tools, tmp_path: Path) -> None:
    path = tmp_path / "large.yaml"
    path.write_text(LARGE.replace("logs:\n  shop/chatty/server: \"\"\n", ""))
    big = await tools(path)
    result = await big("get_pods", namespace="shop")
    head = result.output.splitlines()
    assert head[0] == "namespace shop: 92 pods, 20 unhealthy (marked !, listed first)"
    assert head[1] == ("unhealthy by status (worst first): CrashLoopBackOff 8, "
                       "ImagePullBackOff 5, Pending 3, Running (not Ready) 4")
    assert "deployment gate: 4 Running (not Ready)" in result.output
    assert "healthy (Running and Ready) by workload: deployment worker 60" in result.output
    assert sum(1 for line in head if line.startswith("!")) == 4  # one example per group
    findings = "\n".join(result.findings)
    assert "8 pods of deployment api are CrashLoopBackOff" in findings
    assert "5 pods of deployment puller are ImagePullBackOff" in findings
    assert "Insufficient memory" in findings
    assert len(result.text()) < 8000


SPARSE = """
name: sparse
title: one error in a busy log
extends: _shop
now: "2025-03-14T10:30:00Z"
question: why?
logs:
  shop/frontend/server:
    - {repeat: 30000, step: 1s, end: -1s, lines: ['{"message":"request complete","n":{i}}']}
    - "2025-03-14T05:30:00.100Z missing setting LEDGER_URL, falling back to defaults"
    - "2025-03-14T05:30:00.200Z ERROR ledger client failed: no endpoint configured"
expect: {root_cause: [x]}
script:
  - answer: "ROOT CAUSE: x"
"""


async def test_grep_searches_far_beyond_the_tail_with_context(tools, tmp_path: Path) -> None:
    path = tmp_path / "sparse.yaml"
    path.write_text(SPARSE)
    sparse = await tools(path)
    frontend = sparse.server.scenario.pod_for("frontend")
    plain = (await sparse("logs", namespace="shop", pod=frontend, tail=1000)).text()
    assert "ERROR ledger" not in plain  # 30,000 lines: the tail cap never reaches it
    found = (await sparse("logs", namespace="shop", pod=frontend, grep="error",
                          context=1)).text()
    assert found.splitlines()[0].startswith("1 of 30002 lines matched /error/")
    assert "missing setting LEDGER_URL" in found  # the line above says why


# --- describe every kind -----------------------------------------------------------------------


async def test_describe_covers_the_kinds_the_analyzers_read(tools) -> None:
    ingress = await tools("ingress-backend-missing")
    text = (await ingress("describe", kind="ingress", name="shop", namespace="shop")).text()
    assert "shop.example.com/ -> frontend-svc:80" in text
    assert "FINDINGS: Ingress shop shop.example.com/ routes to Service 'frontend-svc'" in text
    hpa = await tools("hpa-maxed")
    text = (await hpa("describe", kind="hpa", name="frontend", namespace="shop")).text()
    assert "replicas 1..3; current 3" in text and "maxReplicas (3/3)" in text
    pvc = await tools("pvc-storageclass")
    text = (await pvc("describe", kind="pvc", name="redis-data", namespace="shop")).text()
    assert "StorageClass 'premium-rwo-ssd' does not exist" in text
    assert "ProvisioningFailed" in text
    sc = (await pvc("describe", kind="storageclass", name="standard-rwo")).text()
    assert "binding WaitForFirstConsumer" in sc and "default True" in sc
    cron = await tools("cronjob-failing")
    text = (await cron("describe", kind="cronjob", name="order-export", namespace="shop")).text()
    assert "schedule '0 2 * * *'" in text and "BackoffLimitExceeded" in text
    netpol = await tools("netpol-blocks-redis")
    text = (await netpol("describe", kind="netpol", name="redis-cart-ingress",
                         namespace="shop")).text()
    assert "ingress from pods app=cart-service ports 6379/TCP" in text
    assert "admits no ingress from deployment cartservice" in text
    quota = await tools("quota-exhausted")
    text = (await quota("describe", kind="quota", name="shop-quota", namespace="shop")).text()
    assert "limits.memory: used 3584Mi of 4Gi" in text
    limits = await tools("limitrange-max")
    text = (await limits("describe", kind="limitrange", name="shop-limits",
                         namespace="shop")).text()
    assert "memory limit 3Gi is above LimitRange shop-limits max 2Gi" in text


async def test_describe_secret_shows_type_and_keys_never_values(tools) -> None:
    keys = await tools("missing-secret-key")
    text = (await keys("describe", kind="secret", name="redis-auth", namespace="shop")).text()
    assert "type Opaque" in text and "keys (1; values never shown): redis-password" in text
    assert "c2VjcmV0LXJlZGlzLXB3" not in text and "bytes" not in text


# --- the library: every incident's cause stated by the first call --------------------------


UNSEEN = sorted(str(p) for p in (Path(__file__).parent / "data" / "unseen").glob("*.yaml"))


@pytest.mark.parametrize("name", [*bundled_scenarios(), *UNSEEN])
async def test_get_pods_states_every_bundled_incidents_cause(tools, name: str) -> None:
    """The fixed sweep's first call. (bench/context.py runs the whole sweep and reports which
    call first states each cause; this keeps the library from regressing.) tests/data/unseen
    holds incidents written after the analyzers, of classes they were not written for."""
    incident = await tools(name)
    scenario = load_scenario(name)
    findings = "\n".join((await incident("get_pods", namespace=scenario.namespace)).findings)
    missing = [p for p in scenario.expect_root_cause if not re.search(p, findings, re.I)]
    assert not missing, f"{name}: {missing}\n{findings}"
