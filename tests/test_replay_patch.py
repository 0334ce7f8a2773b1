"""PATCH on the replay API through the official kubernetes client: patch types, the scale
subresource, dryRun=All, 409 on a stale resourceVersion, validation, admission, rollouts and
a scenario's remedy stopping its symptoms."""

from __future__ import annotations

import asyncio
import json

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSONP = "application/json-patch+json"


def apps(server) -> client.AppsV1Api:
    return client.AppsV1Api(config.new_client_from_config(config_file=str(server.kubeconfig)))


def core(server) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=str(server.kubeconfig)))


async def read(api: client.AppsV1Api, name: str = "checkoutservice") -> dict:
    raw = await asyncio.to_thread(api.read_namespaced_deployment, name, "shop",
                                  _preload_content=False)
    return json.loads(raw.data)


async def call(method, *args, **kwargs) -> dict:
    """The client is synchronous and the replay server shares this event loop."""
    raw = await asyncio.to_thread(method, *args, _preload_content=False, **kwargs)
    return json.loads(raw.data)


def patch(api, body, content_type, name="checkoutservice", **kwargs) -> dict:
    raw = api.patch_namespaced_deployment(name, "shop", body, _content_type=content_type,
                                          _preload_content=False, **kwargs)
    return json.loads(raw.data)


def env_of(deploy: dict) -> dict:
    return {e["name"]: e.get("value") for e in
            deploy["spec"]["template"]["spec"]["containers"][0].get("env", [])}


def set_env(value: str, rv: str | None = None) -> dict:
    body: dict = {"spec": {"template": {"spec": {"containers": [
        {"name": "server", "env": [{"name": "PAYMENT_SERVICE_ADDR", "value": value}]}]}}}}
    if rv:
        body["metadata"] = {"resourceVersion": rv}
    return body


async def test_dry_run_is_validated_and_answered_but_not_stored(replay):
    server = await replay("checkout-typo")
    api = apps(server)
    before = await read(api)
    dry = await asyncio.to_thread(patch, api, set_env("paymentservice:50051"), STRATEGIC,
                                  dry_run="All")
    assert env_of(dry)["PAYMENT_SERVICE_ADDR"] == "paymentservice:50051"
    assert env_of(dry)["PORT"] == "5050"          # strategic merge kept the other vars
    assert await read(api) == before                      # nothing stored, no rollout
    assert server.state.rollouts.writes == []
    with pytest.raises(ApiException) as bad:
        await asyncio.to_thread(patch, api, set_env("x"), STRATEGIC, dry_run="Maybe")
    assert bad.value.status == 400


async def test_strategic_patch_rolls_out_a_new_replicaset_with_the_new_template(replay):
    server = await replay("checkout-typo")
    server.state.rollouts.start_delay = 0.2
    api = apps(server)
    rv = (await read(api))["metadata"]["resourceVersion"]
    stored = await asyncio.to_thread(patch, api, set_env("paymentservice:50051", rv), STRATEGIC)
    assert stored["metadata"]["generation"] == (await read(api))["metadata"]["generation"]
    assert stored["metadata"]["resourceVersion"] != rv
    sets = (await call(api.list_namespaced_replica_set, "shop",
                       label_selector="app=checkoutservice"))["items"]
    revisions = {s["metadata"]["name"]: s["metadata"]["annotations"][
        "deployment.kubernetes.io/revision"] for s in sets}
    # Revision 1 had exactly this template: the controller re-uses its ReplicaSet (equal
    # minus pod-template-hash) and renumbers it, as a rollback does.
    assert revisions == {"checkoutservice-5fsbm7q4qr": "2", "checkoutservice-4lsfkswjhd": "3"}
    newest = next(s for s in sets if s["metadata"]["name"] == "checkoutservice-4lsfkswjhd")
    await asyncio.sleep(0.4)
    pods = (await call(core(server).list_namespaced_pod, "shop",
                       label_selector="app=checkoutservice"))["items"]
    assert len(pods) == 1                           # the old pod went once the new one was Ready
    assert pods[0]["metadata"]["labels"]["pod-template-hash"] == \
        newest["metadata"]["labels"]["pod-template-hash"]
    assert env_of({"spec": {"template": {"spec": pods[0]["spec"]}}})[
        "PAYMENT_SERVICE_ADDR"] == "paymentservice:50051"
    status = (await read(api))["status"]
    assert (status["updatedReplicas"], status["readyReplicas"], status["replicas"]) == (1, 1, 1)
    assert status["observedGeneration"] == (await read(api))["metadata"]["generation"]


async def test_a_stale_resource_version_is_a_409_and_changes_nothing(replay):
    server = await replay("checkout-typo")
    api = apps(server)
    rv = (await read(api))["metadata"]["resourceVersion"]
    await asyncio.to_thread(patch, api, {"metadata": {"annotations": {"x": "y"}}}, MERGE)
    with pytest.raises(ApiException) as stale:
        await asyncio.to_thread(patch, api, set_env("paymentservice:50051", rv), STRATEGIC)
    assert stale.value.status == 409
    body = json.loads(stale.value.body)
    assert body["reason"] == "Conflict" and "the object has been modified" in body["message"]
    assert env_of(await read(api))["PAYMENT_SERVICE_ADDR"] == "paymetnservce:50051"


