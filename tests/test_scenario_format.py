"""The scenario format: every bundled scenario loads, expansion is realistic, and malformed
files fail with a message naming the file, the path inside it and the problem."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from budo.errors import ScenarioError
from scenarios import bundled_scenarios, load_scenario

FRONTEND = "frontend-s58x6nq864-p22sv"


@pytest.mark.parametrize("name", bundled_scenarios())
def test_every_bundled_scenario_validates(name: str) -> None:
    scenario = load_scenario(name)
    assert scenario.name == name
    assert scenario.question and scenario.expect_root_cause and scenario.script
    assert "answer" in scenario.script[-1]
    # The golden answer must satisfy the scenario's own expectations.
    answer = scenario.script[-1]["answer"]
    assert scenario.check_verdict({"root_cause": answer, "fix": answer}) == []


def test_bundled_names_leave_out_bases() -> None:
    names = bundled_scenarios()
    assert "checkout-typo" in names
    assert not any(n.startswith("_") for n in names)


def test_shop_base_expands_to_a_healthy_online_boutique() -> None:
    shop = load_scenario("_shop")
    deployments = {d["metadata"]["name"] for d in shop.of_kind("Deployment", "shop")}
    assert deployments == {
        "frontend", "checkoutservice", "paymentservice", "cartservice", "redis-cart",
        "productcatalogservice", "currencyservice", "shippingservice", "emailservice",
        "recommendationservice", "adservice", "loadgenerator"}
    assert len(shop.of_kind("Node")) == 3
    for pod in shop.of_kind("Pod"):
        assert pod["status"]["phase"] == "Running"
        assert all(c["ready"] for c in pod["status"]["containerStatuses"])
        owner = pod["metadata"]["ownerReferences"][0]
        assert owner["kind"] == "ReplicaSet" and pod["metadata"]["name"].startswith(owner["name"])
        assert shop.find("ReplicaSet", owner["name"], pod["metadata"]["namespace"])
    dns = shop.find("Service", "kube-dns", "kube-system")
    assert dns and dns["spec"]["clusterIP"] == "10.96.0.10"
    endpoints = shop.find("Endpoints", "paymentservice", "shop")
    assert endpoints and len(endpoints["subsets"][0]["addresses"]) == 1
    assert shop.logs[("shop", FRONTEND, "server")].current.count("\n") > 100


def test_checkout_typo_has_the_typo_and_everything_running() -> None:
    s = load_scenario("checkout-typo")
    env = s.find("Deployment", "checkoutservice", "shop")["spec"]["template"]["spec"][
        "containers"][0]["env"]
    assert {"name": "PAYMENT_SERVICE_ADDR", "value": "paymetnservce:50051"} in env
    assert {"name": "EMAIL_SERVICE_ADDR", "value": "emailservice:5000"} in env  # base kept
    assert all(p["status"]["phase"] == "Running" for p in s.of_kind("Pod", "shop"))
    frontend = s.logs[("shop", FRONTEND, "server")].current
    assert "lookup paymetnservce on 10.96.0.10:53: no such host" in frontend
    checkout = s.logs[("shop", s.pod_for("checkoutservice"), "server")].current
    assert "[PlaceOrder]" in checkout and "paymetnservce" not in checkout
    assert any(e["type"] == "Warning" for e in s.of_kind("Event", "shop"))  # red herring


def test_check_verdict_reports_unmet_expectations() -> None:
    s = load_scenario("checkout-typo")
    good = {"root_cause": "checkoutservice has PAYMENT_SERVICE_ADDR=paymetnservce:50051",
            "fix": "kubectl -n shop set env deploy/checkoutservice "
                   "PAYMENT_SERVICE_ADDR=paymentservice:50051"}
    assert s.check_verdict(good) == []
    unmet = s.check_verdict({"root_cause": "a kernel bug", "fix": ""})
    assert len(unmet) == 3 and unmet[0].startswith("root_cause does not match")


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(body))
    return path


GOOD_TAIL = """
question: what is wrong?
expect: {root_cause: [checkoutservice]}
script:
  - calls: [{tool: get_pods, args: {namespace: shop}}]
  - answer: "ROOT CAUSE: checkoutservice"
