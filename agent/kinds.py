"""The one catalogue of Kubernetes kinds budo reads and acts on: the client API and method
behind each, whether it is namespaced, the word a message uses for it, the names a person or a
model may type for it (``ALIASES``), and the RBAC (apiGroup, resource) it needs — what
manifests/rbac-read.yaml grants (tests/test_manifests.py checks the two agree)."""

from __future__ import annotations

# Canonical kind -> (API class, method stem, namespaced). ``read_<stem>`` reads one object,
# ``list_<stem>`` lists them (``read_namespaced_pod`` / ``list_namespaced_pod``).
KINDS: dict[str, tuple[str, str, bool]] = {
    "pod": ("core", "namespaced_pod", True),
    "service": ("core", "namespaced_service", True),
    "endpoints": ("core", "namespaced_endpoints", True),
    "configmap": ("core", "namespaced_config_map", True),
    "secret": ("core", "namespaced_secret", True),
    "serviceaccount": ("core", "namespaced_service_account", True),
    "pvc": ("core", "namespaced_persistent_volume_claim", True),
    "resourcequota": ("core", "namespaced_resource_quota", True),
    "limitrange": ("core", "namespaced_limit_range", True),
    "event": ("core", "namespaced_event", True),
    "node": ("core", "node", False),
    "pv": ("core", "persistent_volume", False),
    "deployment": ("apps", "namespaced_deployment", True),
    "replicaset": ("apps", "namespaced_replica_set", True),
    "statefulset": ("apps", "namespaced_stateful_set", True),
    "daemonset": ("apps", "namespaced_daemon_set", True),
    "controllerrevision": ("apps", "namespaced_controller_revision", True),
    "job": ("batch", "namespaced_job", True),
    "cronjob": ("batch", "namespaced_cron_job", True),
    "ingress": ("networking", "namespaced_ingress", True),
    "networkpolicy": ("networking", "namespaced_network_policy", True),
    "hpa": ("autoscaling", "namespaced_horizontal_pod_autoscaler", True),
    "pdb": ("policy", "namespaced_pod_disruption_budget", True),
    "endpointslice": ("discovery", "namespaced_endpoint_slice", True),
    "storageclass": ("storage", "storage_class", False),
}
# The RBAC (apiGroup, resource) each kind is read through: manifests/rbac-read.yaml grants
# exactly these (plus pods/log and namespaces), and tests/test_manifests.py checks it.
RBAC_GROUPS = {"core": "", "apps": "apps", "batch": "batch", "networking": "networking.k8s.io",
               "autoscaling": "autoscaling", "policy": "policy",
               "discovery": "discovery.k8s.io", "storage": "storage.k8s.io"}
RESOURCES = {
    "pod": "pods", "service": "services", "endpoints": "endpoints", "configmap": "configmaps",
    "secret": "secrets", "serviceaccount": "serviceaccounts", "pvc": "persistentvolumeclaims",
    "resourcequota": "resourcequotas", "limitrange": "limitranges", "event": "events",
    "node": "nodes", "pv": "persistentvolumes", "deployment": "deployments",
    "replicaset": "replicasets", "statefulset": "statefulsets", "daemonset": "daemonsets",
    "controllerrevision": "controllerrevisions", "job": "jobs", "cronjob": "cronjobs",
    "ingress": "ingresses", "networkpolicy": "networkpolicies", "hpa": "horizontalpodautoscalers",
    "pdb": "poddisruptionbudgets", "endpointslice": "endpointslices",
    "storageclass": "storageclasses",
}


def rbac_reads() -> set[tuple[str, str]]:
    """(apiGroup, resource) of everything the read tools may fetch; secrets are optional
    (describe secret and the Ingress TLS check work only where a Role grants them)."""
    needed = {(RBAC_GROUPS[group], RESOURCES[kind]) for kind, (group, _s, _n) in KINDS.items()
              if kind != "secret"}
    return needed | {("", "pods/log"), ("", "namespaces")}


# What a message names: "persistentvolumeclaim 'data'" reads better than "pvc 'data'".
KIND_WORDS = {"pvc": "persistentvolumeclaim", "pv": "persistentvolume",
              "hpa": "horizontalpodautoscaler", "pdb": "poddisruptionbudget"}
CLUSTER_SCOPED = frozenset(kind for kind, (_g, _s, namespaced) in KINDS.items() if not namespaced)

# kubectl's short names (``kubectl api-resources``; "quota" and "limits" are its names too).
SHORT_NAMES = {"pod": ("po",), "deployment": ("deploy",), "replicaset": ("rs",),
               "statefulset": ("sts",), "daemonset": ("ds",), "service": ("svc",),
               "node": ("no",), "configmap": ("cm",), "cronjob": ("cj",),
               "storageclass": ("sc",), "ingress": ("ing",), "resourcequota": ("quota",),
               "limitrange": ("limits",), "networkpolicy": ("netpol",),
               "serviceaccount": ("sa",)}
# Whatever a caller may name a kind (lower case) -> its canonical key of ``KINDS``: the key,
# its full singular word, its plural resource name and its short names.
ALIASES: dict[str, str] = {
    alias: kind for kind in KINDS
    for alias in (kind, KIND_WORDS.get(kind, kind), RESOURCES[kind], *SHORT_NAMES.get(kind, ()))
}
