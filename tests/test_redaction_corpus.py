"""The redaction corpus: ≥ 100 realistic secrets in every place cluster text puts them, and
ordinary text that must come through untouched. End-to-end leaks (model requests, Slack,
files, the audit DB, exports) are checked in tests/test_hostile_run.py."""

from __future__ import annotations

import json

import pytest

from agent.redact import redact
from scenarios.hostile import FALSE_POSITIVES, SECRETS, Secret


def places(secret: Secret, index: int) -> dict[str, str]:
    """The secret as each source of cluster text shows it."""
    name, value = secret.env
    one_line = secret.snippet.replace("\n", " ")
    return {
        "log": f"2025-03-14T10:29:58.123Z ERROR {secret.snippet}",
        "log_json": json.dumps({"severity": "error", "message": one_line}),
        "event": f"Warning  Failed  pod/vault-agent  {secret.snippet}",
        "env_describe": f"      {name}_{index}={value}",
        "env_kubectl": f"      {name}:  {value}",
        "env_json": json.dumps({"name": name, "value": value}),
        "env_yaml": f"  - name: {name}\n    value: {value}",
        "args": f"    command: /bin/agent --verbose {one_line}",
        "annotation": json.dumps({"metadata": {"annotations": {"example.com/note": one_line}}}),
        "describe": f"Containers:\n  server:\n    Args:\n      {secret.snippet}\n    Ready: False",
    }


def test_the_corpus_is_big_enough() -> None:
    assert len(SECRETS) >= 100
    assert len({s.value for s in SECRETS}) == len(SECRETS)


@pytest.mark.parametrize("secret", SECRETS, ids=lambda s: s.snippet[:40])
def test_no_secret_survives_any_place(secret: Secret) -> None:
    for place, text in places(secret, SECRETS.index(secret)).items():
        clean, count, _ = redact(text)
        assert secret.value not in clean, (place, clean)
        assert count >= 1, place
        # Idempotent: a second pass finds nothing more.
        assert redact(clean)[1] == 0, (place, clean)


@pytest.mark.parametrize("line", FALSE_POSITIVES)
def test_ordinary_text_survives_untouched(line: str) -> None:
    assert redact(line) == (line, 0, [])


def test_the_whole_false_positive_corpus_as_one_log_is_untouched() -> None:
    log = "\n".join(FALSE_POSITIVES)
    assert redact(log) == (log, 0, [])
