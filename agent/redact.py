"""Secret redaction: applied by the toolbox wrapper to every tool result before it leaves a tool.

Each rule replaces only the secret *value* with ``[REDACTED:<kind>]`` and keeps the key, so the
model still learns that a password is configured (often the point of the investigation) without
ever seeing it. Rules are value-anchored on purpose: ordinary log prose ("token bucket
refilled", "password reset page rendered") has no ``key=value`` shape and is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from agent.protocols import ToolResult

MARK = "[REDACTED:{kind}]"

# A value that is already a placeholder, a reference or plainly not a secret.
_NOT_A_VALUE = re.compile(
    r"^(?:\[REDACTED|<|\$\{|\$\(|\*+$|(?:null|none|nil|true|false|required|invalid|incorrect|"
    r"expired|missing|empty|unset|set|changed|reset|ok|redacted|\"\"|'')$)",
    re.IGNORECASE,
)

_PEM = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)",
    re.DOTALL,
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")
_AWS_ACCESS_KEY = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
# A bearer value must look random (a digit, or long) so "bearer authentication" survives.
_BEARER = re.compile(
    r"(?i)\b(bearer)(\s+)((?=[A-Za-z\-._~+/]*[0-9])[A-Za-z0-9\-._~+/]{8,}=*"
    r"|[A-Za-z0-9\-._~+/]{16,}=*)"
)
_BASIC = re.compile(r"(?i)(authorization\s*[:=]\s*basic\s+)([A-Za-z0-9+/]{6,}=*)")
_CONN_STRING = re.compile(
    r"\b([a-z][a-z0-9+.-]*://)([^:/?#\s@\"']+):([^@/?#\s\"']+)@", re.IGNORECASE
)
# key = value / key: value / "key": "value". The key must END with a secret word so that
# TOKEN_URL, secretKeyRef, max_tokens and DB_PASSWORD_FILE are not touched.
_KEY_VALUE = re.compile(
    r"""(?ix)
    (?P<q>["']?)
    (?P<key>[A-Za-z0-9_.\-]*?
        (?:password|passwd|pwd|passphrase|token|secret|api[_-]?key|apikey|private[_-]?key
          |secret[_-]?key|access[_-]?key|credentials?|auth)
    )(?P=q)
    (?P<sep>\s*[=:]\s*)
    (?:"(?P<dq>[^"\\\n]*(?:\\.[^"\\\n]*)*)"|'(?P<sq>[^'\n]*)'|(?P<bare>[^\s,;&"'}\])]+))
    """
)
_SECRET_KIND = re.compile(r'(?m)(?:"kind"\s*:\s*"Secret"|^\s*kind:\s*Secret\s*$)')
_JSON_DATA_BLOCK = re.compile(r'"(?:data|stringData)"\s*:\s*\{([^{}]*)\}')
_JSON_PAIR_VALUE = re.compile(r'("[^"\n]+"\s*:\s*")([^"\n]*)(")')
_YAML_DATA_HEADER = re.compile(r"(?m)^(\s*)(?:data|stringData):\s*$")


class _Counter:
    def __init__(self) -> None:
        self.count = 0
        self.kinds: list[str] = []

    def mark(self, kind: str) -> str:
        self.count += 1
        if kind not in self.kinds:
            self.kinds.append(kind)
        return MARK.format(kind=kind)


def _key_kind(key: str) -> str:
    k = key.lower().replace("-", "_")
    if "aws" in k and ("secret" in k or "access" in k):
        return "aws_secret_key"
    for word, kind in (
        ("private_key", "private_key"), ("privatekey", "private_key"),
        ("api_key", "api_key"), ("apikey", "api_key"), ("access_key", "access_key"),
        ("secret_key", "secret"), ("pass", "password"), ("pwd", "password"),
        ("token", "token"), ("secret", "secret"), ("credential", "credentials"),
        ("auth", "token"),
    ):
        if word in k:
            return kind
    return "secret"


def _redact_key_values(text: str, counter: _Counter) -> str:
    def sub(m: re.Match[str]) -> str:
        value = m.group("dq") if m.group("dq") is not None else m.group("sq")
        if value is None:
            value = m.group("bare")
        # "auth" alone is too common in prose ("auth: ok"); only count it with a long value.
        if not value or _NOT_A_VALUE.match(value):
            return m.group(0)
        if m.group("key").lower().endswith("auth") and len(value) < 16:
            return m.group(0)
        start, end = m.span("dq") if m.group("dq") is not None else (
            m.span("sq") if m.group("sq") is not None else m.span("bare")
        )
        base = m.start(0)
        whole = m.group(0)
        marked = counter.mark(_key_kind(m.group("key")))
        return whole[: start - base] + marked + whole[end - base:]

    return _KEY_VALUE.sub(sub, text)


def _redact_secret_data(text: str, counter: _Counter) -> str:
    """Values under ``data``/``stringData`` of a Kubernetes Secret (JSON or YAML)."""
    if not _SECRET_KIND.search(text):
        return text

    def json_block(m: re.Match[str]) -> str:
        inner = _JSON_PAIR_VALUE.sub(
            lambda p: p.group(1) + (counter.mark("secret_data") if p.group(2) and not
                                    p.group(2).startswith("[REDACTED") else p.group(2))
            + p.group(3),
            m.group(1),
        )
        return m.group(0).replace(m.group(1), inner, 1)

    text = _JSON_DATA_BLOCK.sub(json_block, text)
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        header = _YAML_DATA_HEADER.match(lines[i])
        i += 1
        if not header:
            continue
        indent = len(header.group(1))
        while i < len(lines):
            line = lines[i]
            stripped = line.lstrip()
            if stripped and len(line) - len(stripped) <= indent:
                break
            key, sep, value = stripped.partition(":")
            if sep and value.strip() and not value.strip().startswith("[REDACTED"):
                lines[i] = line[: len(line) - len(stripped)] + key + ": " + counter.mark(
                    "secret_data")
            i += 1
    return "\n".join(lines)


_RULES: list[tuple[re.Pattern[str], Callable[[re.Match[str], _Counter], str]]] = [
    (_PEM, lambda m, c: c.mark("private_key")),
    (_JWT, lambda m, c: c.mark("jwt")),
    (_AWS_ACCESS_KEY, lambda m, c: c.mark("aws_access_key")),
    (_CONN_STRING, lambda m, c: f"{m.group(1)}{m.group(2)}:{c.mark('conn_string')}@"),
    (_BEARER, lambda m, c: f"{m.group(1)}{m.group(2)}{c.mark('bearer')}"),
    (_BASIC, lambda m, c: f"{m.group(1)}{c.mark('basic_auth')}"),
]


def _apply(rule: Callable[[re.Match[str], _Counter], str], counter: _Counter,
           match: re.Match[str]) -> str:
    return rule(match, counter)


def redact(text: str) -> tuple[str, int, list[str]]:
    """Return ``(redacted_text, count, kinds)``; ``kinds`` lists each kind found once, in the
    order first seen. Idempotent: placeholders are never redacted again."""
    if not text:
        return text, 0, []
    counter = _Counter()
    for pattern, replacement in _RULES:
        text = pattern.sub(partial(_apply, replacement, counter), text)
    text = _redact_secret_data(text, counter)
    text = _redact_key_values(text, counter)
    return text, counter.count, counter.kinds


def redact_result(result: ToolResult) -> ToolResult:
    """Redact a ToolResult's output, error and findings, adding to its redaction counts."""
    total = result.redactions
    kinds = list(result.redaction_kinds)

    def one(text: str) -> str:
        nonlocal total
        clean, count, found = redact(text)
        total += count
        kinds.extend(k for k in found if k not in kinds)
        return clean

    return replace(
        result,
        output=one(result.output),
        error=one(result.error) if result.error else result.error,
        findings=[one(f) for f in result.findings],
        redactions=total,
        redaction_kinds=kinds,
    )
