"""Offline checks of the deployment artefacts: Dockerfile, kustomize base, Slack app manifest,
demo patches. Everything that can be verified without a Docker engine or a cluster is: the
YAML parses, RBAC grants exactly what the README promises, the Deployment's settings feed the
real ``Settings``, the Docker HEALTHCHECK command really tells a healthy server from a sick one.
``kubectl`` (kustomize build, ``patch --local``) and ``hadolint`` are used when installed."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.kinds import rbac_reads
from budo.config import Settings
from budo.errors import ConfigError
from tests.manifest_support import (
    DEMO,
    KUBECTL,
    MANIFESTS,
    READ_VERBS,
    ROOT,
    UID,
    base_docs,
    deployment,
    find,
    kustomization,
    load_yaml,
)

# ---------------------------------------------------------------- kustomize base


def config_env() -> dict[str, str]:
    lines = (MANIFESTS / "config.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_every_yaml_file_parses_and_kubernetes_objects_name_their_kind():
    files = sorted(MANIFESTS.rglob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        docs = load_yaml(path)
        assert docs, f"{path} is empty"
        if path.name in {"slack-app.yaml", "slack-app-http.yaml", "kustomization.yaml"}:
            continue
        for doc in docs:
            assert {"apiVersion", "kind", "metadata"} <= doc.keys(), path


def test_kustomization_lists_existing_files_and_leaves_out_demo_and_the_example_secret():
    kust = kustomization()
    resources = kust["resources"]
    for resource in resources:
        assert (MANIFESTS / resource).is_file(), f"{resource} listed but missing"
        assert not resource.startswith("demo"), resource
    assert "secret.example.yaml" not in resources
    for generator in kust["configMapGenerator"]:
        for env_file in generator["envs"]:
            assert (MANIFESTS / env_file).is_file()
    unlisted = {p.name for p in MANIFESTS.glob("*.yaml")} - set(resources) - {
        "kustomization.yaml", "slack-app.yaml", "slack-app-http.yaml", "secret.example.yaml"}
    assert not unlisted, f"base files not in the kustomization: {unlisted}"
    assert "Secret" not in {d["kind"] for d in base_docs()}


def test_read_role_only_reads_and_never_secrets():
    role = find("ClusterRole", "budo-read")
    granted: set[tuple[str, str]] = set()
    for rule in role["rules"]:
        assert set(rule["verbs"]) <= READ_VERBS, rule
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
        assert "secrets" not in rule["resources"], rule
        assert not rule.get("resourceNames") and not rule.get("nonResourceURLs")
        granted |= {(group, res) for group in rule["apiGroups"] for res in rule["resources"]}
    # Exactly what the tools read (agent/kube.py): nothing missing, nothing extra.
    needed = rbac_reads()
    assert granted == needed, (needed - granted, granted - needed)
    assert all("watch" not in rule["verbs"] for rule in role["rules"])


def test_act_role_deletes_pods_patches_workloads_and_is_bound_per_namespace_only():
    docs = base_docs()
    role = find("ClusterRole", "budo-act", docs)
    granted = {(group, res, verb) for rule in role["rules"] for group in rule["apiGroups"]
               for res in rule["resources"] for verb in rule["verbs"]}
    wanted = {("", "pods", v) for v in ("get", "list", "delete")}
    wanted |= {("apps", r, v) for r in ("deployments", "statefulsets", "daemonsets",
                                        "deployments/scale", "statefulsets/scale")
               for v in ("get", "patch")}
    wanted |= {("apps", r, v) for r in ("replicasets", "controllerrevisions")
               for v in ("get", "list")}
    assert granted == wanted, granted ^ wanted   # least privilege: exactly what the actions use
    cluster_bound = [d["roleRef"]["name"] for d in docs if d["kind"] == "ClusterRoleBinding"]
    assert "budo-act" not in cluster_bound, "delete must not be granted cluster-wide"
    role_bindings = [d for d in docs if d["kind"] == "RoleBinding"
                     and d["roleRef"]["name"] == "budo-act"]
    assert [b["metadata"]["namespace"] for b in role_bindings] == ["shop"]
    acting_in = {b["metadata"]["namespace"] for b in role_bindings}
    assert acting_in <= set(Settings.from_env(config_env()).namespaces)


def test_bindings_reference_existing_roles_and_the_service_account():
    docs = base_docs()
    account = find("ServiceAccount", "budo", docs)
    find("Namespace", account["metadata"]["namespace"], docs)
    bindings = [d for d in docs if d["kind"] in {"RoleBinding", "ClusterRoleBinding"}]
    assert {b["kind"] for b in bindings} == {"RoleBinding", "ClusterRoleBinding"}
    for binding in bindings:
        ref = binding["roleRef"]
        assert ref["apiGroup"] == "rbac.authorization.k8s.io"
        find(ref["kind"], ref["name"], docs)
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "budo",
                                        "namespace": account["metadata"]["namespace"]}]


def test_deployment_is_single_recreate_and_locked_down():
    deploy = deployment()
    spec = deploy["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    find("ServiceAccount", pod["serviceAccountName"])
    assert pod["automountServiceAccountToken"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == UID
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == UID
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not sc.get("privileged")
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= container["resources"][kind].keys()


def test_shutdown_grace_fits_the_termination_period_and_metrics_are_scrapeable():
    from bot.runs import ENDING_S
    from bot.serve import DEFAULT_GRACE

    spec = deployment()["spec"]["template"]
    args = spec["spec"]["containers"][0]["args"]
    grace = float(args[args.index("--grace") + 1]) if "--grace" in args else DEFAULT_GRACE
    # grace for in-flight runs, ENDING_S to post "interrupted", ~2 s to flush and close
    assert grace + ENDING_S + 2 <= spec["spec"]["terminationGracePeriodSeconds"]
    annotations = spec["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "3000"
    assert annotations["prometheus.io/path"] == "/metrics"


def test_deployment_probes_hit_healthz_and_readyz_on_port_3000():
    container = deployment()["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        http_get = container[probe]["httpGet"]
        assert http_get["path"] == path
        port = http_get["port"]
        assert ports.get(port, port) == 3000, (probe, port)
    service = find("Service", "budo")
    assert service["spec"]["selector"].items() <= (
        deployment()["spec"]["template"]["metadata"]["labels"].items())
    assert service["spec"]["ports"][0]["targetPort"] in ports


def test_deployment_mounts_the_pvc_for_the_db_and_a_writable_tmp():
    pod = deployment()["spec"]["template"]["spec"]
    container = pod["containers"][0]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    claim = volumes[mounts["/var/lib/budo"]]["persistentVolumeClaim"]["claimName"]
    pvc = find("PersistentVolumeClaim", claim)
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert "emptyDir" in volumes[mounts["/tmp"]]
    db = Settings.from_env(config_env()).db_path
    assert db.startswith("/var/lib/budo/"), db


def test_deployment_config_and_secret_feed_settings_for_socket_mode():
    kust = kustomization()
    pod = deployment()["spec"]["template"]["spec"]
    sources = pod["containers"][0]["envFrom"]
    config_name = next(s["configMapRef"]["name"] for s in sources if "configMapRef" in s)
    secret_name = next(s["secretRef"]["name"] for s in sources if "secretRef" in s)
    assert config_name in {g["name"] for g in kust["configMapGenerator"]}
    (secret,) = load_yaml(MANIFESTS / "secret.example.yaml")
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == secret_name == "budo-slack"
    assert secret["metadata"]["namespace"] == deployment()["metadata"]["namespace"]
    assert pod["containers"][0]["image"] in {i["name"] for i in kust["images"]}

    config = config_env()
    known = {f.metadata["env"] for f in Settings.__dataclass_fields__.values()}
    assert set(config) <= known, f"unknown settings in config.env: {set(config) - known}"
    assert {"BUDO_LLM_URL", "BUDO_LLM_MODEL", "BUDO_ONCALL_USERGROUP", "BUDO_NAMESPACES",
            "BUDO_DB"} <= set(config)
    env = {**config, **secret["stringData"]}
    settings = Settings.from_env(env)
    assert settings.slack_app_token, "Socket Mode needs SLACK_APP_TOKEN"
    assert settings.audit_key, "the audit chain is keyed from the Secret (BUDO_AUDIT_KEY)"
    assert "BUDO_AUDIT_KEY" not in config  # never in the ConfigMap
    with pytest.raises(ConfigError, match="ONCALL"):  # shipped empty: must be filled in
        settings.require_slack()
    Settings.from_env({**env, "BUDO_ONCALL_USERGROUP": "S0123456789"}).require_slack()


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
@pytest.mark.slow  # a subprocess
def test_kustomize_renders_the_base_and_nothing_else():
    result = subprocess.run([KUBECTL, "kustomize", str(MANIFESTS)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert Counter(d["kind"] for d in docs) == Counter({
        "Namespace": 1, "ServiceAccount": 1, "ClusterRole": 2, "ClusterRoleBinding": 1,
        "RoleBinding": 1, "ConfigMap": 1, "PersistentVolumeClaim": 1, "Deployment": 1,
        "Service": 1,
    })
    config_map = next(d for d in docs if d["kind"] == "ConfigMap")
    assert config_map["metadata"]["name"].startswith("budo-config-"), "hash suffix expected"
    container = find("Deployment", "budo", docs)["spec"]["template"]["spec"]["containers"][0]
    assert {"configMapRef": {"name": config_map["metadata"]["name"]}} in container["envFrom"]
    image = kustomization()["images"][0]
    assert container["image"] == f"{image['newName']}:{image['newTag']}"


# ---------------------------------------------------------------- Slack app manifest


def test_slack_app_manifest_has_the_command_scopes_and_socket_mode():
    (app,) = load_yaml(MANIFESTS / "slack-app.yaml")
    assert app["display_information"]["name"]
    assert len(app["display_information"].get("description", "")) <= 140
    assert app["features"]["bot_user"]["display_name"]
    (command,) = app["features"]["slash_commands"]
    assert command["command"] == "/budo"
    assert command["usage_hint"] == "investigate <question> | runs | export [run-id] | help"
    assert set(app["oauth_config"]["scopes"]["bot"]) == scopes_the_code_needs()
    settings = app["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is True
    assert settings["event_subscriptions"]["bot_events"] == ["app_mention"]
    assert settings["org_deploy_enabled"] is False
    assert settings["token_rotation_enabled"] is False


# The bot scope each Web API method budo calls needs (docs.slack.dev/reference/methods/<m>).
# auth.test needs none; apps.connections.open uses the app-level token (connections:write).
METHOD_SCOPES = {"chat_postMessage": "chat:write", "chat_update": "chat:write",
                 "chat_postEphemeral": "chat:write", "files_upload_v2": "files:write",
                 "usergroups_users_list": "usergroups:read", "auth_test": None,
                 "apps_connections_open": None}
# Every Web API call goes through SlackPoster._call / .call with the slack_sdk method name.
SLACK_METHOD = re.compile(r'(?:_call|\.call)\(\s*"([A-Za-z0-9_]+)"')


def scopes_the_code_needs() -> set[str]:
    called = {m for path in (ROOT / "bot").glob("*.py")
              for m in SLACK_METHOD.findall(path.read_text())}
    unknown = called - METHOD_SCOPES.keys()
    assert not unknown, f"add the scope of {unknown} to METHOD_SCOPES and the app manifests"
    needed = {METHOD_SCOPES[m] for m in called} - {None}
    # /budo and @budo: the slash command and the app_mention event.
    return {s for s in needed if s} | {"commands", "app_mentions:read"}


def test_the_http_mode_manifest_is_the_socket_mode_one_with_request_urls():
    (socket,) = load_yaml(MANIFESTS / "slack-app.yaml")
    (http,) = load_yaml(MANIFESTS / "slack-app-http.yaml")
    assert http["settings"]["socket_mode_enabled"] is False
    urls = [http["features"]["slash_commands"][0]["url"],
            http["settings"]["event_subscriptions"]["request_url"],
            http["settings"]["interactivity"]["request_url"]]
    assert all(u.startswith("https://") and u.endswith("/slack/events") for u in urls)
    assert http["oauth_config"] == socket["oauth_config"]
    assert http["features"]["bot_user"] == socket["features"]["bot_user"]
    assert (http["settings"]["event_subscriptions"]["bot_events"]
            == socket["settings"]["event_subscriptions"]["bot_events"])


# ---------------------------------------------------------------- demo patches

CHECKOUT_ENV = [{"name": "PORT", "value": "5050"},
                {"name": "PAYMENT_SERVICE_ADDR", "value": "paymentservice:50051"},
                {"name": "EMAIL_SERVICE_ADDR", "value": "emailservice:5000"}]
CART_IMAGE = "us-central1-docker.pkg.dev/google-samples/microservices-demo/cartservice:v0.10.1"


def patched_container(patch: str) -> dict[str, Any]:
    (doc,) = load_yaml(DEMO / patch)
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "server", patch
    return container


def test_demo_patches_target_the_server_container():
    for patch, value in (("break-checkout-payment-addr.yaml", "paymetnservce:50051"),
                         ("heal-checkout-payment-addr.yaml", "paymentservice:50051")):
        assert load_yaml(DEMO / patch)[0]["metadata"]["name"] == "checkoutservice"
        assert patched_container(patch)["env"] == [{"name": "PAYMENT_SERVICE_ADDR",
                                                    "value": value}]
    for patch, image in (("break-cartservice-image.yaml", "redis:alpine"),
                         ("heal-cartservice-image.yaml", CART_IMAGE)):
        assert load_yaml(DEMO / patch)[0]["metadata"]["name"] == "cartservice"
        assert patched_container(patch) == {"name": "server", "image": image}


def test_demo_readme_names_only_files_that_exist():
    readme = (DEMO / "README.md").read_text()
    named = re.findall(r"--patch-file (\S+)", readme)
    assert len(named) == 4
    for path in named:
        assert (ROOT / path).is_file(), path


def kubectl_patch(tmp_path: Path, obj: dict[str, Any], patch: str) -> dict[str, Any]:
    """What `kubectl patch --patch-file` does to the object, computed locally."""
    source = tmp_path / "deployment.yaml"
    source.write_text(yaml.safe_dump(obj))
    result = subprocess.run(
        [KUBECTL, "patch", "--local", "-f", str(source), "--patch-file", str(DEMO / patch),
         "-o", "json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def boutique_deployment(name: str, container: dict[str, Any]) -> dict[str, Any]:
    """The shape of Online Boutique's Deployment (a sidecar too, to prove it is left alone)."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [
                                      {"name": "server", "ports": [{"containerPort": 5050}],
                                       **container},
                                      {"name": "sidecar", "image": "busybox"}]}}}}


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
@pytest.mark.slow  # a subprocess
def test_checkout_break_changes_one_env_var_and_heal_restores_it(tmp_path: Path):
    original = boutique_deployment("checkoutservice", {
        "image": "checkoutservice:v0.10.1", "env": CHECKOUT_ENV})
    broken = kubectl_patch(tmp_path, original, "break-checkout-payment-addr.yaml")
    server, sidecar = broken["spec"]["template"]["spec"]["containers"]
    assert {e["name"]: e["value"] for e in server["env"]} == {
        "PORT": "5050", "PAYMENT_SERVICE_ADDR": "paymetnservce:50051",
        "EMAIL_SERVICE_ADDR": "emailservice:5000"}
    assert sidecar == {"name": "sidecar", "image": "busybox"}
    healed = kubectl_patch(tmp_path, broken, "heal-checkout-payment-addr.yaml")
    assert healed["spec"]["template"]["spec"]["containers"][0]["env"] == CHECKOUT_ENV


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
@pytest.mark.slow  # a subprocess
def test_cart_break_swaps_the_image_and_heal_restores_it(tmp_path: Path):
    original = boutique_deployment("cartservice", {"image": CART_IMAGE})
    broken = kubectl_patch(tmp_path, original, "break-cartservice-image.yaml")
    server, sidecar = broken["spec"]["template"]["spec"]["containers"]
    assert server["image"] == "redis:alpine" and server["ports"] == [{"containerPort": 5050}]
    assert sidecar["image"] == "busybox"
    healed = kubectl_patch(tmp_path, broken, "heal-cartservice-image.yaml")
    assert healed == original
