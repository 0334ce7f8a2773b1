"""What a workload change does, in words: the diff a card shows, the one-line current state,
and the rollout check a verification polls.

The rollout check is `kubectl rollout status` (kubectl pkg/polymorphichelpers/
rollout_status.go): the controller has observed the new generation, every replica is updated,
no old replica is left, and the updated ones are available. It reports only what it saw.
"""

from __future__ import annotations

import asyncio
import time

from agent.findings import pod_findings
from agent.kube import label_selector
from agent.kube_write import WorkloadWriter
from agent.protocols import Obj, Verification
from agent.redact import redact
from agent.render import pod_status

HASH_LABEL = "pod-template-hash"
POLL_S = 0.5


def _containers(obj: Obj) -> dict[str, Obj]:
    spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return {c.get("name", "?"): c for c in spec.get("containers") or []}


def _env_value(env: Obj | None) -> str:
    if env is None:
        return "(unset)"
    if "valueFrom" in env:
        source = env["valueFrom"]
        ref = source.get("secretKeyRef") or source.get("configMapKeyRef") or {}
        what = "secret" if "secretKeyRef" in source else "configmap" if ref else "a field"
        return f"(from {what} {ref.get('name', '')}/{ref.get('key', '')})".replace(" /)", ")")
    return str(env.get("value", ""))


def short_image(image: str) -> str:
    return image.rsplit("/", 1)[-1]


def diff(before: Obj, after: Obj) -> list[str]:
    """The fields that change, one per line: replicas, images, env values, template
    annotations; anything else in the pod template as one summary line."""
    changes: list[str] = []
    old_spec, new_spec = before.get("spec") or {}, after.get("spec") or {}
    if old_spec.get("replicas") != new_spec.get("replicas") and "replicas" in new_spec:
        changes.append(f"replicas {old_spec.get('replicas', 1)} → {new_spec.get('replicas')}")
    old_c, new_c = _containers(before), _containers(after)
    several = len(new_c) > 1
    other: set[str] = set()
    for name in dict.fromkeys([*old_c, *new_c]):
        old, new = old_c.get(name), new_c.get(name)
        where = f"{name}/" if several else ""
        if old is None or new is None:
            changes.append(f"container {name}: {'added' if old is None else 'removed'}")
            continue
        if old.get("image") != new.get("image"):
            was, now = str(old.get("image")), str(new.get("image"))
            if was.rsplit(":", 1)[0] == now.rsplit(":", 1)[0]:  # same repository: tags matter
                was, now = short_image(was), short_image(now)
            changes.append(f"image {where}{was} → {now}")
        old_env = {e.get("name"): e for e in old.get("env") or []}
        new_env = {e.get("name"): e for e in new.get("env") or []}
        for key in dict.fromkeys([*old_env, *new_env]):
            was, now = _env_value(old_env.get(key)), _env_value(new_env.get(key))
            if was != now:
                changes.append(f"env {where}{key}: {was} → {now}")
        other |= {k for k in set(old) | set(new) if k not in ("image", "env")
                  and old.get(k) != new.get(k)}
    old_t = (old_spec.get("template") or {}).get("metadata") or {}
    new_t = (new_spec.get("template") or {}).get("metadata") or {}
    old_a, new_a = old_t.get("annotations") or {}, new_t.get("annotations") or {}
    for key in dict.fromkeys([*old_a, *new_a]):
        if old_a.get(key) != new_a.get(key):
            changes.append(f"pod annotation {key}: {old_a.get(key, '(none)')} → "
                           f"{new_a.get(key, '(none)')}")
    old_pod = {k: v for k, v in ((old_spec.get("template") or {}).get("spec") or {}).items()
               if k != "containers"}
    new_pod = {k: v for k, v in ((new_spec.get("template") or {}).get("spec") or {}).items()
               if k != "containers"}
    other |= {f"pod {k}" for k in set(old_pod) | set(new_pod) if old_pod.get(k) != new_pod.get(k)}
    if other:
        changes.append(f"pod template also changes: {', '.join(sorted(other))}")
    return [redact(line)[0] for line in changes]


