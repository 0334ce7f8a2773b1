"""Kubernetes object-name rules, checked before a name can become part of a URL path.

A name the model passes goes into ``/api/v1/namespaces/{namespace}/pods/{name}``; urllib3
collapses dot segments, so ``pod="."`` is a request on the pod *collection* and ``pod=".."``
one on the namespace itself. The API server itself validates names with these same rules
(k8s.io/apimachinery/pkg/util/validation: IsDNS1123Subdomain, IsDNS1123Label; pod, node,
service, deployment… names are DNS-1123 subdomains, namespaces and container names are
DNS-1123 labels), so a name that fails here cannot name a real object: refusing it loses
nothing and keeps every request on one named object.
"""

from __future__ import annotations

import re
from typing import Any

from budo.errors import ToolArgumentError

# apimachinery validation.go: dns1123LabelFmt and dns1123SubdomainFmt.
_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_LABEL_RE = re.compile(_LABEL)
_SUBDOMAIN_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
LABEL_MAX = 63        # validation.DNS1123LabelMaxLength
SUBDOMAIN_MAX = 253   # validation.DNS1123SubdomainMaxLength
_ENV_NAME_RE = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")  # validation.go envVarNameFmt


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _name_text(tool: str, arg: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ToolArgumentError(f"{tool}: {arg} must be a non-empty name, got {_shown(value)}")
    return value


def _not_valid(tool: str, arg: str, value: str, what: str) -> ToolArgumentError:
    return ToolArgumentError(f"{tool}: {arg} {_shown(value)} is not a valid {what}")


def check_label(tool: str, arg: str, value: Any) -> str:
    """A namespace or container name: a DNS-1123 label (≤ 63, lower-case alphanumerics and
    '-', starting and ending alphanumeric). Returns it; raises ToolArgumentError."""
    name = _name_text(tool, arg, value)
    if len(name) > LABEL_MAX or not _LABEL_RE.fullmatch(name):
        raise _not_valid(tool, arg, name, "Kubernetes name (a DNS-1123 label: at most "
                         f"{LABEL_MAX} lower-case letters, digits and '-', starting and ending "
                         "with a letter or digit); use list_namespaces or get_pods to find the "
                         "real name")
    return name


def check_subdomain(tool: str, arg: str, value: Any,
                    hint: str = "list the real names with get_pods") -> str:
    """An object name such as a pod's: a DNS-1123 subdomain (≤ 253, labels joined by '.').
    '.', '..', '/', '%', upper case, spaces and the empty string are refused."""
    name = _name_text(tool, arg, value)
    if len(name) > SUBDOMAIN_MAX or not _SUBDOMAIN_RE.fullmatch(name):
        raise _not_valid(tool, arg, name, "Kubernetes object name (a DNS-1123 subdomain: at "
                         f"most {SUBDOMAIN_MAX} lower-case letters, digits, '-' and '.', "
                         f"starting and ending with a letter or digit); {hint}")
    return name


def check_workload(tool: str, arg: str, value: Any) -> str:
    """A Deployment/StatefulSet/DaemonSet name: a DNS-1123 subdomain, like a pod's."""
    return check_subdomain(tool, arg, value, hint="a pod's owner workload is shown by "
                           "describe; use that name")


def check_env_name(tool: str, arg: str, value: Any) -> str:
    """An environment variable name as the API validates it (validation.IsEnvVarName:
    envVarNameFmt, and hasChDirPrefix refuses '.', '..' and a leading '..'). Newer API
    servers may relax this to any printable ASCII but '=' (RelaxedEnvironmentVariableValidation);
    budo keeps the strict rule every server accepts."""
    name = _name_text(tool, arg, value)
    if not _ENV_NAME_RE.fullmatch(name) or name == "." or name.startswith(".."):
        raise _not_valid(tool, arg, name, "environment variable name (letters, digits, '_', "
                         "'-', '.'; not starting with a digit, not '.' or '..')")
    return name


def check_object_ref(tool: str, arg: str, value: Any) -> str:
    """``name`` or ``kind/name`` (as kubectl writes it): the name part is a subdomain and the
    kind, when given, plain letters."""
    if isinstance(value, str) and value.count("/") == 1:
        kind, _, name = value.partition("/")
        if not re.fullmatch(r"[A-Za-z]{1,63}", kind):
            raise ToolArgumentError(f"{tool}: {arg} {_shown(value)} is not 'name' or "
                                    "'kind/name'")
        check_subdomain(tool, arg, name)
        return value
    return check_subdomain(tool, arg, value)


# Which arguments of which tools name objects, and by which rule. One table, so a new tool
# that names something has exactly one place to say so.
NAME_RULES: dict[str, dict[str, Any]] = {
    "get_pods": {"namespace": check_label},
    "get_events": {"namespace": check_label, "involved_object": check_object_ref},
    "describe": {"namespace": check_label, "name": check_subdomain},
    "recent_changes": {"namespace": check_label},
    "logs": {"namespace": check_label, "pod": check_subdomain, "container": check_label},
    "delete_pod": {"namespace": check_label, "pod": check_subdomain},
    # The remediation actions (agent/actions.py).
    "rollout_restart": {"namespace": check_label, "name": check_workload},
    "rollout_undo": {"namespace": check_label, "name": check_workload},
    "scale": {"namespace": check_label, "name": check_workload},
    "set_env": {"namespace": check_label, "name": check_workload, "container": check_label,
                "env_name": check_env_name},
}


def check_names(tool: str, args: dict[str, Any]) -> None:
    """Apply NAME_RULES to the (already type-checked) arguments of one call."""
    for arg, rule in NAME_RULES.get(tool, {}).items():
        if arg in args and args[arg] is not None:
            rule(tool, arg, args[arg])


def check_scope(tool: str, namespace: Any, allowed: tuple[str, ...]) -> None:
    """BUDO_NAMESPACES for a mutating call, before any card or request."""
    if allowed and namespace not in allowed:
        raise ToolArgumentError(
            f"{tool}: namespace {_shown(namespace)} is outside BUDO_NAMESPACES; budo may only "
            f"act in: {', '.join(allowed)}. The action was NOT requested.")
