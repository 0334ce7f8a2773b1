"""The toolbox through the real kubernetes client against the replay API server (127.0.0.1)."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from agent.context import ContextBudget
from agent.kube import Cluster
from agent.prompts import SYSTEM_PROMPT, first_user_message
from agent.protocols import Preview, ToolResult, ToolSpec
from agent.tools import build_toolbox
from budo import wiring
from budo.config import Settings
from budo.errors import ClusterUnreachable

LAB = str(Path(__file__).parent / "data" / "tools-lab.yaml")

Replay = Callable[..., Awaitable[Any]]


class Tools:
    """The toolbox by name, plus the server it talks to."""

    def __init__(self, server: Any, cluster: Cluster) -> None:
        self.server, self.cluster = server, cluster
        self.specs: dict[str, ToolSpec] = {t.name: t for t in build_toolbox(cluster)}

    async def __call__(self, tool: str, /, **args: Any) -> ToolResult:
        return await self.specs[tool].func(**args)

    def pod(self, workload: str) -> str:
        name = self.server.scenario.pod_for(workload, "shop")
        assert name, workload
        return str(name)


@pytest.fixture
async def typo(replay: Replay) -> AsyncIterator[Tools]:
    server = await replay("checkout-typo")
    cluster = Cluster.from_kubeconfig(server.kubeconfig)
    yield Tools(server, cluster)
    cluster.close()


@pytest.fixture
async def lab(replay: Replay) -> AsyncIterator[Tools]:
    server = await replay(LAB)
    cluster = Cluster.from_kubeconfig(server.kubeconfig)
    yield Tools(server, cluster)
    cluster.close()


def ok(result: ToolResult) -> str:
    assert result.ok, result.error
    return result.text()


# --- checkout-typo ---------------------------------------------------------------------------


async def test_toolbox_names_parameters_and_mutating_flag(typo: Tools) -> None:
    specs = typo.specs
    assert list(specs) == ["list_namespaces", "get_pods", "get_events", "describe",
                           "recent_changes", "logs", "delete_pod", "rollout_restart",
                           "rollout_undo", "scale", "set_env"]
    assert [n for n, s in specs.items() if s.mutating] == [
        "delete_pod", "rollout_restart", "rollout_undo", "scale", "set_env"]
    assert set(specs["logs"].parameters["properties"]) == {
        "namespace", "pod", "container", "tail", "previous", "since", "grep", "context"}
    for spec in specs.values():
        assert spec.schema()["function"]["description"]


async def test_the_first_request_leaves_a_small_window_room_to_investigate(typo: Tools) -> None:
    """The system prompt, the question and every schema are paid on every request: on a
    4096-token server they must leave most of what the budget keeps for the prompt (~3.4k)."""
    schemas = [spec.schema() for spec in typo.specs.values()]
    first = [{"role": "system", "content": SYSTEM_PROMPT},
             {"role": "user", "content": first_user_message("checkout is failing", "shop")}]
    assert ContextBudget(4096).estimate(first, schemas) < 2500
    # The method names the tools it relies on, and only tools that exist.
    named = set(re.findall(r"\b[a-z]+_[a-z_]+\b", SYSTEM_PROMPT))
    assert "recent_changes" in named and named <= set(typo.specs)
    assert "`context`" in SYSTEM_PROMPT and "context" in typo.specs["logs"].parameters[
        "properties"]


async def test_list_namespaces(typo: Tools) -> None:
    text = ok(await typo("list_namespaces"))
    assert "shop" in text and "kube-system" in text


async def test_get_pods_table_has_the_columns_and_all_pods(typo: Tools) -> None:
    text = ok(await typo("get_pods", namespace="shop"))
    header = next(line for line in text.splitlines() if "NAME" in line)
    assert header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "NODE"]
    for name in typo.server.scenario.pod_names("shop"):
        assert name in text
    assert "12 pods, 0 unhealthy" in text
    assert "1/1" in text and "Running" in text


async def test_get_events_warnings_first_and_duplicates_folded(typo: Tools) -> None:
    text = ok(await typo("get_events", namespace="shop"))
    rows = [line for line in text.splitlines() if re.match(r"^\S+\s+(Warning|Normal)\s", line)]
    kinds = [row.split()[1] for row in rows]
    assert kinds == sorted(kinds, key=lambda k: k != "Warning")
    assert "x3" in text  # the loadgenerator BackOff event has count 3
    only = ok(await typo("get_events", namespace="shop", involved_object="checkoutservice"))
    assert "ScalingReplicaSet" in only and "loadgenerator" not in only


async def test_describe_deployment_shows_the_typo_and_names_the_service(typo: Tools) -> None:
    result = await typo("describe", kind="deployment", name="checkoutservice", namespace="shop")
    text = ok(result)
    assert "PAYMENT_SERVICE_ADDR=paymetnservce:50051" in text
    assert any("paymetnservce" in f and "'paymentservice'" in f for f in result.findings)
    assert "FINDINGS:" in text
    assert "image" in text and "readiness: grpc :5050" in text


async def test_describe_service_pod_and_node(typo: Tools) -> None:
    svc = ok(await typo("describe", kind="svc", name="paymentservice", namespace="shop"))
    assert "selector: app=paymentservice" in svc and typo.pod("paymentservice") in svc
    pod = ok(await typo("describe", kind="pod", name=typo.pod("checkoutservice"),
                        namespace="shop"))
    assert "owner: ReplicaSet/" in pod and "PAYMENT_SERVICE_ADDR" in pod
    nodes = typo.server.scenario.of_kind("Node")
    node = ok(await typo("describe", kind="node", name=nodes[0]["metadata"]["name"]))
    assert "Ready=True" in node and "capacity" in node


async def test_describe_rejects_unknown_kind_and_missing_namespace(typo: Tools) -> None:
    bad = await typo("describe", kind="widget", name="x", namespace="shop")
    assert not bad.ok and "pod, deployment" in (bad.error or "")
    # A kind the catalogue (agent/kinds.py) reads but describe has no view of: refused alike.
    unviewed = await typo("describe", kind="endpoints", name="frontend", namespace="shop")
    assert not unviewed.ok and "unknown kind 'endpoints'" in (unviewed.error or "")
    missing = await typo("describe", kind="deployment", name="checkoutservice")
    assert not missing.ok and "namespace is required" in (missing.error or "")


async def test_logs_tail_grep_and_no_match(typo: Tools) -> None:
    frontend = typo.pod("frontend")
    tail = ok(await typo("logs", namespace="shop", pod=frontend, tail=5))
    assert len(tail.splitlines()) == 6  # header + 5 lines
    grep = ok(await typo("logs", namespace="shop", pod=frontend, grep="ERROR", context=0))
    first = grep.splitlines()[0]
    assert re.match(r"^\d+ of \d+ lines matched /ERROR/", first), first
    assert "paymetnservce" in grep and "_healthz" not in grep
    # with context (like grep -C 1) the line before each match comes too: the request
    # that failed
    around = ok(await typo("logs", namespace="shop", pod=frontend, grep="request error",
                           context=1))
    # the same error 8 times: counted once as a template, shown once (the newest) in context
    assert re.search(r"^  x8 first \S+ last \S+: \{\"error\"", around, re.M), around
    assert around.count('"message":"request error"') == 1  # one block (the template is cut)
    assert '"request started"' in around.split("blocks separated by --:")[1]
    none = ok(await typo("logs", namespace="shop", pod=frontend, grep="no-such-thing-xyz"))
    assert "no lines matched /no-such-thing-xyz/" in none


async def test_logs_validation_errors_are_clean(typo: Tools) -> None:
    frontend = typo.pod("frontend")
    since = await typo("logs", namespace="shop", pod=frontend, since="5 minutes")
    assert not since.ok and "30s, 15m or 2h" in (since.error or "")
    regex = await typo("logs", namespace="shop", pod=frontend, grep="(unclosed")
    assert not regex.ok and "not a valid regular expression" in (regex.error or "")
    container = await typo("logs", namespace="shop", pod=frontend, container="sidecar")
    assert not container.ok and "its containers: server" in (container.error or "")
    previous = await typo("logs", namespace="shop", pod=frontend, previous=True)
    assert not previous.ok and "no previous" in (previous.error or "")
    short = ok(await typo("logs", namespace="shop", pod=frontend, since="1m"))
    assert "within 1m" in short.splitlines()[0]


async def test_logs_accepts_a_deployment_name(typo: Tools) -> None:
    text = ok(await typo("logs", namespace="shop", pod="checkoutservice", tail=3))
    assert f"resolved to its first pod {typo.pod('checkoutservice')}" in text


async def test_argument_validation(typo: Tools) -> None:
    missing = await typo("get_pods")
    assert not missing.ok and "missing required argument(s) namespace" in (missing.error or "")
    extra = await typo("get_pods", namespace="shop", verbose=True)
    assert not extra.ok and "unknown argument(s) verbose" in (extra.error or "")
    wrong = await typo("logs", namespace="shop", pod="x", tail="lots")
    assert not wrong.ok and "tail must be a whole number" in (wrong.error or "")
    coerced = ok(await typo("logs", namespace="shop", pod=typo.pod("frontend"), tail="2"))
    assert "last 2 lines" in coerced


async def test_not_found_is_an_actionable_tool_error(typo: Tools) -> None:
    result = await typo("logs", namespace="shop", pod="nope-123")
    assert not result.ok
    assert result.error == "pod 'nope-123' not found in namespace 'shop' — list pods with get_pods"
    described = await typo("describe", kind="pod", name="nope-123", namespace="shop")
    assert not described.ok and "list pods with get_pods" in (described.error or "")


async def test_delete_pod_deletes_through_the_tool(typo: Tools) -> None:
    victim = typo.pod("checkoutservice")
    preview = await typo.specs["delete_pod"].preview(namespace="shop", pod=victim)
    assert isinstance(preview, Preview) and preview.binding["uid"]
    text = ok(await typo("delete_pod", namespace="shop", pod=victim, approved=preview))
    assert f"deleted pod {victim}" in text and "ReplicaSet/" in text
    assert victim in str(typo.server.deletions)
    delete = [r for r in typo.server.requests if r.method == "DELETE"]
    assert [r.path for r in delete] == [f"/api/v1/namespaces/shop/pods/{victim}"]


async def test_delete_pod_refuses_a_pod_replaced_since_the_approval(typo: Tools) -> None:
    # A StatefulSet pod comes back under the same name with a new uid: an approval given for
    # the old pod must not delete the new one (DeleteOptions.preconditions.uid → 409).
    name = typo.pod("checkoutservice")
    preview = await typo.specs["delete_pod"].preview(namespace="shop", pod=name)
    assert isinstance(preview, Preview)
    pod = typo.server.state.find("Pod", "shop", name)
    pod["metadata"]["uid"] = "0d3c2f7e-1111-4222-8333-944455556666"   # recreated meanwhile
    result = await typo("delete_pod", namespace="shop", pod=name, approved=preview)
    assert not result.ok and "was replaced since the approval" in (result.error or "")
    assert "NOT deleted" in (result.error or "")
    assert typo.server.deletions == [] and typo.server.state.find("Pod", "shop", name)
    assert [r.method for r in typo.server.requests].count("DELETE") == 1  # asked, refused


async def test_delete_pod_without_an_approved_preview_does_nothing(typo: Tools) -> None:
    result = await typo("delete_pod", namespace="shop", pod=typo.pod("checkoutservice"))
    assert not result.ok and "NOT performed" in (result.error or "")
    assert not [r for r in typo.server.requests if r.method == "DELETE"]


# --- API failures ------------------------------------------------------------------------------


async def test_forbidden_namespace_from_rbac(replay: Replay) -> None:
    server = await replay("checkout-typo")
    server.faults.forbidden_namespaces.add("shop")
    cluster = Cluster.from_kubeconfig(server.kubeconfig)
    result = await build_toolbox(cluster)[1].func(namespace="shop")
    cluster.close()
    assert not result.ok and "denied (403)" in (result.error or "")


async def test_budo_namespaces_restriction(replay: Replay) -> None:
    server = await replay("checkout-typo")
    cluster = Cluster.from_kubeconfig(server.kubeconfig, namespaces=("shop",))
    tools = {t.name: t for t in build_toolbox(cluster)}
    outside = await tools["get_pods"].func(namespace="kube-system")
    assert not outside.ok
    assert "allowed namespaces: shop" in (outside.error or "")
    listed = ok(await tools["list_namespaces"].func())
    assert "shop" in listed and "kube-system" not in listed
    cluster.close()


async def test_refused_connection_is_a_tool_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\n")
    cluster = Cluster.from_kubeconfig(str(kubeconfig), request_timeout=2)
    result = await build_toolbox(cluster)[1].func(namespace="shop")
    assert not result.ok and "cannot reach the Kubernetes API" in (result.error or "")
    assert "connection refused" in (result.error or "")


def test_missing_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ClusterUnreachable, match="not found"):
        Cluster.from_kubeconfig(str(tmp_path / "missing"))
    settings = Settings(kubeconfig=str(tmp_path / "missing"))
    with pytest.raises(ClusterUnreachable):
        wiring.cluster(settings)


async def test_server_error_and_timeout_are_tool_errors(replay: Replay) -> None:
    server = await replay("checkout-typo")
    cluster = Cluster.from_kubeconfig(server.kubeconfig, request_timeout=0.3)
    get_pods = build_toolbox(cluster)[1].func
    server.faults.error_status = 500
    failed = await get_pods(namespace="shop")
    assert not failed.ok and "failed (500)" in (failed.error or "")
    server.faults.clear()
    server.faults.delay = 0.6
    slow = await get_pods(namespace="shop")
    assert not slow.ok and "did not answer within 0.3s" in (slow.error or "")
    server.faults.clear()
    assert (await get_pods(namespace="shop")).ok
    cluster.close()


# --- the lab: one of every finding, and secrets ----------------------------------------------


async def test_get_pods_surfaces_every_pod_level_finding(lab: Tools) -> None:
    result = await lab("get_pods", namespace="shop")
    findings = "\n".join(result.findings)
    expected = {
        "crashy": r"CrashLoopBackOff: last exit code 2 \(Error\).* — the application "
                  r"reported a usage or configuration error, 4 restarts",
        "oomy": r"OOMKilled \(exit code 137\); memory limit 64Mi",
        "stuck": r"Pending \(Unschedulable\): 0/3 nodes are available: 3 Insufficient cpu",
        "puller": r"cannot pull image 'registry.example/puller:v9-missing' \(ImagePullBackOff\)",
        "unready": r"Running but not Ready; readinessProbe httpGet :8080/healthz; last: "
                   r"Readiness probe failed: HTTP probe failed with statuscode: 503",
        "configerr": r'CreateContainerConfigError: configmap "configerr-settings" not found',
    }
    for workload, pattern in expected.items():
        assert re.search(rf"pod {lab.pod(workload)} .*{pattern}", findings), workload
    table = result.output
    for workload in expected:
        row = next(line for line in table.splitlines() if lab.pod(workload) in line)
        assert row.startswith("!"), row
    assert not next(line for line in table.splitlines()
                    if lab.pod("frontend") in line).startswith("!")
    assert "FINDINGS: pod" in result.text()


async def test_describe_service_with_zero_endpoints_names_the_near_miss(lab: Tools) -> None:
    result = await lab("describe", kind="service", name="ledger", namespace="shop")
    text = ok(result)
    assert "endpoints ready: <none>" in text
    [finding] = result.findings
    assert "Service ledger has 0 ready endpoints; selector app=ledger" in finding
    assert f"pod {lab.pod('ledger')} has app=ledgr" in finding


async def test_describe_configmap_shows_keys_never_values(lab: Tools) -> None:
    text = ok(await lab("describe", kind="configmap", name="billing-config", namespace="shop"))
    assert "LOG_LEVEL" in text and "FEATURE_FLAGS" in text
    assert "zebra-value-42" not in text and "checkout=on" not in text


async def test_env_secrets_are_references_or_redacted(lab: Tools) -> None:
    result = await lab("describe", kind="deployment", name="billing", namespace="shop")
    text = ok(result)
    assert "API_TOKEN=<secretKeyRef billing-secrets/api-token>" in text
    assert "hunter2-literal" not in text
    assert "DB_PASSWORD=[REDACTED:password]" in text
    assert result.redactions >= 1 and "password" in result.redaction_kinds
    # the typo host gets a closest-Service finding; the in-cluster FQDN resolves to Service
    # ledger, which exists but selects no pod
    assert any("PAYMENT_HOST=paymentservise" in f and "'paymentservice'" in f
               for f in result.findings)
    [ledger] = [f for f in result.findings if "LEDGER_URL" in f]
    assert "Service 'ledger' has 0 ready endpoints (selector app=ledger)" in ledger


async def test_secret_in_logs_is_redacted_with_count(lab: Tools) -> None:
    result = await lab("logs", namespace="shop", pod=lab.pod("billing"), container="server")
    text = ok(result)
    assert "sk-live-4f9a8b7c6d5e9f00" not in text
    assert "Authorization: Bearer [REDACTED:bearer]" in text
    assert "token bucket refilled" in text
    assert result.redactions == 1 and result.redaction_kinds == ["bearer"]


async def test_multi_container_pod_needs_a_container(lab: Tools) -> None:
    result = await lab("logs", namespace="shop", pod=lab.pod("billing"))
    assert not result.ok
    assert result.error == (f"logs: pod {lab.pod('billing')} has 2 containers (server, proxy); "
                            "pass container=")
    proxy = ok(await lab("logs", namespace="shop", pod=lab.pod("billing"), container="proxy"))
    assert "envoy ready" in proxy


async def test_previous_logs_of_a_crashing_container(lab: Tools) -> None:
    text = ok(await lab("logs", namespace="shop", pod=lab.pod("crashy"), previous=True,
                        grep="panic"))
    assert text.splitlines()[0].startswith("1 of 2 lines matched /panic/")
    assert "settings.json missing" in text
