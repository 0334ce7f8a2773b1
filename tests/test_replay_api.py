"""The replay API server through the official kubernetes client and a written kubeconfig."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, config
from kubernetes.client import ApiException

from scenarios.replay import ReplayServer

FRONTEND = "frontend-s58x6nq864-p22sv"
CHECKOUT = "checkoutservice-5fsbm7q4qr-gdmnl"

SIDECAR = """
name: sidecar
title: cartservice crashes next to a sidecar
extends: _shop
now: "2025-03-14T10:30:00Z"
question: why is the cart broken?
workloads:
  - name: cartservice
    state: crashloop
    reason: Error
    exitCode: 139
    restarts: 7
    containers: [{name: istio-proxy, image: "istio/proxyv2:1.20.3"}]
logs:
  shop/cartservice/server:
    previous: |
      2025-03-14T10:20:00Z starting cartservice
      2025-03-14T10:27:00Z Connecting to Redis: redis-cart:6379
      2025-03-14T10:29:00Z Unhandled exception. StackExchange.Redis.RedisConnectionException
      2025-03-14T10:29:01Z    at cartservice.cartstore.RedisCartStore.EnsureRedisConnected()
expect: {root_cause: [cartservice]}
script:
  - answer: "ROOT CAUSE: cartservice crashes"
