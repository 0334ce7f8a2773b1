"""Loading a scenario: YAML (bundled by name, or a file), `extends:` bases merged, validated,
then expanded by scenarios/build.py. `load_scenario(name_or_path)` is the only way in.
"""

from __future__ import annotations

import copy
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from budo.errors import ScenarioError
from scenarios.build import build
from scenarios.checker import Checker
from scenarios.merge import merge_named
from scenarios.model import Scenario
from scenarios.validate import check_document, check_now

LIBRARY = Path(__file__).parent / "library"


def bundled_scenarios() -> list[str]:
    """Names of the bundled incidents (bases starting with `_` are left out)."""
    return sorted(p.stem for p in LIBRARY.glob("*.yaml") if not p.stem.startswith("_"))


def resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or "/" in text or path.is_file():
        if not path.is_file():
            raise ScenarioError(text, "(file)", "no such file")
        return path
    bundled = LIBRARY / f"{text}.yaml"
    if not bundled.is_file():
        raise ScenarioError(text, "(name)", "not a bundled scenario or a file; bundled: "
                            + ", ".join(bundled_scenarios()))
    return bundled


# libyaml's parser when PyYAML was built with it (same safe subset, ~10x faster: a replay
# server or a test loads a scenario in milliseconds instead of a tenth of a second).
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise ScenarioError(path.name, where, f"invalid YAML: {exc.problem}") from exc
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ScenarioError(path.name, "(file)", f"cannot read: {exc}") from exc


def _load_document(path: Path, seen: tuple[str, ...] = ()) -> tuple[dict[str, Any], datetime]:
    """The validated document with its bases merged in, and its `now`."""
    doc = _read(path)
    file = path.name
    if not isinstance(doc, dict):
        raise ScenarioError(file, "(top level)", "expected a mapping (name:, title:, ...)")
    base: dict[str, Any] | None = None
    base_now = None
    if "extends" in doc:
        parent = doc["extends"]
        if not isinstance(parent, str) or parent in seen or parent == path.stem:
            raise ScenarioError(file, "extends", f"cannot extend {parent!r} (cycle or not a name)")
        parent_path = path.parent / f"{parent}.yaml"
        if not parent_path.is_file():
            parent_path = LIBRARY / f"{parent}.yaml"
        if not parent_path.is_file():
            raise ScenarioError(file, "extends", f"no base scenario named {parent!r}")
        base, base_now = _load_document(parent_path, (*seen, path.stem))
    now = check_now(file, doc, required=base_now is None) or base_now
    assert now is not None
    check_document(Checker(file, now), doc, path.stem, path.stem.startswith("_"),
                   extends=base is not None)
    return (merge(base, doc) if base else doc), now


def merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    # Where the child's own events start, so reference errors name the child's index.
    out["_base_events"] = len(base.get("events", []))
    for key, value in child.items():
        if key == "workloads":
            out[key] = merge_named(out.get(key, []), value, ("namespace", "name"), out)
        elif key == "nodes":
            out[key] = merge_named(out.get(key, []), value, ("name",), out)
        elif key == "namespaces":
            out[key] = list(dict.fromkeys([*out.get(key, []), *value]))
        elif key in ("objects", "events", "remove"):
            out[key] = [*out.get(key, []), *copy.deepcopy(value)]
        elif key == "logs":
            out[key] = {**out.get(key, {}), **copy.deepcopy(value)}
        elif key != "extends":
            out[key] = copy.deepcopy(value)
    return out


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load, validate and expand a bundled scenario (by name) or a scenario file (by path)."""
    path = resolve(name_or_path)
    doc, now = _load_document(path)
    return build(doc, now, path)
