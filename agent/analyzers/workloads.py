"""Workload findings: rollouts that do not progress, ReplicaSets that cannot create pods,
StatefulSets/DaemonSets short of ready, Jobs that failed and CronJobs that do not run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from agent.analyzers.common import (
    CRITICAL,
    INFO,
    WARNING,
    EventIndex,
    Finding,
    Obj,
    name_of,
    one_line,
    owner_of,
)


def _conditions(obj: Obj) -> dict[str, Obj]:
    return {str(c.get("type")): c for c in (obj.get("status") or {}).get("conditions") or []}


def revision(rs: Obj) -> int:
    raw = ((rs.get("metadata") or {}).get("annotations") or {}).get(
        "deployment.kubernetes.io/revision", "0")
    return int(raw) if str(raw).isdigit() else 0


def owned_replicasets(deployment: Obj, replicasets: Sequence[Obj]) -> list[Obj]:
    """The Deployment's ReplicaSets, newest revision first."""
    name = name_of(deployment)
    mine = [rs for rs in replicasets if owner_of(rs) == ("Deployment", name)]
    return sorted(mine, key=revision, reverse=True)


def deployment_findings(deployment: Obj, replicasets: Sequence[Obj] = (),
                        events: EventIndex | None = None) -> list[Finding]:
    name = name_of(deployment)
    spec = deployment.get("spec") or {}
    conditions = _conditions(deployment)
    found: list[Finding] = []
    progressing = conditions.get("Progressing", {})
    if progressing.get("status") == "False":
        found.append(Finding(f"deployment {name} is not progressing "
                             f"({progressing.get('reason')}): "
                             f"{one_line(progressing.get('message'))}", CRITICAL))
    failure = conditions.get("ReplicaFailure", {})
    newest = owned_replicasets(deployment, replicasets)[:1]
    from_rs = [f for rs in newest for f in replicaset_findings(rs, events)]
    if failure.get("status") == "True" and not from_rs:
        found.append(Finding(f"deployment {name} cannot create pods ({failure.get('reason')}): "
                             f"{one_line(failure.get('message'))}", CRITICAL))
    if spec.get("paused"):
        found.append(Finding(f"deployment {name} is paused: rollouts do not proceed", WARNING))
    mine = owned_replicasets(deployment, replicasets)
    if len(mine) >= 2:
        new, old = mine[0], [rs for rs in mine[1:]
                             if int((rs.get("status") or {}).get("readyReplicas") or 0)]
        new_ready = int((new.get("status") or {}).get("readyReplicas") or 0)
        new_want = int((new.get("spec") or {}).get("replicas") or 0)
        if old and new_ready < max(1, new_want):
            serving = ", ".join(f"{name_of(rs)} (revision {revision(rs)}, "
                                f"{(rs.get('status') or {}).get('readyReplicas')} ready)"
                                for rs in old)
            found.append(Finding(
                f"deployment {name} rollout of revision {revision(new)} is stuck: new "
                f"ReplicaSet {name_of(new)} has {new_ready}/{new_want} ready while the old "
                f"one still serves: {serving}", CRITICAL))
    return [*from_rs, *found]


def replicaset_findings(rs: Obj, events: EventIndex | None = None) -> list[Finding]:
    """FailedCreate: the ReplicaFailure condition or the controller's event names quota,
    LimitRange, admission webhook or Pod Security denials verbatim."""
    name = name_of(rs)
    failure = _conditions(rs).get("ReplicaFailure", {})
    message = one_line(failure.get("message"), 400) if failure.get("status") == "True" else ""
    return _cannot_create("replicaset", name, message or _failed_create(events, name))


def _failed_create(events: EventIndex | None, name: str) -> str:
    return events.message(name, "FailedCreate") if events is not None else ""


def _cannot_create(kind: str, name: str, message: str) -> list[Finding]:
    """The controller's FailedCreate, with which kind of denial its message names."""
    if not message:
        return []
    return [Finding(f"{kind} {name} cannot create pods (FailedCreate): {message}"
                    + _denial_kind(message), CRITICAL)]


