"""Tool arguments as the model sends them, checked against a tool's flat JSON schema before
anything is done with them: unknown or missing arguments refused, names checked, and the
harmless slips models make coerced ("200" for an integer, "true" for a boolean, null for an
optional). Every failure is a ``ToolArgumentError`` (the loop returns it to the model)."""

from __future__ import annotations

from typing import Any

from agent.names import NAME_RULES, check_names
from budo.errors import ToolArgumentError

ArgumentError = ToolArgumentError  # arguments that do not fit the schema: the tool error


def validate_arguments(tool: str, schema: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """Check ``args`` against a flat object schema; coerce the harmless slips models make
    ("200" for an integer, "true" for a boolean, null for an optional)."""
    properties: dict[str, Any] = schema["properties"]
    unknown = sorted(set(args) - set(properties))
    if unknown:
        allowed = ", ".join(properties) or "no arguments"
        raise ArgumentError(f"{tool}: unknown argument(s) {', '.join(unknown)}; "
                            f"it takes {allowed}")
    clean: dict[str, Any] = {}
    names = NAME_RULES.get(tool, {})
    for name, value in args.items():
        if value is None:
            continue
        if name in names and not isinstance(value, str):  # a name is never a number/list
            raise ArgumentError(f"{tool}: {name} must be a name (a string), got {value!r:.80}")
        clean[name] = _coerce(tool, name, properties[name], value)
    missing = [n for n in schema.get("required", []) if n not in clean or clean[n] == ""]
    if missing:
        raise ArgumentError(f"{tool}: missing required argument(s) {', '.join(missing)}")
    check_names(tool, clean)  # before any URL is built from them
    return clean


def _coerce(tool: str, name: str, prop: dict[str, Any], value: Any) -> Any:
    kind = prop.get("type")
    if kind == "string":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ArgumentError(f"{tool}: {name} must be a string, got {value!r}")
        return str(value).strip()
    if kind == "integer":
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ArgumentError(f"{tool}: {name} must be a whole number, got {value!r}")
        return value
    if kind == "boolean":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ArgumentError(f"{tool}: {name} must be true or false, got {value!r}")
        return value
    return value
