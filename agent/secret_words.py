"""What says a value is a secret when its shape does not: the name it is stored under
(``secret_name``: strong, weak, or a reference such as ``*_URL``/``*_FILE``), the kind of
secret the name implies, whether the value could be one, and whether a run of characters
reads as random key material (entropy). The rules in agent/redact.py ask these."""

from __future__ import annotations

import math
import re
from collections import Counter

# A value that is already a placeholder, a reference or plainly not a secret.
NOT_A_VALUE = re.compile(
    r"^(?:\[REDACTED|<|\$\{|\$\(|\{\{|\*+$|(?:null|none|nil|true|false|required|invalid|"
    r"incorrect|expired|missing|empty|unset|set|changed|reset|ok|redacted|\"\"|''|yes|no|"
    r"enabled|disabled|on|off|xxx+|\.\.\.|bearer|basic|digest|negotiate|ntlm|hmac)$)",
    re.IGNORECASE,
)

# Words that make a name secret wherever they appear in it, and short ones that must be a
# whole part of the name (KEY in API_KEY, not in MONKEY_COUNT… well, that too; see _REF).
_STRONG = ("password", "passwd", "passphrase", "secret", "token", "credential", "apikey",
           "privatekey", "accesskey", "secretkey")
_WEAK = frozenset({"pass", "pwd", "pw", "key", "auth", "authorization", "creds", "cred", "sig",
                   "signature", "dbpass", "passwd"})
# A name whose last part says it holds a reference, a count or a setting, not the secret.
_REF = frozenset({"url", "uri", "endpoint", "file", "path", "ref", "name", "type", "id", "ids",
                  "header", "enabled", "mode", "ttl", "length", "count", "size", "expiry",
                  "expires", "timeout", "version", "method", "provider", "policy", "field",
                  "source", "tokens", "keys", "dir", "prefix", "host", "port", "user",
                  "username", "format", "algorithm", "alg", "kind", "store", "refs",
                  "rotation", "issuer", "audience", "scope", "scopes", "env", "var"})
_NAME_PARTS = re.compile(r"[_.\-\s]+|(?<=[a-z0-9])(?=[A-Z])")


def key_kind(key: str) -> str:
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


def secret_name(key: str) -> str | None:
    """'strong', 'weak' or None: does this variable/field name say it holds a secret?"""
    parts = [p.lower() for p in _NAME_PARTS.split(key) if p]
    if not parts or parts[-1] in _REF or (len(parts) > 1 and parts[-1] == "s3"):
        return None
    joined = "".join(parts)
    if any(word in joined for word in _STRONG):
        return "strong"
    if any(p in _WEAK or (p.endswith("pass") and p != "bypass") or p.endswith("key")
           for p in parts):
        return "weak"
    return None


PLAIN_WORDS = re.compile(r"[a-z][a-z\-./:]*+")
_PORTISH = re.compile(r"\d++(?:/\S*+)?")  # host "auth.shop:8080/token" is not a secret


def secret_value(strength: str, value: str) -> bool:
    value = value.strip()
    if not value or NOT_A_VALUE.match(value):
        return False
    if value.startswith("/") and " " not in value:  # DB_PASSWORD_FILE-style paths
        return False
    if strength == "weak":  # "key=shop/checkoutservice", "auth: basic", "key=42" stay
        return len(value) >= 6 and not PLAIN_WORDS.fullmatch(value) and not \
            _PORTISH.fullmatch(value)
    return True


def entropy(value: str) -> float:
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def random_looking(run: str) -> bool:
    """A base64 run that reads like key material: mixed case and digits, high entropy."""
    body = run.rstrip("=")
    digits = sum(ch.isdigit() for ch in body)
    upper = sum(ch.isupper() for ch in body[1:])
    lower = sum(ch.islower() for ch in body)
    if digits < 2 or upper < 2 or lower < 2:
        return False
    if body.count("/") > len(body) // 8 or body.count("-") > len(body) // 8:
        return False  # a path or a dashed name, not a key
    return entropy(body) >= (4.0 if len(body) < 48 else 4.3)