"""


def apis(server: ReplayServer) -> tuple[client.CoreV1Api, client.AppsV1Api]:
    api_client = config.new_client_from_config(config_file=str(server.kubeconfig))
    return client.CoreV1Api(api_client), client.AppsV1Api(api_client)


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The kubernetes client is blocking: run it off the event loop the server runs on."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def api_error(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> ApiException:
    with pytest.raises(ApiException) as info:
        await call(fn, *args, **kwargs)
    return info.value


async def test_list_pods_with_equality_and_set_based_label_selectors(replay) -> None:
    server = await replay("checkout-typo")
    core, _ = apis(server)

    async def names(selector: str, ns: str | None = "shop") -> set[str]:
        if ns is None:
            pods = await call(core.list_pod_for_all_namespaces, label_selector=selector)
        else:
            pods = await call(core.list_namespaced_pod, ns, label_selector=selector)
        return {p.metadata.name.rsplit("-", 2)[0] for p in pods.items}

    assert await names("app=frontend") == {"frontend"}
    assert await names("app==checkoutservice") == {"checkoutservice"}
    assert await names("app in (frontend, paymentservice)") == {"frontend", "paymentservice"}
    everything = await names("")
    assert len(everything) == 12
    assert await names("app notin (frontend,paymentservice)") == everything - {
        "frontend", "paymentservice"}
    assert await names("app!=frontend") == everything - {"frontend"}
    assert await names("k8s-app", ns=None) == {"coredns"}
    assert await names("!k8s-app", ns=None) == everything
    assert await names("app=frontend,pod-template-hash") == {"frontend"}
    error = await api_error(core.list_namespaced_pod, "shop", label_selector="app in ()")
    assert error.status == 400 and "unable to parse requirement" in error.body


async def test_list_items_carry_kind_and_api_version(replay) -> None:
    server = await replay("checkout-typo")
    core, _ = apis(server)
    raw = await call(core.list_namespaced_pod, "shop", _preload_content=False)
    import json

    body = json.loads(raw.data)
    assert body["kind"] == "PodList" and body["apiVersion"] == "v1"
    assert body["metadata"]["resourceVersion"]
    assert all(item["kind"] == "Pod" and item["apiVersion"] == "v1" for item in body["items"])


async def test_events_with_field_selectors(replay) -> None:
    server = await replay("checkout-typo")
    core, _ = apis(server)
    warnings = await call(core.list_namespaced_event, "shop", field_selector="type=Warning")
    assert {e.reason for e in warnings.items} == {"BackOff", "Unhealthy"}
    about = await call(core.list_namespaced_event, "shop",
                       field_selector=f"involvedObject.name={CHECKOUT},involvedObject.kind=Pod")
    assert {e.reason for e in about.items} == {"Scheduled", "Pulled", "Started"}
    # Times are shifted so the incident happens now: the rollout was ~25 minutes ago.
    latest = max(e.last_timestamp for e in about.items)
    assert 24 * 60 <= time.time() - latest.timestamp() <= 26 * 60
    by_name = await call(core.list_event_for_all_namespaces,
                         field_selector="metadata.namespace=shop,reason=BackOff")
    assert len(by_name.items) == 1
    error = await api_error(core.list_namespaced_event, "shop", field_selector="spec.bogus=1")
    assert error.status == 400 and "field label not supported" in error.body


async def test_read_every_kind(replay) -> None:
    server = await replay("checkout-typo")
    core, apps = apis(server)
    pod = await call(core.read_namespaced_pod, FRONTEND, "shop")
    assert pod.status.phase == "Running" and pod.status.container_statuses[0].ready
    assert pod.status.conditions and pod.spec.node_name and pod.status.pod_ip
    deployment = await call(apps.read_namespaced_deployment, "checkoutservice", "shop")
    env = {e.name: e.value for e in deployment.spec.template.spec.containers[0].env}
    assert env["PAYMENT_SERVICE_ADDR"] == "paymetnservce:50051"
    assert deployment.status.ready_replicas == 1
    rs = await call(apps.list_namespaced_replica_set, "shop", label_selector="app=frontend")
    assert rs.items[0].metadata.owner_references[0].name == "frontend"
    service = await call(core.read_namespaced_service, "frontend", "shop")
    assert service.spec.ports[0].port == 80 and service.spec.ports[0].target_port == 8080
    endpoints = await call(core.read_namespaced_endpoints, "paymentservice", "shop")
    assert endpoints.subsets[0].addresses[0].target_ref.name.startswith("paymentservice-")
    configmap = await call(core.read_namespaced_config_map, "coredns", "kube-system")
    assert "forward . /etc/resolv.conf" in configmap.data["Corefile"]
    nodes = await call(core.list_node)
    assert len(nodes.items) == 3 and nodes.items[0].status.conditions
    namespaces = await call(core.list_namespace)
    assert {n.metadata.name for n in namespaces.items} >= {"default", "kube-system", "shop"}
    assert (await call(core.read_namespace, "shop")).status.phase == "Active"
    sets = await call(apps.list_stateful_set_for_all_namespaces)
    assert sets.items == []
    secrets = await call(core.list_namespaced_secret, "shop")
    assert secrets.kind == "SecretList"
    version = await call(client.VersionApi(core.api_client).get_code)
    assert version.git_version.startswith("v1.")


async def test_logs_options(replay) -> None:
    server = await replay("checkout-typo")
    core, _ = apis(server)
    text = await call(core.read_namespaced_pod_log, FRONTEND, "shop")
    assert text.count("\n") > 200 and not text.startswith("20")  # kubelet stamps stripped
    tail = await call(core.read_namespaced_pod_log, FRONTEND, "shop", tail_lines=3,
                      timestamps=True)
    lines = tail.splitlines()
    assert len(lines) == 3 and all(line[:4].isdigit() and "Z {" in line for line in lines)
    recent = await call(core.read_namespaced_pod_log, FRONTEND, "shop", since_seconds=60)
    assert 0 < recent.count("\n") < 20
    assert "paymetnservce" in await call(core.read_namespaced_pod_log, FRONTEND, "shop",
                                         container="server", since_seconds=3600)


async def test_previous_logs_and_container_errors(replay, tmp_path: Path) -> None:
    path = tmp_path / "sidecar.yaml"
    path.write_text(SIDECAR)
    server = await replay(path)
    core, _ = apis(server)
    pod = server.scenario.pod_for("cartservice")
    previous = await call(core.read_namespaced_pod_log, pod, "shop", container="server",
                          previous=True, tail_lines=2)
    assert previous.splitlines() == [
        "Unhandled exception. StackExchange.Redis.RedisConnectionException",
        "   at cartservice.cartstore.RedisCartStore.EnsureRedisConnected()"]
    since = await call(core.read_namespaced_pod_log, pod, "shop", container="server",
                       previous=True, since_seconds=5 * 60)
    assert since.splitlines()[0].startswith("Connecting to Redis")
    missing = await api_error(core.read_namespaced_pod_log, pod, "shop")
    assert missing.status == 400
    assert (f"a container name must be specified for pod {pod}, choose one of: "
            "[server istio-proxy]") in missing.body
    wrong = await api_error(core.read_namespaced_pod_log, pod, "shop", container="redis")
    assert wrong.status == 400 and f"container redis is not valid for pod {pod}" in wrong.body
    none = await api_error(core.read_namespaced_pod_log, pod, "shop", container="istio-proxy",
                           previous=True)
    assert none.status == 400
    assert f'previous terminated container \\"istio-proxy\\" in pod \\"{pod}\\" not found' \
        in none.body
    status = (await call(core.read_namespaced_pod, pod, "shop")).status.container_statuses[0]
    assert status.state.waiting.reason == "CrashLoopBackOff" and status.restart_count == 7
    assert status.last_state.terminated.exit_code == 139


async def test_a_server_never_changes_its_scenario(replay) -> None:
    """Tests share loaded scenarios (tests/fixtures/cluster.py): serving, shifting times and
    deleting pods must all happen on the server's own copy."""
    from scenarios import load_scenario

    scenario = load_scenario("checkout-typo")
    snapshot = copy.deepcopy((scenario.objects, scenario.logs))
    server = await replay(scenario)
    core, _ = apis(server)
    await call(core.delete_namespaced_pod, CHECKOUT, "shop")
    await call(core.list_namespaced_pod, "shop")
    assert (scenario.objects, scenario.logs) == snapshot
    assert server.state.objects is not scenario.objects


