"""Secret redaction: applied by the toolbox wrapper to every tool result before it leaves a tool.

Each rule replaces only the secret *value* with ``[REDACTED:<kind>]`` and keeps the key, so the
model still learns that a password is configured (often the point of the investigation) without
ever seeing it. Three families of rules, in this order:

1. shapes a secret has wherever it appears: PEM blocks (and PEM bodies whose BEGIN line was cut
   off by ``tail``), JWTs, vendor tokens with a fixed prefix (GitHub, GitLab, Slack, Stripe,
   Google, AWS, npm, PyPI, SendGrid, OpenAI), Slack webhook URLs, ``Basic``/``Bearer``
   credentials and ``Authorization:`` headers anywhere, passwords in URL userinfo;
2. context: ``--password X``, ``-p X`` after a mysql/psql-like command, and ``name=value`` /
   ``name: value`` / ``{"name": "DB_PASS", "value": …}`` where the name contains PASS, SECRET,
   TOKEN, KEY, CREDENTIAL or AUTH (names ending in _URL, _FILE, _NAME, _REF… are references,
   not secrets), and the data of Kubernetes Secret objects;
3. long high-entropy base64 and hex runs that nothing above explained (image digests, commit
   ids, container ids, UUIDs and trace ids are recognised and left alone).

Ordinary prose ("token bucket refilled", "password reset page rendered") has none of these
shapes and is left alone; tests/test_redaction_corpus.py holds both corpora.

Every pattern is linear in the text: tokens are matched from their start only (look-behind
plus possessive quantifiers, Python ≥ 3.11), so a 50 MB log costs O(n), never O(n²).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from agent.protocols import ToolResult
from agent.secret_words import (
    NOT_A_VALUE,
    PLAIN_WORDS,
    key_kind,
    random_looking,
    secret_name,
    secret_value,
)

MARK = "[REDACTED:{kind}]"

# --- 1. shapes ------------------------------------------------------------------------------

_PEM = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)",
    re.DOTALL,
)
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_PEM_BODY_LINE = re.compile(r"[ \t]*[A-Za-z0-9+/=]{8,}[ \t]*")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}+\.eyJ[A-Za-z0-9_-]{5,}+\.[A-Za-z0-9_-]{5,}+")

# Vendor tokens with a documented fixed prefix.
_PREFIXED: list[tuple[str, re.Pattern[str]]] = [
    ("github_token", re.compile(r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{30,255}+"
                                r"|github_pat_[A-Za-z0-9_]{40,255}+)")),
    ("gitlab_token", re.compile(r"(?<![A-Za-z0-9_])glpat-[A-Za-z0-9_-]{20,}+")),
    ("slack_token", re.compile(r"(?<![A-Za-z0-9_])(?:xox[abposre]-[A-Za-z0-9-]{10,}+"
                               r"|xapp-\d-[A-Za-z0-9-]{10,}+)")),
    ("stripe_key", re.compile(r"(?<![A-Za-z0-9_])(?:[sr]k_(?:live|test)_[A-Za-z0-9]{16,}+"
                              r"|whsec_[A-Za-z0-9]{20,}+)")),
    ("google_api_key", re.compile(r"(?<![A-Za-z0-9_])AIza[0-9A-Za-z_-]{35}")),
    ("aws_access_key", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])")),
    ("npm_token", re.compile(r"(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}+")),
    ("pypi_token", re.compile(r"(?<![A-Za-z0-9_])pypi-[A-Za-z0-9_-]{50,}+")),
    ("sendgrid_key", re.compile(r"(?<![A-Za-z0-9_])SG\.[A-Za-z0-9_-]{16,}+\.[A-Za-z0-9_-]{16,}+")),
    ("openai_key", re.compile(r"(?<![A-Za-z0-9_-])sk-(?:proj-|svcacct-|admin-)?"
                              r"[A-Za-z0-9_-]{32,}+")),
]
_SLACK_WEBHOOK = re.compile(
    r"(https://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/)[A-Za-z0-9_/+-]++")
# A bearer value must look random (a digit, or long) so "bearer authentication" survives.
_BEARER = re.compile(
    r"(?i)\b(bearer)(\s+)((?=[A-Za-z\-._~+/]*+[0-9])[A-Za-z0-9\-._~+/]{8,}+=*+"
    r"|[A-Za-z0-9\-._~+/]{16,}+=*+)"
)
_BASIC = re.compile(r"(?i)\b(basic)(\s+)([A-Za-z0-9+/]{8,}+={0,2})(?![A-Za-z0-9+/=])")
# Any other scheme in an Authorization header: "Authorization: token abc…", "Digest …".
_AUTH_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?)"
    r"(?!\[REDACTED)(?:([A-Za-z][\w-]*+)([ \t]+))?(?!\[REDACTED)([^\s\"']{8,}+)")
# scheme://user:password@host — the user part may be empty (redis://:pass@redis:6379).
_URL_USERINFO = re.compile(
    r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]*+://)([^:/?#\s@\"'<>]*+):"
    r"(?!\[REDACTED)([^@/\s\"'<>]++)@"
)

# --- 2. context -----------------------------------------------------------------------------

_FLAG = re.compile(
    r"(?i)(?<![\w-])(--?(?:password|passwd|pass|pwd|token|secret|api-key|apikey|auth-token"
    r"|client-secret)(?:=|[ \t]+))(?!-|\[REDACTED)(\"[^\"\n]*+\"|'[^'\n]*+'|[^\s\"']++)")
_DB_COMMAND = re.compile(
    r"(?i)(?<![\w-])(mysql|mysqladmin|mysqldump|mariadb|psql|pg_dump|pg_restore|redis-cli"
    r"|mongo|mongosh|mongodump)(?![\w-])[^\n]*+")
_DB_PASSWORD_FLAG = re.compile(r"([ \t]-(?:p|a)[ \t]*+)([^\s\"']++)")
_KEY_SEP = re.compile(
    r"""(?<![\w.\-])(?P<key>[A-Za-z_][\w.\-]*+)(?P<q>\\?["']?)(?P<sep>[ \t]*+(?:=>?|:)[ \t]*+)""")
# The value after a secret name's separator (matched only for names that are secret, so a
# non-secret "a:…" never scans its value: linear).
_VALUE = re.compile(
    r"""\\"(?P<eq>[^"\\\n]*+)\\"|"(?P<dq>[^"\\\n]*+(?:\\.[^"\\\n]*+)*+)"|'(?P<sq>[^'\n]*+)'"""
    r"""|(?P<bare>[^\s,;&"'}\])\\]++)""")
# The env list form, as kubectl get -o json / last-applied-configuration write it.
_ENV_JSON = re.compile(
    r"\"name\"[ \t]*:[ \t]*\"(?P<key>[^\"\n]{1,128}+)\"[ \t]*,[ \t]*\"value\"[ \t]*:[ \t]*"
    r"\"(?P<value>[^\"\\\n]*+(?:\\.[^\"\\\n]*+)*+)\"")
_ENV_YAML = re.compile(
    r"(?m)^([ \t]*-?[ \t]*name:[ \t]*[\"']?)(?P<key>[\w.\-]{1,128}+)([\"']?[ \t]*\n[ \t]*"
    r"value:[ \t]*)(?P<value>[^\n]++)")
_SECRET_KIND = re.compile(r'(?m)(?:"kind"\s*:\s*"Secret"|^\s*kind:\s*Secret\s*$)')
_JSON_DATA_BLOCK = re.compile(r'"(?:data|stringData)"\s*:\s*\{([^{}]*)\}')
_JSON_PAIR_VALUE = re.compile(r'("[^"\n]+"\s*:\s*")([^"\n]*)(")')
_YAML_DATA_HEADER = re.compile(r"(?m)^(\s*)(?:data|stringData):\s*$")

# --- 3. entropy -----------------------------------------------------------------------------

_B64_RUN = re.compile(r"(?<![A-Za-z0-9+/_\-\[])[A-Za-z0-9+/_-]{32,}+={0,2}")
_HEX_RUN = re.compile(r"(?<![A-Za-z0-9])[0-9a-fA-F]{40,}+(?![A-Za-z0-9])")
# What a long hex run is when it is not a secret: digests, commits, container/trace ids.
_HEX_CONTEXT = re.compile(
    r"(?i)(?:\bsha\d*\b|@|://|digest|commit|etag|checksum|hash|revision|rev[ =:]|\bid[ =:\"]"
    r"|trace|span|container|image|object|fingerprint|build|version|md5|crc)[\w\s\"':=/-]{0,6}$")


class _Counter:
    def __init__(self) -> None:
        self.count = 0
        self.kinds: list[str] = []

    def mark(self, kind: str) -> str:
        self.count += 1
        if kind not in self.kinds:
            self.kinds.append(kind)
        return MARK.format(kind=kind)


def _redact_key_values(text: str, counter: _Counter) -> str:
    # Not re.sub: after a name that is not secret the scan goes on inside its value, so
    # '"message": "DB_PASS=x"' still finds DB_PASS; a value is only scanned after a secret
    # name, so every character is looked at a bounded number of times.
    out: list[str] = []
    pos = done = 0
    while True:
        m = _KEY_SEP.search(text, pos)
        if m is None:
            break
        pos = m.end()
        key = m.group("key")
        strength = secret_name(key)
        if strength is None:
            continue
        v = _VALUE.match(text, pos)
        if v is None:
            continue
        group = next(g for g in ("eq", "dq", "sq", "bare") if v.group(g) is not None)
        if not secret_value(strength, v.group(group)):
            continue
        start, end = v.span(group)
        out.append(text[done:start])
        out.append(counter.mark(key_kind(key)))
        pos = done = end
    out.append(text[done:])
    return "".join(out)


def _redact_env_pairs(text: str, counter: _Counter) -> str:
    def sub(m: re.Match[str]) -> str:
        strength = secret_name(m.group("key"))
        value = m.group("value").strip().strip("\"'")
        if strength is None or not secret_value(strength, value):
            return m.group(0)
        start, end = m.span("value")
        base = m.start(0)
        whole = m.group(0)
        return whole[: start - base] + counter.mark(key_kind(m.group("key"))) + \
            whole[end - base:]

    if '"value"' in text:
        text = _ENV_JSON.sub(sub, text)
    if "value:" in text:
        text = _ENV_YAML.sub(sub, text)
    return text


def _redact_db_commands(text: str, counter: _Counter) -> str:
    def flag(command: str) -> Callable[[re.Match[str]], str]:
        def sub(m: re.Match[str]) -> str:
            value = m.group(2)
            # psql/pg_dump -p is the port; "-p" alone then a flag is mysql's prompt.
            if value.startswith(("-", "[REDACTED")) or (
                    command.startswith(("psql", "pg_")) and value.isdigit()):
                return m.group(0)
            return m.group(1) + counter.mark("password")
        return sub

    def line(m: re.Match[str]) -> str:
        return _DB_PASSWORD_FLAG.sub(flag(m.group(1).lower()), m.group(0))

    return _DB_COMMAND.sub(line, text)


def _redact_pem_tails(text: str, counter: _Counter) -> str:
    """Base64 lines right above a PRIVATE KEY END line: the body of a PEM block whose BEGIN
    line is gone (``tail -n 20`` of a log that printed a key)."""
    if "-----END" not in text:
        return text
    out: list[str] = []
    last = 0
    for m in _PEM_END.finditer(text):
        before = text[last:m.start()]
        lines = before.split("\n")
        # lines[-1] is what precedes END on its own line (usually empty)
        i = len(lines) - 2
        while i >= 0 and _PEM_BODY_LINE.fullmatch(lines[i]) and "[REDACTED" not in lines[i]:
            i -= 1
        if i < len(lines) - 2:
            lines[i + 1:len(lines) - 1] = [counter.mark("private_key")]
        out.append("\n".join(lines))
        out.append(m.group(0))
        last = m.end()
    out.append(text[last:])
    return "".join(out)


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


def _redact_high_entropy(text: str, counter: _Counter) -> str:
    def b64(m: re.Match[str]) -> str:
        return counter.mark("high_entropy") if random_looking(m.group(0)) else m.group(0)

    def hexrun(m: re.Match[str]) -> str:
        if _HEX_CONTEXT.search(text, max(0, m.start() - 24), m.start()):
            return m.group(0)
        return counter.mark("high_entropy")

    text = _B64_RUN.sub(b64, text)
    return _HEX_RUN.sub(hexrun, text)


def _mark_group(kind: str, keep: tuple[int, ...]) -> Callable[[re.Match[str], _Counter], str]:
    """Replace the match with the kept groups, then the mark."""
    def replacement(m: re.Match[str], c: _Counter) -> str:
        return "".join(m.group(g) or "" for g in keep) + c.mark(kind)
    return replacement


def _basic(m: re.Match[str], c: _Counter) -> str:
    value = m.group(3)
    # base64 of "user:pass" has digits, '+/=' or inner capitals; "Basic authentication" not.
    if not (re.search(r"[0-9+/=]", value) or re.search(r"[A-Z]", value[1:])):
        return m.group(0)
    return f"{m.group(1)}{m.group(2)}{c.mark('basic_auth')}"


def _auth_header(m: re.Match[str], c: _Counter) -> str:
    value = m.group(4)
    if NOT_A_VALUE.match(value) or PLAIN_WORDS.fullmatch(value):
        return m.group(0)
    scheme = f"{m.group(2)}{m.group(3)}" if m.group(2) else ""
    return f"{m.group(1)}{scheme}{c.mark('authorization')}"


_RULES: list[tuple[re.Pattern[str], Callable[[re.Match[str], _Counter], str]]] = [
    (_PEM, lambda m, c: c.mark("private_key")),
    (_JWT, lambda m, c: c.mark("jwt")),
    (_SLACK_WEBHOOK, _mark_group("slack_webhook", (1,))),
    *[(pattern, _mark_group(kind, ())) for kind, pattern in _PREFIXED],
    (_BEARER, _mark_group("bearer", (1, 2))),
    (_BASIC, _basic),
    (_AUTH_HEADER, _auth_header),
    (_URL_USERINFO, lambda m, c: f"{m.group(1)}{m.group(2)}:{c.mark('conn_string')}@"),
    (_FLAG, _mark_group("password", (1,))),
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
    text = _redact_db_commands(text, counter)
    text = _redact_pem_tails(text, counter)
    text = _redact_secret_data(text, counter)
    text = _redact_env_pairs(text, counter)
    text = _redact_key_values(text, counter)
    text = _redact_high_entropy(text, counter)
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
