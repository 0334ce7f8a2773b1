"""Kubernetes name rules (apimachinery IsDNS1123Label / IsDNS1123Subdomain) on the check hook:
what a real API server accepts passes, everything that could bend a URL path is a tool error."""

from __future__ import annotations

import pytest

from agent.names import check_env_name, check_label, check_subdomain
from agent.tools import check_call
from budo.errors import ToolArgumentError

GOOD_PODS = ["a", "0", "checkoutservice-7d9f8c6b5d-abcde", "web-0", "a.b.c", "x" * 253,
             "redis-cart.shop-1"]
BAD_PODS = [".", "..", "", "/", "a/b", "../x", "x/..", "%2e%2e", "A", "a_b", "-a", "a-", "a..b",
            "a.-b", ".a", "a.", "x" * 254, "a b", "a\n", "сheckout", "a\u200bb", "a?b", "a#b"]


@pytest.mark.parametrize("name", GOOD_PODS)
def test_real_pod_names_pass(name: str) -> None:
    assert check_subdomain("delete_pod", "pod", name) == name


@pytest.mark.parametrize("name", BAD_PODS)
def test_names_that_are_not_names_are_tool_errors(name: str) -> None:
    with pytest.raises(ToolArgumentError, match="not a valid Kubernetes"
                       if name else "non-empty"):
        check_subdomain("delete_pod", "pod", name)


@pytest.mark.parametrize("namespace", ["shop", "kube-system", "a" * 63])
def test_namespaces_are_labels(namespace: str) -> None:
    assert check_label("get_pods", "namespace", namespace) == namespace


@pytest.mark.parametrize("namespace", ["a" * 64, "shop.prod", "Shop", "", "..", "shop/"])
def test_bad_namespaces(namespace: str) -> None:
    with pytest.raises(ToolArgumentError):
        check_label("get_pods", "namespace", namespace)


@pytest.mark.parametrize("args", [
    {"namespace": "shop", "pod": None}, {"namespace": "shop", "pod": 1},
    {"namespace": "shop", "pod": ["a"]}, {"namespace": ["shop"], "pod": "a"},
    {"namespace": "shop", "pod": "a", "force": True},
])
def test_check_hook_refuses_non_strings_missing_and_extra(args) -> None:
    with pytest.raises(ToolArgumentError):
        check_call("delete_pod", ("shop",), args)


def test_scope_applies_to_mutating_tools_only() -> None:
    with pytest.raises(ToolArgumentError, match="outside BUDO_NAMESPACES"):
        check_call("delete_pod", ("shop",), {"namespace": "kube-system", "pod": "coredns-0"})
    # Reads are scoped by the Cluster itself (before any request), not refused here.
    assert check_call("get_pods", ("shop",), {"namespace": "kube-system"}) == {
        "namespace": "kube-system"}
    assert check_call("delete_pod", (), {"namespace": "kube-system", "pod": "coredns-0"})


# validation.IsEnvVarName's own examples pass; what it refuses (envVarNameFmt, hasChDirPrefix)
# is refused here too.
GOOD_ENV = ["PAYMENT_SERVICE_ADDR", "my.env-name", "MY_ENV.NAME", "MyEnvName1", "_x", "-x", ".x",
            "x..y"]
BAD_ENV = ["", "1BAD", "A=B", "A B", "A\n", ".", "..", "..x", "ÄB", "A$B", "A;B", "\x1b[2J"]


@pytest.mark.parametrize("name", GOOD_ENV)
def test_env_var_names_the_api_accepts_pass(name: str) -> None:
    assert check_env_name("set_env", "env_name", name) == name


@pytest.mark.parametrize("name", BAD_ENV)
def test_env_var_names_the_api_refuses_are_tool_errors(name: str) -> None:
    with pytest.raises(ToolArgumentError):
        check_env_name("set_env", "env_name", name)


@pytest.mark.parametrize("args", [
    {"namespace": "shop", "kind": "deployment", "name": ".."},
    {"namespace": "shop", "kind": "deployment", "name": 7},
    {"namespace": "Shop", "kind": "deployment", "name": "web"},
    {"namespace": "shop", "kind": "deployment", "name": "web/../x"},
])
def test_the_actions_use_the_same_rules(args) -> None:
    from agent.actions import PARAMETERS
    from agent.arguments import validate_arguments

    with pytest.raises(ToolArgumentError):
        validate_arguments("rollout_restart", PARAMETERS["rollout_restart"], args)


def test_every_argument_that_names_an_object_has_a_rule() -> None:
    """A new tool whose namespace, pod, name or container goes into a URL path must say so in
    NAME_RULES; ".." in any of them would otherwise reach the path."""
    from agent.actions import PARAMETERS as ACTIONS
    from agent.names import NAME_RULES
    from agent.tools import PARAMETERS

    naming = {"namespace", "pod", "name", "container", "involved_object", "env_name"}
    missing = [f"{tool}.{arg}" for tool, schema in {**PARAMETERS, **ACTIONS}.items()
               for arg in schema["properties"] if arg in naming
               and arg not in NAME_RULES.get(tool, {})]
    assert missing == []
    with pytest.raises(ToolArgumentError, match="not a valid Kubernetes"):
        check_call("recent_changes", (), {"namespace": ".."})
