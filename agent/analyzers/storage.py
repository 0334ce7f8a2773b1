"""Storage findings: PersistentVolumeClaims that do not bind and PersistentVolumes that are
Released or Failed."""

from __future__ import annotations

from collections.abc import Sequence

from agent.analyzers.common import (
    CRITICAL,
    INFO,
    WARNING,
    EventIndex,
    Finding,
    Obj,
    name_of,
    near_hint,
)

DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


def pvc_findings(pvc: Obj, classes: Sequence[Obj] | None, events: EventIndex | None = None,
                 volumes: Sequence[Obj] | None = None) -> list[Finding]:
    """A Pending claim: its StorageClass missing (closest name), no default class, waiting
    for a consumer, or the provisioner's own message. ``classes`` None: not readable."""
    name = name_of(pvc)
    spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
    phase = status.get("phase", "Pending")
    if phase == "Lost":
        return [Finding(f"persistentvolumeclaim {name} is Lost: its volume "
                        f"{spec.get('volumeName')} no longer exists", CRITICAL)]
    if phase != "Pending":
        return []
    wanted = spec.get("storageClassName")
    size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "?")
    shape = ", ".join([str(size), *(spec.get("accessModes") or [])])
    base = f"persistentvolumeclaim {name} ({shape}) is Pending"
    said = ""
    if events is not None:
        said = (events.message(name, "ProvisioningFailed")
                or events.message(name, "FailedBinding"))
    if classes is not None:
        names = [name_of(c) for c in classes]
        if wanted and wanted not in names:
            return [Finding(f"{base}: StorageClass {wanted!r} does not exist"
                            + near_hint(wanted, names, "StorageClass"), CRITICAL)]
        if wanted is None:
            defaults = [name_of(c) for c in classes
                        if ((c.get("metadata") or {}).get("annotations") or {}).get(
                            DEFAULT_CLASS) == "true"]
            if not defaults:
                return [Finding(f"{base}: it names no StorageClass and the cluster has no "
                                "default StorageClass, so only a matching pre-created "
                                "PersistentVolume can bind it"
                                + (f"; {said}" if said else ""), CRITICAL)]
            wanted = defaults[0]
        cls = next((c for c in classes if name_of(c) == wanted), {})
        if cls.get("volumeBindingMode") == "WaitForFirstConsumer" and not said:
            return [Finding(f"{base}: StorageClass {wanted} binds on first use "
                            "(WaitForFirstConsumer); it binds once a pod using it is "
                            "scheduled", INFO)]
    if said:
        return [Finding(f"{base}: {said}", CRITICAL)]
    if wanted == "" and volumes is not None:
        free = [v for v in volumes if (v.get("status") or {}).get("phase") == "Available"]
        return [Finding(f"{base}: static binding (storageClassName \"\") and "
                        f"{len(free)} Available PersistentVolume(s) match nothing", CRITICAL)]
    return [Finding(f"{base} with no provisioner message yet", WARNING)]


def pv_findings(pv: Obj) -> list[Finding]:
    name = name_of(pv)
    status = pv.get("status") or {}
    phase = status.get("phase")
    claim = (pv.get("spec") or {}).get("claimRef") or {}
    if phase == "Failed":
        return [Finding(f"persistentvolume {name} Failed: {status.get('message', '')}",
                        CRITICAL)]
    if phase == "Released":
        return [Finding(f"persistentvolume {name} is Released (its claim "
                        f"{claim.get('namespace')}/{claim.get('name')} was deleted; reclaim "
                        f"policy {(pv.get('spec') or {}).get('persistentVolumeReclaimPolicy')})"
                        ": no new claim can bind it until claimRef is cleared", WARNING)]
    return []