def _denial_kind(message: str) -> str:
    lower = message.lower()
    for marker, what in (("exceeded quota", "a ResourceQuota is exhausted"),
                         ("must specify limits", "a ResourceQuota requires limits/requests"),
                         ("limitrange", "a LimitRange rejects the container resources"),
                         ("maximum", "a LimitRange maximum is exceeded"),
                         ("minimum", "a LimitRange minimum is not met"),
                         ("admission webhook", "an admission webhook denied it"),
                         ("violates podsecurity", "Pod Security admission denied it"),
                         ("serviceaccount", "its ServiceAccount is missing")):
        if marker in lower:
            return f" — {what}"
    return ""


def statefulset_findings(sts: Obj, events: EventIndex | None = None) -> list[Finding]:
    name = name_of(sts)
    spec, status = sts.get("spec") or {}, sts.get("status") or {}
    desired = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    ready = int(status.get("readyReplicas") or 0)
    found = _cannot_create("statefulset", name, _failed_create(events, name))
    if ready < desired:
        rollout = ""
        if status.get("updateRevision") and status.get("currentRevision") != \
                status.get("updateRevision"):
            rollout = (f"; update {status.get('currentRevision')} → "
                       f"{status.get('updateRevision')} in progress, "
                       f"{status.get('updatedReplicas', 0)} updated")
        found.append(Finding(f"statefulset {name} has {ready}/{desired} replicas ready"
                             f"{rollout}; pods start in order, so one stuck pod blocks the "
                             "rest", WARNING))
    return found


def daemonset_findings(ds: Obj, events: EventIndex | None = None) -> list[Finding]:
    name = name_of(ds)
    status = ds.get("status") or {}
    desired = int(status.get("desiredNumberScheduled") or 0)
    ready = int(status.get("numberReady") or 0)
    found = _cannot_create("daemonset", name, _failed_create(events, name))
    if ready < desired:
        found.append(Finding(f"daemonset {name} has {ready}/{desired} pods ready "
                             f"({status.get('numberUnavailable', desired - ready)} unavailable)",
                             WARNING))
    if status.get("numberMisscheduled"):
        found.append(Finding(f"daemonset {name} runs {status['numberMisscheduled']} pod(s) on "
                             "nodes it should not", INFO))
    return found


def job_findings(job: Obj) -> list[Finding]:
    name = name_of(job)
    status = job.get("status") or {}
    failed = _conditions(job).get("Failed", {})
    if failed.get("status") == "True":
        limit = (job.get("spec") or {}).get("backoffLimit", 6)
        return [Finding(f"job {name} failed ({failed.get('reason')}): "
                        f"{one_line(failed.get('message'))}; {status.get('failed', 0)} failed "
                        f"pod(s), backoffLimit {limit}", CRITICAL)]
    return []


def cronjob_findings(cronjob: Obj, jobs: Sequence[Obj], now: datetime | None) -> list[Finding]:
    """Suspended, never scheduled, or its recent Jobs failing."""
    from agent.render import parse_time  # render has no analyzer imports: no cycle

    name = name_of(cronjob)
    spec, status = cronjob.get("spec") or {}, cronjob.get("status") or {}
    found: list[Finding] = []
    if spec.get("suspend"):
        found.append(Finding(f"cronjob {name} is suspended (spec.suspend=true): schedule "
                             f"{spec.get('schedule')} does not run", WARNING))
    last = parse_time(status.get("lastScheduleTime"))
    created = parse_time((cronjob.get("metadata") or {}).get("creationTimestamp"))
    if last is None and created and now and (now - created).total_seconds() > 86400:
        found.append(Finding(f"cronjob {name} has never been scheduled (schedule "
                             f"{spec.get('schedule')}, created {created:%Y-%m-%d})", WARNING))
    mine = [j for j in jobs if owner_of(j) == ("CronJob", name)]
    mine.sort(key=lambda j: str((j.get("metadata") or {}).get("creationTimestamp", "")),
              reverse=True)
    failing = [j for j in mine[:3] if job_findings(j)]
    if failing:
        newest = job_findings(failing[0])[0]
        found.append(Finding(f"cronjob {name}: {len(failing)} of its last {min(3, len(mine))} "
                             f"jobs failed; newest: {newest}", CRITICAL))
    success = parse_time(status.get("lastSuccessfulTime"))
    if last and success and success < last and not failing:
        found.append(Finding(f"cronjob {name} last succeeded {success:%Y-%m-%d %H:%M}Z, before "
                             f"its last run at {last:%Y-%m-%d %H:%M}Z", WARNING))
    return found
