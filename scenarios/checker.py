"""The vocabulary of scenario validation: a mapping with known keys, a list, a Kubernetes name,
a time, a duration, a regex… each check raising ScenarioError(file, path, problem) with the
path written the way a reader finds it in the YAML."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from budo.errors import ScenarioError
from scenarios.times import parse_duration, parse_time

NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")  # fullmatch: "name\n" is no name


class Checker:
    """Helpers that raise ScenarioError naming this file."""

    def __init__(self, file: str, now: datetime) -> None:
        self.file, self.now = file, now

    def fail(self, path: str, problem: str) -> ScenarioError:
        return ScenarioError(self.file, path or "(top level)", problem)

    def mapping(self, value: Any, path: str, keys: set[str] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {_kind(value)}")
        if keys is not None:
            for key in value:
                if key not in keys:
                    raise self.fail(
                        f"{path}.{key}" if path else str(key),
                        f"unknown key (expected one of: {', '.join(sorted(keys))})",
                    )
        return value

    def seq(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {_kind(value)}")
        return value

    def text(self, value: Any, path: str, *, empty: bool = False) -> str:
        if not isinstance(value, str) or (not empty and not value.strip()):
            raise self.fail(path, f"expected a non-empty string, got {_kind(value)}")
        return value

    def name(self, value: Any, path: str) -> str:
        self.text(value, path)
        if not NAME.fullmatch(value) or len(value) > 253:
            raise self.fail(path, f"{value!r} is not a valid Kubernetes name (lowercase a-z0-9-.)")
        return str(value)

    def integer(self, value: Any, path: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(path, f"expected a whole number >= {minimum}, got {value!r}")
        return value

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {value!r}")
        return value

    def time(self, value: Any, path: str) -> datetime:
        moment = parse_time(value, self.now)
        if moment is None:
            raise self.fail(path, f"expected an RFC3339 UTC time or -3h/+5m, got {value!r}")
        return moment

    def duration(self, value: Any, path: str) -> None:
        if not isinstance(value, str) or parse_duration(value) is None:
            raise self.fail(path, f"expected a duration like 15s or 1h30m, got {value!r}")

    def regex(self, value: Any, path: str) -> str:
        self.text(value, path)
        try:
            re.compile(value)
        except re.error as exc:
            raise self.fail(path, f"invalid regex: {exc}") from exc
        return str(value)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)
