"""The pre-catalogue import path, kept so callers of ``agent.findings`` keep working; the
analyzers live in ``agent.analyzers`` (one module per object family)."""

from agent.analyzers.common import closest, edit_distance, matches, selector_text
from agent.analyzers.network import (
    HOST_ENV_NAME,
    env_host,
    env_host_findings,
    service_findings,
)
from agent.analyzers.pods import (
    CONFIG_ERROR_REASONS,
    IMAGE_PULL_REASONS,
    pod_findings,
    probe_summary,
)

__all__ = ["CONFIG_ERROR_REASONS", "HOST_ENV_NAME", "IMAGE_PULL_REASONS", "closest",
           "edit_distance", "env_host", "env_host_findings", "matches", "pod_findings",
           "probe_summary", "selector_text", "service_findings"]
