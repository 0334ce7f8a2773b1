"""Findings are facts read off API objects: each known fault, and the values that must not
trigger one."""

from __future__ import annotations

from typing import Any

import pytest

from agent.findings import (
    edit_distance,
    env_host,
    env_host_findings,
    pod_findings,
    service_findings,
)


def pod(name: str = "web-1", *, phase: str = "Running", statuses: list[dict[str, Any]] | None
        = None, containers: list[dict[str, Any]] | None = None,
        conditions: list[dict[str, Any]] | None = None,
        labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {"app": "web"}},
        "spec": {"containers": containers or [{"name": "server", "image": "web:1"}]},
        "status": {"phase": phase, "containerStatuses": statuses or [],
                   "conditions": conditions or []},
    }


def status(**kwargs: Any) -> dict[str, Any]:
    return {"name": "server", "image": "web:1", "ready": False, "restartCount": 0, **kwargs}


def test_image_pull_names_the_image() -> None:
    p = pod(phase="Pending", statuses=[status(
        image="registry/web:v9", state={"waiting": {"reason": "ImagePullBackOff",
                                                    "message": 'Back-off pulling image "x"'}})])
    [finding] = pod_findings(p)
    assert "registry/web:v9" in finding and "ImagePullBackOff" in finding


def test_crashloop_names_exit_code_and_reason() -> None:
    p = pod(statuses=[status(restartCount=7, state={"waiting": {"reason": "CrashLoopBackOff"}},
                             lastState={"terminated": {"reason": "Error", "exitCode": 3}})])
    [finding] = pod_findings(p)
    assert "CrashLoopBackOff" in finding and "exit code 3" in finding and "(Error)" in finding
    assert "7 restarts" in finding and "(image web:1)" in finding


def test_oomkilled_names_the_memory_limit() -> None:
    p = pod(
        containers=[{"name": "server", "image": "web:1",
                     "resources": {"limits": {"memory": "128Mi"}}}],
        statuses=[status(ready=True, state={"running": {}},
                         lastState={"terminated": {"reason": "OOMKilled", "exitCode": 137}})],
    )
    [finding] = pod_findings(p)
    assert "OOMKilled" in finding and "128Mi" in finding


def test_pending_quotes_the_scheduler_from_conditions_or_events() -> None:
    message = "0/3 nodes are available: 3 Insufficient memory."
    by_condition = pod(phase="Pending", conditions=[{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": message}])
    assert message in pod_findings(by_condition)[0]
    event = {"reason": "FailedScheduling", "message": message,
             "involvedObject": {"kind": "Pod", "name": "web-1"}}
    by_event = pod(phase="Pending")
    assert message in pod_findings(by_event, [event])[0]


def test_running_not_ready_names_the_probe_and_its_failure() -> None:
    p = pod(
        containers=[{"name": "server", "image": "web:1",
                     "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}}}],
        statuses=[status(state={"running": {}})],
    )
    event = {"reason": "Unhealthy", "message": "Readiness probe failed: HTTP probe failed with "
             "statuscode: 503", "involvedObject": {"kind": "Pod", "name": "web-1"}}
    [finding] = pod_findings(p, [event])
    assert "not Ready" in finding and "httpGet :8080/healthz" in finding and "503" in finding


def test_config_error_quotes_the_missing_object() -> None:
    p = pod(phase="Pending", statuses=[status(state={"waiting": {
        "reason": "CreateContainerConfigError", "message": 'configmap "web-config" not found'}})])
    [finding] = pod_findings(p)
    assert 'configmap "web-config" not found' in finding


def test_healthy_pod_has_no_findings() -> None:
    p = pod(statuses=[status(ready=True, state={"running": {}})])
    assert pod_findings(p) == []


@pytest.mark.parametrize(
    ("value", "host"),
    [
        ("paymetnservce:50051", "paymetnservce"),
        ("http://paymetnservce:8080/pay", "paymetnservce"),
        ("paymetnservce.shop.svc.cluster.local:50051", "paymetnservce"),
        ("paymetnservce.shop", "paymetnservce"),
        ("paymetnservce.shop.svc", "paymetnservce"),
        ("10.0.0.12:6379", None),
        ("localhost:8080", None),
        ("[::1]:80", None),
        ("api.stripe.com", None),
        ("paymetnservce.other.svc.cluster.local", None),
        ("hello world", None),
        ("/var/run/sock", None),
        ("8080", None),
    ],
)
def test_env_host_parsing(value: str, host: str | None) -> None:
    assert env_host(value, "shop") == host


def services(*names: str) -> list[dict[str, Any]]:
    return [{"metadata": {"name": n}} for n in names]


def test_env_host_typo_names_the_closest_service() -> None:
    containers = [{"name": "server", "env": [
        {"name": "PAYMENT_SERVICE_ADDR", "value": "paymetnservce:50051"},
        {"name": "CART_SERVICE_ADDR", "value": "cartservice:7070"},
        {"name": "REDIS_HOST", "value": "10.1.2.3"},
        {"name": "GREETING", "value": "paymetnservce"},
        {"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
    ]}]
    found = env_host_findings("deployment checkoutservice", containers,
                              services("paymentservice", "cartservice", "emailservice"), "shop")
    assert len(found) == 1
    assert "PAYMENT_SERVICE_ADDR=paymetnservce:50051" in found[0]
    assert "'paymentservice'" in found[0]
    assert edit_distance("paymetnservce", "paymentservice") == 3


def test_zero_endpoints_names_selector_and_near_miss_pods() -> None:
    svc = {"metadata": {"name": "payments"}, "spec": {"selector": {"app": "payments"}}}
    pods = [pod("payment-1", labels={"app": "payment"}), pod("other-1", labels={"app": "zzz"})]
    [finding] = service_findings(svc, {"subsets": []}, pods)
    assert "0 ready endpoints" in finding and "app=payments" in finding
    assert "payment-1 has app=payment" in finding and "other-1" not in finding


def test_zero_endpoints_with_matching_unready_pods_says_so() -> None:
    svc = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}}}
    [finding] = service_findings(svc, None, [pod("web-1")])
    assert "none is Ready" in finding and "web-1" in finding


def test_service_with_ready_endpoints_or_no_selector_is_quiet() -> None:
    svc = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}}}
    ready = {"subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]}
    assert service_findings(svc, ready, []) == []
    external = {"metadata": {"name": "ext"}, "spec": {"type": "ExternalName"}}
    assert service_findings(external, None, []) == []


def test_env_host_pointing_at_a_service_without_endpoints() -> None:
    containers = [{"name": "server", "env": [
        {"name": "SHIPPING_SERVICE_ADDR", "value": "shippingservice:50051"},
        {"name": "CART_SERVICE_ADDR", "value": "cartservice:7070"},
    ]}]
    svcs = [{"metadata": {"name": "shippingservice"},
             "spec": {"selector": {"app": "shipping-service"}}},
            {"metadata": {"name": "cartservice"}, "spec": {"selector": {"app": "cartservice"}}}]
    endpoints = [{"metadata": {"name": "shippingservice"}, "subsets": []},
                 {"metadata": {"name": "cartservice"},
                  "subsets": [{"addresses": [{"ip": "10.0.0.3"}]}]}]
    [finding] = env_host_findings("deployment frontend", containers, svcs, "shop", endpoints)
    assert "SHIPPING_SERVICE_ADDR=shippingservice:50051" in finding
    assert "0 ready endpoints (selector app=shipping-service)" in finding
    # endpoints unknown (no permission): no claim about them
    assert env_host_findings("deployment frontend", containers, svcs, "shop") == []