async def test_validation_admission_and_media_type_refusals(replay):
    server = await replay("checkout-typo")
    api = apps(server)
    bad_env = {"spec": {"template": {"spec": {"containers": [
        {"name": "server", "env": [{"name": "1BAD", "value": "x"}]}]}}}}
    with pytest.raises(ApiException) as invalid:
        await asyncio.to_thread(patch, api, bad_env, STRATEGIC, dry_run="All")
    assert invalid.value.status == 422
    assert "spec.template.spec.containers[0].env[" in json.loads(invalid.value.body)["message"]
    # A trailing newline is no name (Go's "$" is the end of the text, not "before a final \n").
    for path, value, field in (
            ("/spec/template/spec/containers/0/name", "server\n", "containers[0].name"),
            ("/spec/template/spec/containers/0/env/0/name", "PAYMENT_SERVICE_ADDR\n",
             "containers[0].env[0].name")):
        with pytest.raises(ApiException) as newline:
            await asyncio.to_thread(patch, api, [{"op": "replace", "path": path,
                                                  "value": value}], JSONP, dry_run="All")
        assert newline.value.status == 422
        assert field in json.loads(newline.value.body)["message"]
    no_image = {"spec": {"template": {"spec": {"containers": [{"name": "sidecar"}]}}}}
    with pytest.raises(ApiException) as missing:
        await asyncio.to_thread(patch, api, no_image, STRATEGIC, dry_run="All")
    assert "containers[1].image: Required value" in json.loads(missing.value.body)["message"]
    server.faults.deny_writes = "replicas above 3 need a change ticket"
    with pytest.raises(ApiException) as denied:
        await asyncio.to_thread(patch, api, {"spec": {"replicas": 5}}, MERGE, dry_run="All")
    assert denied.value.status == 403
    assert "admission webhook" in json.loads(denied.value.body)["message"]
    server.faults.deny_writes = None
    with pytest.raises(ApiException) as media:
        await asyncio.to_thread(api.patch_namespaced_deployment, "checkoutservice", "shop",
                                {"spec": {}}, _content_type="application/json")
    assert media.value.status == 415
    assert server.state.rollouts.writes == []


async def test_json_patch_with_a_failed_test_op_is_422(replay):
    server = await replay("checkout-typo")
    api = apps(server)
    ops = [{"op": "test", "path": "/spec/replicas", "value": 7},
           {"op": "replace", "path": "/spec/replicas", "value": 2}]
    with pytest.raises(ApiException) as failed:
        await asyncio.to_thread(patch, api, ops, JSONP)
    assert failed.value.status == 422
    ok = await asyncio.to_thread(patch, api, [{"op": "replace", "path": "/spec/replicas",
                                               "value": 2}], JSONP)
    assert ok["spec"]["replicas"] == 2


async def test_scale_subresource_shares_the_parents_resource_version(replay):
    server = await replay("checkout-typo")
    server.state.rollouts.start_delay = 0.1
    api = apps(server)
    rv = (await read(api))["metadata"]["resourceVersion"]
    scale = await call(api.patch_namespaced_deployment_scale, "checkoutservice", "shop",
                       {"metadata": {"resourceVersion": rv}, "spec": {"replicas": 3}},
                       _content_type=MERGE)
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3
    assert (await read(api))["spec"]["replicas"] == 3
    with pytest.raises(ApiException) as stale:
        await asyncio.to_thread(api.patch_namespaced_deployment_scale, "checkoutservice", "shop",
                                {"metadata": {"resourceVersion": rv}, "spec": {"replicas": 1}},
                                _content_type=MERGE)
    assert stale.value.status == 409
    await asyncio.sleep(0.3)
    assert (await read(api))["status"]["readyReplicas"] == 3


async def test_a_broken_template_leaves_the_old_pods_and_crashloops(replay):
    server = await replay("crashloop-redis")
    server.state.rollouts.start_delay = 0.1
    api = apps(server)
    body = {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}}
    await asyncio.to_thread(patch, api, body, STRATEGIC, name="cartservice")
    await asyncio.sleep(0.3)
    pods = (await call(core(server).list_namespaced_pod, "shop",
                       label_selector="app=cartservice"))["items"]
    waiting = [p["status"]["containerStatuses"][0]["state"].get("waiting", {}).get("reason")
               for p in pods]
    assert waiting.count("CrashLoopBackOff") == len(pods) == 2  # old one kept, new one failing
    assert (await read(api, "cartservice"))["status"]["updatedReplicas"] == 1


async def test_the_remedy_stops_the_symptoms(replay):
    server = await replay("checkout-typo")
    server.state.rollouts.start_delay = 0.1
    rollouts = server.state.rollouts
    rollouts.remedies[0]["symptoms"]["shop/frontend/server"]["every"] = "0.1s"
    api, pods = apps(server), core(server)
    frontend = server.scenario.pod_for("frontend")

    async def errors_since(seconds: int) -> int:
        text = await asyncio.to_thread(pods.read_namespaced_pod_log, frontend, "shop",
                                       since_seconds=seconds)
        return text.count("lookup paymetnservce")

    await asyncio.sleep(0.3)
    assert await errors_since(5) >= 2                       # still failing, live
    rv = (await read(api))["metadata"]["resourceVersion"]
    await asyncio.to_thread(patch, api, set_env("paymentservice:50051", rv), STRATEGIC)
    await asyncio.sleep(0.25)
    before = await errors_since(60)                   # any request lets the replay catch up
    assert 0 in rollouts.healed_at
    await asyncio.sleep(0.35)
    assert await errors_since(60) == before                 # nothing new after the fix rolled out
