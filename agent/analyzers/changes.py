"""What changed: pod template differences between two revisions of a workload (its current
and previous ReplicaSet or ControllerRevision), written `old → new`.

Secret values never appear: env values that come from Secrets are shown as references, and
literal values pass through the toolbox's redaction like every other output."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.analyzers.common import Obj
from agent.analyzers.pods import probe_summary

ARROW = "→"


def _env_value(env: Obj) -> str:
    if "value" in env:
        return str(env.get("value"))
    source = env.get("valueFrom") or {}
    for key in ("secretKeyRef", "configMapKeyRef"):
        if key in source:
            return f"<{key} {source[key].get('name')}/{source[key].get('key')}>"
    if "fieldRef" in source:
        return f"<fieldRef {source['fieldRef'].get('fieldPath')}>"
    return "<unset>"


def _res(container: Obj) -> dict[str, str]:
    out = {}
    for group in ("requests", "limits"):
        for k, v in ((container.get("resources") or {}).get(group) or {}).items():
            out[f"{group}.{k}"] = str(v)
    return out


def _mapping_diff(label: str, old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    lines = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key, "<unset>"), new.get(key, "<unset>")
        if before != after:
            lines.append(f"{label}{key}: {before} {ARROW} {after}")
    return lines


def template_diff(old: Obj, new: Obj) -> list[str]:
    """`container server env PAYMENT_SERVICE_ADDR: a → b`, `image: x → y`, … for two pod
    templates (``spec.template`` of a Deployment/ReplicaSet, ``data`` of a revision)."""
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    lines: list[str] = []
    for group in ("initContainers", "containers"):
        before = {c.get("name"): c for c in old_spec.get(group) or []}
        after = {c.get("name"): c for c in new_spec.get(group) or []}
        label = "init container" if group == "initContainers" else "container"
        for name in sorted(set(before) | set(after), key=str):
            a, b = before.get(name), after.get(name)
            where = f"{label} {name}"
            if a is None or b is None:
                lines.append(f"{where}: {'added' if a is None else 'removed'}")
                continue
            if a.get("image") != b.get("image"):
                lines.append(f"{where} image: {a.get('image')} {ARROW} {b.get('image')}")
            for key in ("command", "args"):
                if (a.get(key) or []) != (b.get(key) or []):
                    lines.append(f"{where} {key}: {' '.join(a.get(key) or []) or '<none>'} "
                                 f"{ARROW} {' '.join(b.get(key) or []) or '<none>'}")
            lines += _mapping_diff(f"{where} env ",
                                   {e.get("name"): _env_value(e) for e in a.get("env") or []},
                                   {e.get("name"): _env_value(e) for e in b.get("env") or []})
            lines += _mapping_diff(f"{where} envFrom ", _env_from(a), _env_from(b))
            lines += _mapping_diff(f"{where} resources ", _res(a), _res(b))
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                if (a.get(probe) or {}) != (b.get(probe) or {}):
                    lines.append(f"{where} {probe}: {_probe(a.get(probe))} {ARROW} "
                                 f"{_probe(b.get(probe))}")
            ports_a = ",".join(str(p.get("containerPort")) for p in a.get("ports") or [])
            ports_b = ",".join(str(p.get("containerPort")) for p in b.get("ports") or [])
            if ports_a != ports_b:
                lines.append(f"{where} ports: {ports_a or '<none>'} {ARROW} {ports_b or '<none>'}")
    lines += _mapping_diff("volume ", _volumes(old_spec), _volumes(new_spec))
    for key in ("serviceAccountName", "nodeSelector", "tolerations", "affinity"):
        if old_spec.get(key) != new_spec.get(key):
            lines.append(f"{key}: {_short(old_spec.get(key))} {ARROW} "
                         f"{_short(new_spec.get(key))}")
    return lines


def _env_from(container: Obj) -> dict[str, str]:
    out = {}
    for source in container.get("envFrom") or []:
        for key in ("configMapRef", "secretRef"):
            if key in source:
                out[str(source[key].get("name"))] = key
    return out


def _probe(probe: Obj | None) -> str:
    if not probe:
        return "none"
    return (f"{probe_summary(probe)} delay={probe.get('initialDelaySeconds', 0)}s "
            f"timeout={probe.get('timeoutSeconds', 1)}s "
            f"failureThreshold={probe.get('failureThreshold', 3)}")


def _volumes(spec: Obj) -> dict[str, str]:
    out = {}
    for volume in spec.get("volumes") or []:
        for key in ("configMap", "secret", "persistentVolumeClaim", "emptyDir", "hostPath"):
            if key in volume:
                source = volume[key] or {}
                ref = (source.get("name") or source.get("secretName")
                       or source.get("claimName") or source.get("path") or "")
                out[str(volume.get("name"))] = f"{key} {ref}".rstrip()
    return out


def _short(value: Any) -> str:
    if value is None:
        return "<none>"
    text = str(value)
    return text if len(text) <= 120 else text[:119] + "…"
