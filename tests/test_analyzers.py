"""The analyzer catalogue, object family by family: each fault stated from the fields that
prove it, and the healthy or ambiguous shapes that must stay quiet (or rank low)."""

from __future__ import annotations

from typing import Any

from agent.analyzers import capacity, network, storage, workloads
from agent.analyzers.changes import template_diff
from agent.analyzers.common import CRITICAL, INFO, WARNING, EventIndex, Finding, ranked
from agent.analyzers.pods import exit_meaning, pod_findings, probe_port_findings


def pod(name: str = "web-1", *, phase: str = "Running", statuses: list[dict[str, Any]] | None
        = None, containers: list[dict[str, Any]] | None = None, init: list[dict[str, Any]]
        | None = None, init_statuses: list[dict[str, Any]] | None = None,
        **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": containers or [{"name": "server", "image": "web:1"}],
                 "initContainers": init or []},
        "status": {"phase": phase, "containerStatuses": statuses or [],
                   "initContainerStatuses": init_statuses or [], **status},
    }


def event(name: str, reason: str, message: str, kind: str = "Pod") -> dict[str, Any]:
    return {"involvedObject": {"kind": kind, "name": name}, "reason": reason,
            "message": message, "lastTimestamp": "2025-03-14T10:00:00Z"}


# --- pods -------------------------------------------------------------------------------------


def test_exit_codes_say_what_they_mean() -> None:
    assert "OOM killer" in exit_meaning(137)
    assert "SIGTERM" in exit_meaning(143)
    assert "not found" in exit_meaning(127) and "not executable" in exit_meaning(126)
    assert "StartError" in exit_meaning(128)
    assert "signal 11" not in exit_meaning(139) and "SIGSEGV" in exit_meaning(139)
    assert "CPU architecture" in exit_meaning(1, "exec /app: exec format error")
    assert exit_meaning(42) == ""


def test_start_error_message_is_shown_with_its_meaning() -> None:
    message = ('exec: "/app/bin/x.sh": stat /app/bin/x.sh: no such file or directory')
    p = pod(statuses=[{"name": "server", "restartCount": 4, "ready": False,
                       "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                       "lastState": {"terminated": {"reason": "StartError", "exitCode": 128,
                                                    "message": message}}}])
    [finding] = pod_findings(p)
    assert "stat /app/bin/x.sh: no such file" in finding and "exit code 128" in finding
    assert finding.severity == CRITICAL


def test_image_pull_split_by_cause_from_the_kubelet_event() -> None:
    def pulling(message: str) -> str:
        p = pod(phase="Pending", statuses=[{"name": "server", "image": "r/web:v9",
                "ready": False, "state": {"waiting": {"reason": "ErrImagePull"}}}])
        [finding] = pod_findings(p, [event("web-1", "Failed", message)])
        return finding

    assert "does not exist" in pulling('Failed to pull image "r/web:v9": rpc error: '
                                       'r/web:v9: not found')
    unauthorized = pulling('Failed to pull image "r/web:v9": ... failed to authorize: '
                           + "x" * 300 + " 403 Forbidden")
    assert "imagePullSecret" in unauthorized and "403 Forbidden" in unauthorized
    assert "rate limiting" in pulling('Failed to pull image "r/web:v9": 429 toomanyrequests')


def test_init_container_failure_and_config_error_name_their_container() -> None:
    p = pod(phase="Pending", init=[{"name": "migrate", "image": "m:1"}], init_statuses=[{
        "name": "migrate", "restartCount": 2, "ready": False,
        "state": {"terminated": {"reason": "Error", "exitCode": 127,
                                 "message": "sh: migrate: not found"}}}])
    [finding] = pod_findings(p)
    assert "init container migrate" in finding and "exit code 127" in finding
    assert "sh: migrate: not found" in finding
    key = pod(phase="Pending", statuses=[{"name": "server", "ready": False, "state": {
        "waiting": {"reason": "CreateContainerConfigError",
                    "message": "couldn't find key password in Secret shop/db"}}}])
    assert "couldn't find key password in Secret shop/db" in pod_findings(key)[0]


