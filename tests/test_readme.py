"""The README is the front door: what it claims must stay true."""

import re
from pathlib import Path

import pytest

from budo.cli import COMMANDS
from budo.config import settings_table
from tests.test_front_ends import CLOSED_PORT_URL, budo

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_settings_table_is_the_one_generated_from_settings():
    assert settings_table() in README


def test_the_test_command_is_the_one_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    # CI runs the same command with its own venv's interpreter (python3 there).
    assert "python3 -m pytest" in README and '"$venv/bin/python" -m pytest\n' in ci


def test_every_command_is_documented():
    for command in COMMANDS:
        assert f"budo {command}" in README, command


def test_ollama_is_started_before_anything_pulls_from_it():
    # `ollama pull` talks to a running server: "pull && serve" fails on a fresh machine.
    assert "ollama pull qwen2.5:14b && ollama serve" not in README
    for line in README.splitlines():
        if "ollama pull" in line and "ollama serve" in line:
            assert line.index("ollama serve") < line.index("ollama pull"), line


# --- the demo output pasted in the README is what `budo demo` prints ---------------------------

VOLATILE = [
    (re.compile(r"\S*/\.local/state/budo"), "~/.local/state/budo"),  # whose HOME
    (re.compile(r"\br-[0-9a-f]{6}\b"), "r-RUN"),  # run ids
    (re.compile(r"\d+"), "#"),            # ports, run ids, timings, tokens, times, versions
]
UNCOMPARED = ("model: ", "replay cluster at ")  # which model endpoint answers, which port


def _normal(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        if line.startswith(UNCOMPARED):
            continue
        for pattern, replacement in VOLATILE:
            line = pattern.sub(replacement, line)
        out.append(line.rstrip())
    return out


def _readme_blocks() -> list[list[str]]:
    return [block.split("\n") for block in re.findall(r"```text\n(.*?)\n```", README, re.S)]


@pytest.mark.slow
async def test_the_readme_demo_output_is_what_budo_demo_prints(tmp_path):
    code, out, err = await budo("demo", env={"HOME": str(tmp_path), "XDG_STATE_HOME": "",
                                             "BUDO_DB": "", "BUDO_LLM_URL": CLOSED_PORT_URL})
    assert code == 0, err
    assert _normal(_readme_blocks()[0]) == _normal(out.rstrip("\n").split("\n"))


@pytest.mark.slow
async def test_the_readme_approve_excerpt_is_what_demo_approve_prints(tmp_path):
    code, out, err = await budo("demo", "--approve", env={
        "HOME": str(tmp_path), "XDG_STATE_HOME": "", "BUDO_DB": "",
        "BUDO_LLM_URL": CLOSED_PORT_URL})
    assert code == 0, err
    excerpt, printed = _normal(_readme_blocks()[1]), _normal(out.split("\n"))
    start = printed.index(excerpt[0])
    assert printed[start:start + len(excerpt)] == excerpt
