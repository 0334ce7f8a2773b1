"""The README is the front door: what it claims must stay true."""

from pathlib import Path

from budo.cli import COMMANDS
from budo.config import settings_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_settings_table_is_the_one_generated_from_settings():
    assert settings_table() in README


def test_the_test_command_is_the_one_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python3 -m pytest" in README and "python3 -m pytest" in ci


def test_every_command_is_documented():
    for command in COMMANDS:
        assert f"budo {command}" in README, command


def test_ollama_is_started_before_anything_pulls_from_it():
    # `ollama pull` talks to a running server: "pull && serve" fails on a fresh machine.
    assert "ollama pull qwen2.5:14b && ollama serve" not in README
    for line in README.splitlines():
        if "ollama pull" in line and "ollama serve" in line:
            assert line.index("ollama serve") < line.index("ollama pull"), line