def test_pending_says_which_scheduling_constraint_and_evicted_pods_say_why() -> None:
    p = pod(phase="Pending", conditions=[{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 node(s) had untolerated taint "
                   "{dedicated: gpu}."}])
    assert "taints the pod does not tolerate" in pod_findings(p)[0]
    evicted = pod(phase="Failed", reason="Evicted",
                  message="The node was low on resource: ephemeral-storage.")
    assert "Evicted: The node was low on resource: ephemeral-storage." in pod_findings(evicted)[0]


def test_volume_events_and_liveness_kills_are_findings() -> None:
    p = pod(phase="Pending", statuses=[{"name": "server", "ready": False, "state": {
        "waiting": {"reason": "ContainerCreating"}}}])
    found = pod_findings(p, [event("web-1", "FailedMount", 'MountVolume.SetUp failed for '
                                   'volume "cfg" : configmap "cfg" not found')])
    assert found == ['pod web-1 FailedMount: MountVolume.SetUp failed for volume "cfg" : '
                     'configmap "cfg" not found']
    spec = [{"name": "server", "image": "web:1", "livenessProbe": {"httpGet": {"port": 8080}},
             "resources": {"limits": {"cpu": "20m"}}}]
    starved = pod(containers=spec, statuses=[{
        "name": "server", "ready": True, "restartCount": 3, "state": {"running": {}},
        "lastState": {"terminated": {"reason": "Error", "exitCode": 143}}}])
    found = pod_findings(starved, [event("web-1", "Unhealthy", "Liveness probe failed: "
                                         "context deadline exceeded")])
    assert any("killed by its livenessProbe" in f and "cpu limit 20m" in f for f in found)


def test_probe_ports_checked_against_declared_ports() -> None:
    named = pod(containers=[{"name": "server", "image": "w", "ports": [
        {"name": "http", "containerPort": 8080}], "readinessProbe": {
        "httpGet": {"port": "metrics", "path": "/"}}}])
    assert "port name 'metrics'" in probe_port_findings(named)[0]
    wrong = pod(containers=[{"name": "server", "image": "w", "ports": [
        {"containerPort": 7000}], "readinessProbe": {"grpc": {"port": 7001}}}],
        statuses=[{"name": "server", "ready": False, "state": {"running": {}}}])
    [finding] = probe_port_findings(wrong)
    assert "targets port 7001" in finding and finding.severity == CRITICAL
    undeclared = pod(containers=[{"name": "server", "image": "w", "readinessProbe": {
        "tcpSocket": {"port": 9999}}}])
    assert probe_port_findings(undeclared) == []  # declaring ports is optional


def test_event_index_is_built_once_and_looked_up_by_name() -> None:
    events = [event(f"pod-{i}", "Unhealthy", f"m{i}") for i in range(10_000)]
    index = EventIndex(events)
    assert index.message("pod-9999", "Unhealthy") == "m9999"
    assert index.about("nobody") == []


def test_findings_rank_most_severe_first_and_drop_duplicates() -> None:
    found = [Finding("info", INFO), Finding("crit", CRITICAL), Finding("warn", WARNING),
             Finding("crit", CRITICAL)]
    assert ranked(found) == ["crit", "warn", "info"]


# --- workloads ----------------------------------------------------------------------------------


def rs(name: str, revision: int, ready: int, want: int, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "annotations": {
        "deployment.kubernetes.io/revision": str(revision)},
        "ownerReferences": [{"kind": "Deployment", "name": "web", "controller": True}]},
        "spec": {"replicas": want, "template": {}},
        "status": {"readyReplicas": ready, **status}}


def test_stuck_rollout_and_failed_create_name_the_denial() -> None:
    deploy = {"metadata": {"name": "web"}, "spec": {"replicas": 2}, "status": {"conditions": [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
         "message": 'ReplicaSet "web-2" has timed out progressing.'}]}}
    quota = ('pods "web-2-x" is forbidden: exceeded quota: q, requested: limits.memory=1Gi, '
             'used: limits.memory=3Gi, limited: limits.memory=4Gi')
    new = rs("web-2", 2, 0, 2, conditions=[{"type": "ReplicaFailure", "status": "True",
                                            "reason": "FailedCreate", "message": quota}])
    found = workloads.deployment_findings(deploy, [new, rs("web-1", 1, 2, 2)])
    text = "\n".join(found)
    assert "ProgressDeadlineExceeded" in text
    assert "rollout of revision 2 is stuck" in text and "web-1 (revision 1, 2 ready)" in text
    assert "exceeded quota" in text and "a ResourceQuota is exhausted" in text


