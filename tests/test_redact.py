"""Secret redaction on plain strings: every kind is caught, ordinary log prose is not."""

from __future__ import annotations

import pytest

from agent.protocols import ToolResult
from agent.redact import redact, redact_result

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy\n"
    "kq7cYtq9nQ==\n-----END RSA PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("text", "secret", "kind"),
    [
        ("GET /api Authorization: Bearer sk-live-4f9a8b7c6d5e", "sk-live-4f9a8b7c6d5e", "bearer"),
        ("connecting with password=hunter2 to db", "hunter2", "password"),
        ('{"user": "bob", "password": "s3cr3t!"}', "s3cr3t!", "password"),
        ("refresh token=abc123xyz789 issued", "abc123xyz789", "token"),
        ("client secret=verysecretvalue", "verysecretvalue", "secret"),
        ("api_key: AbCdEf0123456789", "AbCdEf0123456789", "api_key"),
        ("key id AKIAIOSFODNN7EXAMPLE loaded", "AKIAIOSFODNN7EXAMPLE", "aws_access_key"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_key",
        ),
        (f"session cookie {JWT} accepted", JWT, "jwt"),
        (f"loaded key:\n{PEM}\ndone", "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn", "private_key"),
        ("dsn postgres://app:pa55word@db.shop:5432/orders", "pa55word", "conn_string"),
        ("DB_PASSWORD=hunter2", "hunter2", "password"),
        ("STRIPE_API_KEY=sk_test_51Habc", "sk_test_51Habc", "api_key"),
        ("GCP_CREDENTIALS={service-account}", "{service-account}", "credentials"),
        ("SIGNING_PRIVATE_KEY=abcdef012345", "abcdef012345", "private_key"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA==", "basic_auth"),
    ],
)
def test_each_secret_kind_is_redacted(text: str, secret: str, kind: str) -> None:
    clean, count, kinds = redact(text)
    assert secret not in clean
    assert f"[REDACTED:{kind}]" in clean
    assert count >= 1
    assert kind in kinds


def test_secret_object_data_is_redacted_in_json_and_yaml() -> None:
    as_json = '{"kind": "Secret", "data": {"password": "aHVudGVyMg==", "user": "Ym9i"}}'
    clean, count, kinds = redact(as_json)
    assert "aHVudGVyMg==" not in clean and "Ym9i" not in clean
    assert count == 2 and kinds == ["secret_data"]
    as_yaml = "apiVersion: v1\nkind: Secret\ndata:\n  tls.key: LS0tLS1CRUdJTg==\ntype: Opaque\n"
    clean, count, _ = redact(as_yaml)
    assert "LS0tLS1CRUdJTg==" not in clean
    assert "type: Opaque" in clean and count == 1


@pytest.mark.parametrize(
    "text",
    [
        "token bucket refilled",
        "password reset page rendered",
        "bearer authentication enabled",
        "invalid token: expired",
        "TOKEN_URL=http://auth.shop:8080/token",
        "max_tokens: 200",
        "DB_PASSWORD=<secretKeyRef db-creds/password>",
        "DB_PASSWORD_FILE=/etc/secrets/db",
        '{"kind": "ConfigMap", "data": {"LOG_LEVEL": "debug"}}',
        "GET /checkout 500 in 12ms",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == (text, 0, [])


def test_redaction_is_idempotent_and_counts_each_value() -> None:
    once, count, kinds = redact(f"password=abc DB_TOKEN=xyz123 jwt {JWT}")
    assert count == 3
    assert set(kinds) == {"password", "token", "jwt"}
    assert redact(once) == (once, 0, [])


def test_a_bearer_jwt_counts_once() -> None:
    clean, count, _ = redact(f"Authorization: Bearer {JWT}")
    assert count == 1
    assert JWT not in clean


def test_redact_result_covers_output_error_and_findings() -> None:
    result = ToolResult(
        ok=True,
        output="line password=hunter2",
        findings=["env API_TOKEN=tok123456 set"],
    )
    clean = redact_result(result)
    assert "hunter2" not in clean.output
    assert "tok123456" not in clean.findings[0]
    assert clean.redactions == 2
    assert set(clean.redaction_kinds) == {"password", "token"}
    failed = redact_result(ToolResult.failure("login failed for postgres://u:pw1234@db/x"))
    assert failed.error is not None and "pw1234" not in failed.error
    assert failed.redactions == 1
