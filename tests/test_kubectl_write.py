"""The real kubectl's write verbs against the replay: if kubectl's own PATCH requests (set env,
scale, rollout restart/undo, --dry-run=server) work here, the replay speaks the API's PATCH."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.test_kubectl import kubectl, needs_kubectl

pytestmark = [pytest.mark.slow, needs_kubectl]


async def deployment(server, name: str = "checkoutservice") -> dict:
    code, out, err = await kubectl(server.kubeconfig, "-n", "shop", "get", "deploy", name,
                                   "-o", "json")
    assert code == 0, err
    return json.loads(out)


def env(obj: dict) -> dict:
    return {e["name"]: e.get("value") for e in
            obj["spec"]["template"]["spec"]["containers"][0]["env"]}


async def test_kubectl_set_env_server_dry_run_then_for_real(replay) -> None:
    server = await replay("checkout-typo")
    server.state.rollouts.start_delay = 0.1
    args = ("-n", "shop", "set", "env", "deploy/checkoutservice",
            "PAYMENT_SERVICE_ADDR=paymentservice:50051")
    code, out, err = await kubectl(server.kubeconfig, *args, "--dry-run=server")
    assert code == 0, err
    assert env(await deployment(server))["PAYMENT_SERVICE_ADDR"] == "paymetnservce:50051"
    code, out, err = await kubectl(server.kubeconfig, *args)
    assert code == 0, err
    assert env(await deployment(server))["PAYMENT_SERVICE_ADDR"] == "paymentservice:50051"
    await asyncio.sleep(0.3)
    code, out, err = await kubectl(server.kubeconfig, "-n", "shop", "rollout", "status",
                                   "deploy/checkoutservice", "--timeout=10s")
    assert code == 0, err + out
    assert "successfully rolled out" in out


async def test_kubectl_scale_restart_and_undo(replay) -> None:
    server = await replay("crashloop-redis")
    server.state.rollouts.start_delay = 0.1
    code, _, err = await kubectl(server.kubeconfig, "-n", "shop", "scale",
                                 "deploy/checkoutservice", "--replicas=2")
    assert code == 0, err
    assert (await deployment(server))["spec"]["replicas"] == 2
    code, _, err = await kubectl(server.kubeconfig, "-n", "shop", "rollout", "restart",
                                 "deploy/checkoutservice")
    assert code == 0, err
    annotations = (await deployment(server))["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations
    code, out, err = await kubectl(server.kubeconfig, "-n", "shop", "rollout", "undo",
                                   "deploy/cartservice")
    assert code == 0, err + out
    image = (await deployment(server, "cartservice"))["spec"]["template"]["spec"][
        "containers"][0]["image"]
    assert image.endswith("/cartservice:v0.10.2")