async def test_delete_pod_brings_a_replacement_with_a_new_name(replay) -> None:
    server = await replay("checkout-typo")
    core, _ = apis(server)
    before = time.time()
    await call(core.delete_namespaced_pod, CHECKOUT, "shop")
    assert [(d.namespace, d.name) for d in server.deletions] == [("shop", CHECKOUT)]
    assert server.deletions[0].at >= before and "python" in server.deletions[0].user_agent
    pods = await call(core.list_namespaced_pod, "shop", label_selector="app=checkoutservice")
    (fresh,) = pods.items
    assert fresh.metadata.name != CHECKOUT and fresh.metadata.name.startswith(
        "checkoutservice-5fsbm7q4qr-")
    assert fresh.status.phase == "Running" and fresh.status.container_statuses[0].restart_count \
        == 0
    assert time.time() - fresh.status.start_time.timestamp() < 5
    env = {e.name: e.value for e in fresh.spec.containers[0].env}
    assert env["PAYMENT_SERVICE_ADDR"] == "paymetnservce:50051"  # the template is unchanged
    gone = await api_error(core.read_namespaced_pod, CHECKOUT, "shop")
    assert gone.status == 404
    endpoints = await call(core.read_namespaced_endpoints, "checkoutservice", "shop")
    assert endpoints.subsets[0].addresses[0].target_ref.name == fresh.metadata.name


async def test_not_found_and_forbidden_are_status_objects(replay) -> None:
    server = await replay("checkout-typo")
    core, apps = apis(server)
    missing = await api_error(apps.read_namespaced_deployment, "nope", "shop")
    assert missing.status == 404 and '"reason": "NotFound"' in missing.body
    assert 'deployments.apps \\"nope\\" not found' in missing.body
    server.faults.forbidden_namespaces.add("kube-system")
    denied = await api_error(core.list_namespaced_pod, "kube-system")
    assert denied.status == 403 and '"reason": "Forbidden"' in denied.body
    assert 'cannot list resource \\"pods\\"' in denied.body
    cluster_wide = await api_error(core.list_pod_for_all_namespaces)
    assert cluster_wide.status == 403 and "at the cluster scope" in cluster_wide.body
    assert (await call(core.list_namespaced_pod, "shop")).items  # others still allowed


async def test_500_and_slow_faults(replay) -> None:
    server = await replay("checkout-typo")
    core, _ = apis(server)
    server.faults.error_status = 500
    error = await api_error(core.list_namespaced_pod, "shop")
    assert error.status == 500 and '"reason": "InternalError"' in error.body
    server.faults.error_status, server.faults.error_paths = 500, ["/log"]
    assert (await call(core.list_namespaced_pod, "shop")).items
    assert (await api_error(core.read_namespaced_pod_log, FRONTEND, "shop")).status == 500
    server.faults.clear()
    server.faults.delay = 0.4
    with pytest.raises(urllib3.exceptions.MaxRetryError) as info:  # after the client's retries
        await call(core.list_namespaced_pod, "shop", _request_timeout=0.1)
    assert isinstance(info.value.reason, urllib3.exceptions.ReadTimeoutError)
    started = time.monotonic()
    assert (await call(core.list_namespaced_pod, "shop")).items
    assert time.monotonic() - started >= 0.4


async def test_refused_and_dropped_connections(replay) -> None:
    server = await replay("checkout-typo")
    core, _ = apis(server)
    core.api_client.configuration.retries = 0
    await server.refuse_connections()
    with pytest.raises(urllib3.exceptions.MaxRetryError) as info:
        await call(core.list_namespaced_pod, "shop", _request_timeout=2)
    assert isinstance(info.value.reason, urllib3.exceptions.NewConnectionError)
    await server.accept_connections()
    assert (await call(core.list_namespaced_pod, "shop")).items
    server.faults.drop_connections = True
    with pytest.raises(urllib3.exceptions.HTTPError):
        await call(core.list_namespaced_pod, "shop", _request_timeout=2)


async def test_discovery_and_unknown_paths(replay) -> None:
    server = await replay("checkout-typo")
    core, _ = apis(server)
    groups = await call(client.ApisApi(core.api_client).get_api_versions)
    assert {g.name for g in groups.groups} >= {"apps", "events.k8s.io"}
    resources = await call(client.AppsV1Api(core.api_client).get_api_resources)
    assert {"deployments", "replicasets", "statefulsets"} <= {r.name for r in
                                                             resources.resources}
    core_resources = await call(core.get_api_resources)
    assert "pods/log" in {r.name for r in core_resources.resources}
    events_v1 = await call(client.EventsV1Api(core.api_client).list_namespaced_event, "shop",
                           field_selector="type=Warning")
    assert {e.reason for e in events_v1.items} == {"BackOff", "Unhealthy"}
    assert events_v1.items[0].regarding.name