def test_statefulset_and_daemonset_failed_create_name_the_denial() -> None:
    denied = ('pods "db-0" is forbidden: violates PodSecurity "restricted:latest": '
              'privileged (container "db" must not set securityContext.privileged=true)')
    events = EventIndex([{"involvedObject": {"kind": kind, "name": "db"},
                          "reason": "FailedCreate", "message": denied}
                         for kind in ("StatefulSet", "DaemonSet")])
    sts = {"metadata": {"name": "db"}, "spec": {"replicas": 1}, "status": {}}
    ds = {"metadata": {"name": "db"}, "status": {"desiredNumberScheduled": 2}}
    for found, kind in ((workloads.statefulset_findings(sts, events), "statefulset"),
                        (workloads.daemonset_findings(ds, events), "daemonset")):
        assert found[0].startswith(f"{kind} db cannot create pods (FailedCreate): pods ")
        assert found[0].endswith("— Pod Security admission denied it")
        assert found[0].severity == CRITICAL and len(found) == 2   # and short of ready
    assert workloads.statefulset_findings(sts)[0].startswith("statefulset db has 0/1")


def test_jobs_and_cronjobs() -> None:
    job = {"metadata": {"name": "export-1", "ownerReferences": [
        {"kind": "CronJob", "name": "export", "controller": True}],
        "creationTimestamp": "2025-03-14T02:00:00Z"}, "spec": {"backoffLimit": 2},
        "status": {"failed": 3, "conditions": [{"type": "Failed", "status": "True",
                   "reason": "BackoffLimitExceeded", "message": "Job has reached the "
                   "specified backoff limit"}]}}
    assert "BackoffLimitExceeded" in workloads.job_findings(job)[0]
    cron = {"metadata": {"name": "export", "creationTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {"schedule": "0 2 * * *", "suspend": True}, "status": {}}
    found = workloads.cronjob_findings(cron, [job], None)
    assert any("suspended" in f for f in found)
    assert any("1 of its last 1 jobs failed" in f for f in found)


# --- networking -------------------------------------------------------------------------------


def svc(name: str, port: int = 80, target: Any = 8080, selector: dict[str, str] | None = None
        ) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"selector": selector or {"app": name},
            "ports": [{"port": port, "targetPort": target}]}}


def test_env_address_port_and_typo_checks() -> None:
    services = [svc("payments", 50051, 50051)]
    containers = [{"name": "c", "env": [
        {"name": "PAYMENTS_ADDR", "value": "payments:5005"},
        {"name": "LEDGER_URL", "value": "http://paymants:50051/x"},
        {"name": "FEATURE_SERVICE", "value": "true"},
        {"name": "EXTERNAL_HOST", "value": "api.stripe.com"}]}]
    found = network.env_host_findings("deployment web", containers, services, "shop")
    assert any("does not expose port 5005" in f for f in found)
    assert any("closest Service is 'payments'" in f for f in found)
    assert len(found) == 2
    far = network.env_host_findings("deployment web", [{"name": "c", "env": [
        {"name": "X_ADDR", "value": "somethingelse:80"}]}], services, "shop")
    assert far[0].severity == WARNING  # nothing like it: maybe optional, ranked lower


