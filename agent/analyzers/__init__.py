"""The analyzer catalogue: one module per object family, pure functions from API objects to
findings (``Finding``: the sentence plus a severity), used by every tool whose output
touches those objects.

- ``pods``: container states and messages, exit codes, image pulls, config errors, init
  containers, scheduling, eviction, volumes, probe ports.
- ``workloads``: Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs, CronJobs.
- ``network``: env/config addresses, Services, Ingresses, NetworkPolicies, DNS.
- ``storage``: PersistentVolumeClaims and PersistentVolumes.
- ``capacity``: ResourceQuotas, LimitRanges, HPAs, PDBs, nodes.
- ``changes``: pod template differences between revisions.
"""

from agent.analyzers.common import (
    CRITICAL,
    INFO,
    WARNING,
    EventIndex,
    Finding,
    closest,
    edit_distance,
    matches,
    ranked,
    selector_text,
)

__all__ = ["CRITICAL", "INFO", "WARNING", "EventIndex", "Finding", "closest", "edit_distance",
           "matches", "ranked", "selector_text"]