"""


@pytest.mark.parametrize(("body", "path", "problem"), [
    ("workloads:\n  - {name: checkoutservice, env: [PORT]}\n", "workloads[0].env[0]",
     "expected {name: X"),
    ("workloads:\n  - {name: checkoutservice, env: {PORT: {a: 1}}}\n",
     "workloads[0].env.PORT", "expected a mapping of NAME: value"),
    ("workloads:\n  - {name: checkoutservice, replicas: two}\n", "workloads[0].replicas",
     "whole number"),
    ("workloads:\n  - {name: checkoutservice, stat: crashloop}\n", "workloads[0].stat",
     "unknown key"),
    ("workloads:\n  - {name: checkoutservice, state: exploded}\n", "workloads[0].state",
     "expected one of running"),
    ("events:\n  - {object: Pod/shop/frontend, reason: X, message: y, last: yesterday}\n",
     "events[0].last", "RFC3339"),
    ("logs:\n  shop/nosuchpod/server: hello\n", "logs.shop/nosuchpod/server", "no pod"),
    ("logs:\n  shop/frontend/sidecar: hello\n", "logs.shop/frontend/sidecar",
     "has no container 'sidecar'"),
    ("remove: [Service/shop/nosuch]\n", "remove[0]", "no object"),
    ('workloads:\n  - {name: "checkoutservice\\n"}\n', "workloads[0].name",
     "not a valid Kubernetes name"),
])
def test_malformed_workloads_events_logs(tmp_path: Path, body: str, path: str,
                                         problem: str) -> None:
    file = _write(tmp_path, "broken", "name: broken\ntitle: t\nextends: _shop\n" + body
                  + GOOD_TAIL)
    with pytest.raises(ScenarioError) as info:
        load_scenario(file)
    assert info.value.file == "broken.yaml"
    assert info.value.path == path
    assert problem in info.value.problem
    assert str(info.value).startswith(f"broken.yaml: {path}: ")


@pytest.mark.parametrize(("replace", "by", "path", "problem"), [
    ("name: broken", "name: other", "name", "must equal the file name"),
    ("question: what is wrong?\n", "", "question", "required"),
    ("[checkoutservice]", "['(unclosed']", "expect.root_cause[0]", "invalid regex"),
    ("tool: get_pods", "tool: rm_rf", "script[0].calls[0].tool", "unknown tool"),
    ('  - answer: "ROOT CAUSE: checkoutservice"\n', "", "script[0]",
     "the last step must be an answer"),
    ('answer: "ROOT CAUSE: checkoutservice"', 'answer: "ROOT CAUSE: dns"', "script[1].answer",
     "does not match expect.root_cause[0]"),
    ("extends: _shop", "extends: _nosuch", "extends", "no base scenario"),
    ("args: {namespace: shop}", "args: {namespace: shop, pod: ghost-1}",
     "script[0].calls[0].args", "no pod or workload 'ghost-1'"),
])
def test_malformed_top_level_and_script(tmp_path: Path, replace: str, by: str, path: str,
                                        problem: str) -> None:
    text = "name: broken\ntitle: t\nextends: _shop\n" + GOOD_TAIL
    assert replace in text
    file = _write(tmp_path, "broken", text.replace(replace, by))
    with pytest.raises(ScenarioError) as info:
        load_scenario(file)
    assert (info.value.path, info.value.file) == (path, "broken.yaml")
    assert problem in info.value.problem


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    file = _write(tmp_path, "broken", "name: broken\ntitle: [unclosed\n")
    with pytest.raises(ScenarioError, match=r"^broken\.yaml: line \d+: invalid YAML"):
        load_scenario(file)


def test_unknown_scenario_lists_the_bundled_names() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario("no-such-incident")
    assert "checkout-typo" in str(info.value) and "\n" not in str(info.value)


def test_a_minimal_standalone_scenario_with_generators_and_states(tmp_path: Path) -> None:
    file = _write(tmp_path, "mini", """
        name: mini
        title: standalone
        namespace: demo
        now: "2025-01-01T12:00:00Z"
        nodes: [{name: node-a}]
        workloads:
          - name: api
            image: example/api:1
            ports: [8080]
            replicas: 2
            state: crashloop
            reason: OOMKilled
            exitCode: 137
            pods: [{}, {state: running}]
            containers: [{name: proxy, image: envoy:1}]
          - name: db
            kind: StatefulSet
            image: postgres:16
            ports: [5432]
        logs:
          demo/api/server:
            current:
              - {repeat: 3, step: 10s, end: -1m, lines: ["tick {i}"]}
              - "2025-01-01T11:58:55Z boom"
            previous: "2025-01-01T11:50:00Z fatal error: out of memory"
        expect: {root_cause: [OOM]}
        script:
          - answer: "ROOT CAUSE: OOM in api"
        question: why?
        """)
    s = load_scenario(file)
    pods = s.of_kind("Pod", "demo")
    api0, api1 = [p for p in pods if p["metadata"]["name"].startswith("api-")]
    main0 = api0["status"]["containerStatuses"][0]
    assert main0["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert main0["lastState"]["terminated"] == main0["lastState"]["terminated"] | {
        "reason": "OOMKilled", "exitCode": 137}
    assert main0["restartCount"] == 5 and api0["status"]["phase"] == "Running"
    assert api1["status"]["containerStatuses"][0]["ready"] is True
    endpoints = s.find("Endpoints", "api", "demo")["subsets"][0]
    assert [a["targetRef"]["name"] for a in endpoints["addresses"]] == [api1["metadata"]["name"]]
    assert [a["targetRef"]["name"] for a in endpoints["notReadyAddresses"]] == [
        api0["metadata"]["name"]]
    assert s.find("Pod", "db-0", "demo")["metadata"]["ownerReferences"][0]["kind"] == \
        "StatefulSet"
    text = s.logs[("demo", api0["metadata"]["name"], "server")].current.splitlines()
    assert [line.split(" ", 1)[1] for line in text] == ["tick 0", "tick 1", "boom", "tick 2"]
    # Names are stable: the same file gives the same pod names every time.
    assert load_scenario(file).pod_names("demo") == s.pod_names("demo")