async def test_fixture_accepts_a_scenario_object(replay) -> None:
    from scenarios import load_scenario

    server = await replay(load_scenario("checkout-typo"))
    assert server.url.startswith("http://127.0.0.1:") and server.kubeconfig.is_file()
    assert server.scenario.name == "checkout-typo" and server.deletions == []


async def test_new_kinds_through_their_api_groups(replay) -> None:
    """Ingress, NetworkPolicy, HPA (autoscaling/v2), PDB, Job/CronJob, ResourceQuota,
    LimitRange, StorageClass and ControllerRevision are served where a v1.30 server serves
    them, as lists and single objects."""
    server = await replay("cronjob-failing")
    api_client = config.new_client_from_config(config_file=str(server.kubeconfig))
    batch = client.BatchV1Api(api_client)
    cron = await call(batch.read_namespaced_cron_job, "order-export", "shop")
    assert cron.spec.schedule == "0 2 * * *"
    jobs = await call(batch.list_namespaced_job, "shop")
    assert [j.status.conditions[-1].reason for j in jobs.items] == ["BackoffLimitExceeded"]
    ingress_server = await replay("ingress-backend-missing")
    net = client.NetworkingV1Api(config.new_client_from_config(
        config_file=str(ingress_server.kubeconfig)))
    ing = await call(net.read_namespaced_ingress, "shop", "shop")
    assert ing.spec.rules[0].http.paths[0].backend.service.name == "frontend-svc"
    hpa_server = await replay("hpa-maxed")
    autoscaling = client.AutoscalingV2Api(config.new_client_from_config(
        config_file=str(hpa_server.kubeconfig)))
    hpa = await call(autoscaling.read_namespaced_horizontal_pod_autoscaler, "frontend", "shop")
    assert hpa.status.current_replicas == hpa.spec.max_replicas == 3
    pvc_server = await replay("pvc-storageclass")
    storage = client.StorageV1Api(config.new_client_from_config(
        config_file=str(pvc_server.kubeconfig)))
    classes = await call(storage.list_storage_class)
    assert {c.metadata.name for c in classes.items} == {"standard", "standard-rwo",
                                                        "premium-rwo"}
    groups = await call(client.ApisApi(api_client).get_api_versions)
    assert {(g.name, g.preferred_version.version) for g in groups.groups} >= {*{
        "batch": "v1", "networking.k8s.io": "v1", "autoscaling": "v2", "policy": "v1",
        "discovery.k8s.io": "v1", "storage.k8s.io": "v1"}.items()}
    missing = await api_error(client.PolicyV1Api(api_client).read_namespaced_pod_disruption_budget,
                              "nope", "shop")
    assert missing.status == 404


async def test_a_rollout_keeps_its_old_replicaset(replay) -> None:
    """`previous:` in a scenario: the Deployment controller's old ReplicaSet, scaled to 0 (or
    still serving with `previous.replicas`), holding the previous pod template."""
    server = await replay("checkout-typo")
    _, apps = apis(server)
    sets = await call(apps.list_namespaced_replica_set, "shop",
                      label_selector="app=checkoutservice")
    by_revision = {rs.metadata.annotations["deployment.kubernetes.io/revision"]: rs
                   for rs in sets.items}
    assert set(by_revision) == {"1", "2"}
    old, new = by_revision["1"], by_revision["2"]
    assert old.spec.replicas == 0 and new.spec.replicas == 1
    env = {e.name: e.value for e in old.spec.template.spec.containers[0].env}
    assert env["PAYMENT_SERVICE_ADDR"] == "paymentservice:50051"
    assert new.metadata.creation_timestamp > old.metadata.creation_timestamp
    stuck = await replay("missing-secret-key")
    _, apps2 = apis(stuck)
    sets = await call(apps2.list_namespaced_replica_set, "shop", label_selector="app=cartservice")
    assert sorted(rs.status.ready_replicas or 0 for rs in sets.items) == [0, 1]


async def test_event_field_selector_answers_from_the_index_after_a_change(replay) -> None:
    """The per-kind index the list handler uses is rebuilt when the state changes: a pod
    deleted through the API shows up in the next event list."""
    server = await replay("checkout-typo")
    core, _ = apis(server)
    before = await call(core.list_namespaced_event, "shop",
                        field_selector=f"involvedObject.name={FRONTEND}")
    await call(core.delete_namespaced_pod, FRONTEND, "shop")
    after = await call(core.list_namespaced_event, "shop",
                       field_selector=f"involvedObject.name={FRONTEND}")
    assert len(after.items) > len(before.items)
    assert "Killing" in {e.reason for e in after.items}