def test_env_from_configmap_is_checked() -> None:
    found = network.env_host_findings(
        "deployment web", [{"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}}]}],
        [svc("redis")], "shop", config={"cfg": {"REDIS_HOST": "rediss"}})
    assert found and "(from ConfigMap cfg)" in found[0]


def test_service_target_port_number_and_name() -> None:
    pods = [pod(containers=[{"name": "s", "image": "i", "ports": [
        {"name": "grpc", "containerPort": 50051}]}])]
    by_number = network.target_port_findings(svc("pay", 50051, 8080), pods)
    assert "targets 8080, but its pods" in by_number[0]
    by_name = network.target_port_findings(svc("pay", 50051, "http"), pods)
    assert "port name 'http'" in by_name[0]
    assert network.target_port_findings(svc("pay", 50051, "grpc"), pods) == []


def test_ingress_backends_and_tls() -> None:
    ingress = {"metadata": {"name": "shop"}, "spec": {
        "tls": [{"hosts": ["shop.example.com"], "secretName": "tls"}],
        "rules": [{"host": "shop.example.com", "http": {"paths": [
            {"path": "/", "backend": {"service": {"name": "frontend-svc", "port": {
                "number": 80}}}},
            {"path": "/api", "backend": {"service": {"name": "frontend", "port": {
                "number": 8080}}}}]}}]}}
    found = network.ingress_findings(ingress, [svc("frontend")], None, secrets=[])
    text = "\n".join(found)
    assert "'frontend-svc', which does not exist; closest Service is 'frontend'" in text
    assert "port 8080, which it does not expose" in text
    assert "Secret 'tls', which does not exist" in text
    assert network.ingress_findings(ingress, [svc("frontend")], None, secrets=None)[-1] \
        .find("Secret") == -1  # secrets unreadable: not claimed missing


def test_network_policy_that_shuts_out_a_configured_caller() -> None:
    redis = svc("redis", 6379, 6379)
    policy = {"metadata": {"name": "lock"}, "spec": {
        "podSelector": {"matchLabels": {"app": "redis"}}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "cart-service"}}}]}]}}
    caller = {"metadata": {"labels": {"app": "cartservice"}}}
    [finding] = network.network_policy_findings([policy], [("deployment cart", caller, redis)])
    assert "NetworkPolicy lock" in finding and "deployment cart" in finding
    allowed = {"metadata": {"labels": {"app": "cart-service"}}}
    assert network.network_policy_findings([policy], [("x", allowed, redis)]) == []


def test_dns_failures_point_at_a_missing_service_or_at_cluster_dns() -> None:
    typo = ["dial tcp: lookup paymnts on 10.96.0.10:53: no such host"]
    [finding] = network.dns_findings(typo, "shop", ["payments"], [])
    assert "closest Service is 'payments'" in finding
    timeout = ["lookup payments on 10.96.0.10:53: read udp 10.0.0.1:3->10.96.0.10:53: "
               "i/o timeout"]
    down = pod("coredns-1", statuses=[{"name": "coredns", "ready": False, "state": {}}])
    [finding] = network.dns_findings(timeout, "shop", ["payments"], [down])
    assert "0/1 pods ready" in finding
    [scoped] = network.dns_findings(timeout, "shop", ["payments"], None)
    assert "outside budo's read scope" in scoped


# --- storage and capacity ---------------------------------------------------------------------


def test_pvc_pending_reasons() -> None:
    claim = {"metadata": {"name": "data"}, "spec": {"storageClassName": "premium-rwo-ssd",
             "resources": {"requests": {"storage": "1Gi"}}}, "status": {"phase": "Pending"}}
    classes = [{"metadata": {"name": "premium-rwo"}}, {"metadata": {"name": "standard",
                                                                  "annotations": {
        storage.DEFAULT_CLASS: "true"}}, "volumeBindingMode": "WaitForFirstConsumer"}]
    assert ("(1Gi) is Pending: StorageClass 'premium-rwo-ssd' does not exist; closest "
            "StorageClass is 'premium-rwo'") in storage.pvc_findings(claim, classes)[0]
    waiting = {**claim, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}
    [info] = storage.pvc_findings(waiting, classes)
    assert "WaitForFirstConsumer" in info and info.severity == INFO
    released = {"metadata": {"name": "pv-1"}, "spec": {"claimRef": {"namespace": "a",
                "name": "b"}, "persistentVolumeReclaimPolicy": "Retain"},
                "status": {"phase": "Released"}}
    assert "Released" in storage.pv_findings(released)[0]