def current_line(kind: str, obj: Obj) -> str:
    """The object's state now, one line: readiness, revision, images, resourceVersion."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    if kind == "daemonset":
        ready = f"{status.get('numberReady', 0)}/{status.get('desiredNumberScheduled', 0)} ready"
    else:
        ready = f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)} ready"
    images = ", ".join(short_image(str(c.get("image", "?"))) for c in _containers(obj).values())
    revision = (meta.get("annotations") or {}).get("deployment.kubernetes.io/revision")
    parts = [f"{kind}/{meta.get('name')} in {meta.get('namespace')}: {ready}"]
    if revision:
        parts.append(f"revision {revision}")
    parts += [images, f"resourceVersion {meta.get('resourceVersion')}"]
    return " · ".join(parts)


def rollout_done(kind: str, obj: Obj) -> tuple[bool, str]:
    """(done, what is left) the way `kubectl rollout status` decides."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    if int(meta.get("generation", 0)) > int(status.get("observedGeneration", 0)):
        return False, "waiting for the controller to observe the change"
    if kind == "daemonset":
        want, updated = status.get("desiredNumberScheduled", 0), status.get(
            "updatedNumberScheduled", 0)
        available = status.get("numberAvailable", 0)
        if updated < want:
            return False, f"{updated} of {want} new pods updated"
        if available < updated:
            return False, f"{available} of {updated} updated pods available"
        return True, f"{available}/{want} ready"
    want = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    if updated < want:
        return False, f"{updated} of {want} new replicas updated"
    if kind == "deployment" and status.get("replicas", 0) > updated:
        return False, f"{status.get('replicas', 0) - updated} old replicas pending termination"
    if kind == "statefulset" and status.get("updateRevision") and (
            status.get("currentRevision") != status.get("updateRevision")):
        return False, "pods not yet all on the update revision"
    ready = status.get("availableReplicas", status.get("readyReplicas", 0))
    if ready < updated or status.get("readyReplicas", 0) < want:
        return False, f"{status.get('readyReplicas', 0)} of {want} updated replicas ready"
    return True, f"{status.get('readyReplicas', 0)}/{want} ready"


async def new_pods(writer: WorkloadWriter, kind: str, obj: Obj) -> list[Obj]:
    """The pods made from the workload's current template."""
    meta, spec = obj["metadata"], obj.get("spec") or {}
    selector = label_selector(spec.get("selector") or {})
    pods = await writer.cluster.list_pods(meta["namespace"], selector)
    if kind == "deployment":
        template = _without_hash(spec.get("template") or {})
        sets = await writer.replicasets_of(obj)
        newest = sorted(sets, key=lambda rs: int((rs["metadata"].get("annotations") or {}).get(
            "deployment.kubernetes.io/revision", 0)))[-1:]
        hashes = {rs["metadata"].get("labels", {}).get(HASH_LABEL) for rs in (
            [rs for rs in sets if _without_hash((rs.get("spec") or {}).get("template") or {})
             == template] or newest)}
        return [p for p in pods if (p["metadata"].get("labels") or {}).get(HASH_LABEL) in hashes]
    if kind == "statefulset":
        revision = (obj.get("status") or {}).get("updateRevision")
        return [p for p in pods if not revision or (p["metadata"].get("labels") or {}).get(
            "controller-revision-hash") == revision]
    return pods


def _without_hash(template: Obj) -> Obj:
    meta = dict(template.get("metadata") or {})
    meta["labels"] = {k: v for k, v in (meta.get("labels") or {}).items() if k != HASH_LABEL}
    return {**template, "metadata": meta}


async def watch_rollout(writer: WorkloadWriter, kind: str, namespace: str, name: str,
                        limit_s: float, poll_s: float = POLL_S) -> Verification:
    """Poll until the rollout is done or ``limit_s`` seconds pass; report only what was observed."""
    started = time.monotonic()
    left = ""
    while True:
        obj = await writer.read(kind, namespace, name)
        done, left = rollout_done(kind, obj)
        took = time.monotonic() - started
        if done:
            return Verification(True, f"rolled out: {left} in {took:.1f} s", duration_s=took)
        if took >= limit_s:
            break
        await asyncio.sleep(min(poll_s, limit_s - took))
    details: list[str] = []
    events = await writer.cluster.list_events(namespace)
    for pod in (await new_pods(writer, kind, obj))[:5]:
        facts = pod_findings(pod, events)
        details.extend(facts or [f"pod {pod['metadata']['name']}: {pod_status(pod)}"])
    took = time.monotonic() - started
    return Verification(False, f"not ready after {limit_s:g} s: {left}",
                        details=[redact(d)[0] for d in details] or
                        ["no pod of the new template exists yet"], duration_s=took)
