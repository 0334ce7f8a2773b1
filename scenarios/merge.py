"""Merging scenario documents (`extends:`, workload `history:`): dicts merge key by key, env
lists and containers by name, anything else is replaced by the child's value."""

from __future__ import annotations

import copy
from typing import Any


def env_list(env: Any) -> list[dict[str, Any]]:
    if isinstance(env, dict):
        return [{"name": k, "value": str(v) if not isinstance(v, bool) else str(v).lower()}
                for k, v in env.items()]
    return [dict(item) for item in env or []]



def merge_named(base: list[dict[str, Any]], child: list[dict[str, Any]],
                 keys: tuple[str, ...], doc: dict[str, Any]) -> list[dict[str, Any]]:
    def ident(item: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(item.get(k) or (doc.get("namespace") if k == "namespace" else "")
                     for k in keys)

    merged = [copy.deepcopy(b) for b in base]
    index = {ident(item): i for i, item in enumerate(merged)}
    for item in child:
        if ident(item) in index:
            merged[index[ident(item)]] = deep_merge(merged[index[ident(item)]], item)
        else:
            merged.append(copy.deepcopy(item))
    return merged


def deep_merge(base: Any, child: Any, key: str = "") -> Any:
    if key == "env":
        by_name = {e["name"]: e for e in env_list(base)}
        by_name.update({e["name"]: e for e in env_list(child)})
        return list(by_name.values())
    if key == "containers" and isinstance(base, list) and isinstance(child, list):
        return merge_named(base, child, ("name",), {})
    if isinstance(base, dict) and isinstance(child, dict):
        out = dict(base)
        for k, v in child.items():
            out[k] = deep_merge(base[k], v, k) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(child)