def test_quota_limitrange_hpa_pdb_and_nodes() -> None:
    quota = {"metadata": {"name": "q"}, "status": {"hard": {"limits.memory": "4Gi",
             "pods": "30"}, "used": {"limits.memory": "4096Mi", "pods": "12"}}}
    assert "limits.memory 4096Mi/4Gi" in capacity.quota_findings(quota)[0]
    limits = {"metadata": {"name": "lr"}, "spec": {"limits": [
        {"type": "Container", "max": {"memory": "2Gi"}}]}}
    template = {"spec": {"containers": [{"name": "c", "resources": {"limits": {
        "memory": "3Gi"}}}]}}
    assert "above LimitRange lr max 2Gi" in capacity.limitrange_findings(
        limits, [("deployment web", template)])[0]
    hpa = {"metadata": {"name": "web"}, "spec": {"maxReplicas": 3, "scaleTargetRef": {
        "kind": "Deployment", "name": "web"}}, "status": {"currentReplicas": 3, "conditions": [
            {"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric",
             "message": "unable to get metrics"}]}}
    text = "\n".join(capacity.hpa_findings(hpa, {("Deployment", "api")}))
    assert "which does not exist" in text and "FailedGetResourceMetric" in text
    assert "maxReplicas (3/3)" in text
    pdb = {"metadata": {"name": "p"}, "spec": {"minAvailable": 1}, "status": {
        "disruptionsAllowed": 0, "expectedPods": 1, "currentHealthy": 1}}
    assert capacity.pdb_findings(pdb, draining=False)[0].severity == INFO
    assert capacity.pdb_findings(pdb, draining=True)[0].severity == CRITICAL
    node = {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}, "status": {
        "conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady",
                        "message": "PLEG is not healthy"},
                       {"type": "DiskPressure", "status": "True", "reason": "KubeletHasDisk"}]}}
    text = "\n".join(capacity.node_findings(node))
    assert "NotReady" in text and "DiskPressure" in text and "cordoned" in text


# --- what changed -----------------------------------------------------------------------------


def test_template_diff_old_to_new() -> None:
    old = {"spec": {"containers": [{"name": "s", "image": "a:1", "env": [
        {"name": "ADDR", "value": "payments:1"}, {"name": "GONE", "value": "x"}],
        "resources": {"limits": {"memory": "128Mi"}}}]}}
    new = {"spec": {"containers": [{"name": "s", "image": "a:2", "env": [
        {"name": "ADDR", "value": "paymnts:1"},
        {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}],
        "resources": {"limits": {"memory": "64Mi"}}}]}}
    lines = template_diff(old, new)
    assert "container s image: a:1 → a:2" in lines
    assert "container s env ADDR: payments:1 → paymnts:1" in lines
    assert "container s env GONE: x → <unset>" in lines
    assert "container s env PW: <unset> → <secretKeyRef db/pw>" in lines
    assert "container s resources limits.memory: 128Mi → 64Mi" in lines
    assert template_diff(old, old) == []


def test_findings_fit_the_clip_tail_keeping_the_most_severe() -> None:
    from agent.analyzers.common import fit

    many = [Finding(f"warning {i} " + "x" * 200, WARNING) for i in range(30)]
    worst = Finding("the cause", CRITICAL)
    kept = fit([*many, worst])
    assert kept[0] == "the cause"
    assert sum(len(f) + 11 for f in kept) <= 2800 + 120
    assert kept[-1].startswith(f"{31 - len(kept) + 1} more, less severe finding(s) not shown")
    assert fit(many[:2]) == many[:2]


def test_statefulset_change_from_its_controller_revisions() -> None:
    """A StatefulSet keeps its templates in ControllerRevisions (data.spec.template)."""
    from datetime import UTC, datetime

    from agent.changes import _revisions, change_lines

    def revision(n: int, image: str, created: str) -> dict[str, Any]:
        return {"metadata": {"name": f"db-{n}", "creationTimestamp": created,
                             "ownerReferences": [{"kind": "StatefulSet", "name": "db",
                                                  "controller": True}]},
                "revision": n, "data": {"spec": {"template": {"spec": {"containers": [
                    {"name": "pg", "image": image}]}}}}}

    sts = {"metadata": {"name": "db"}}
    history = _revisions("statefulset", sts, [], [
        revision(1, "postgres:15", "2025-03-01T00:00:00Z"),
        revision(2, "postgres:16", "2025-03-14T10:00:00Z")])
    [(_when, lines)] = change_lines("statefulset", "db", history,
                                   datetime(2025, 3, 14, 10, 30, tzinfo=UTC))
    assert lines[0].startswith("statefulset db revision 1 → 2, 30m ago (2025-03-14 10:00:00Z)")
    assert lines[1] == "  container pg image: postgres:15 → postgres:16"
