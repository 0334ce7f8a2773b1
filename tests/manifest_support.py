"""What the manifest and Dockerfile tests share: where things are, and the parsed kustomize base."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests"
DEMO = MANIFESTS / "demo"
UID = 10001
READ_VERBS = {"get", "list", "watch"}
KUBECTL = shutil.which("kubectl")
HADOLINT = shutil.which("hadolint")


def load_yaml(path: Path) -> list[dict[str, Any]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built in: ~10x faster
    return [d for d in yaml.load_all(path.read_text(), Loader=loader) if d is not None]


def kustomization() -> dict[str, Any]:
    return load_yaml(MANIFESTS / "kustomization.yaml")[0]


def base_docs() -> list[dict[str, Any]]:
    return [d for r in kustomization()["resources"] for d in load_yaml(MANIFESTS / r)]


def find(kind: str, name: str, docs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    matches = [d for d in (docs or base_docs())
               if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def deployment() -> dict[str, Any]:
    return find("Deployment", "budo")
