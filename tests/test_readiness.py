"""Ready means hearing: token checks at startup (the real process), /readyz 503 with the reason
while the Socket Mode connection is down, the audit DB is not writable, or budo is stopping."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from bot.bot import BudoBot
from bot.serve import open_server
from storage.store import Store
from tests.bot_harness import FakeCluster, bot_settings, running_bot
from tests.fixtures.slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET
from tests.test_bot_serve import clean_env, run_cli


async def readyz(port: int) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
            return response.status, await response.json()


async def test_socket_mode_disconnect_makes_readyz_503_with_the_reason(slack, scripted_model,
                                                                      tmp_path: Path):
    model = await scripted_model([])
    settings = bot_settings(slack, model.url, tmp_path, slack_app_token=APP_TOKEN,
                            slack_signing_secret=None)
    store = await Store.open(settings.db_path)
    bot = BudoBot(settings, store, toolbox_factory=lambda _s: [], slack_backoff=0.0)
    serving = await open_server(bot, "127.0.0.1", 0)
    try:
        assert await readyz(serving.port) == (200, {"ok": True})
        slack.revoke(APP_TOKEN)          # the app token is revoked, and Slack drops the socket
        await slack.socket.disconnect_all("link_disabled", close=True)
        deadline = time.monotonic() + 30
        status, body = await readyz(serving.port)
        while status == 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            status, body = await readyz(serving.port)
        assert status == 503
        assert body == {"ok": False, "error": "Slack: Socket Mode connection is down "
                                              "(reconnecting)"}
    finally:
        await serving.close(grace=0)
        await store.close()


async def test_shutting_down_is_not_ready(slack, scripted_model, tmp_path: Path):
    model = await scripted_model([])
    async with running_bot(slack, model.url, [], tmp_path) as h:
        assert await readyz(h.serving.port) == (200, {"ok": True})
        h.bot.stop_accepting()
        assert await readyz(h.serving.port) == (503, {"ok": False, "error": "shutting down"})


def _make_unwritable(path: Path) -> bool:
    """chmod is enough for a normal user; root needs the immutable flag (access(2) then says
    no even to root). False when neither is possible here."""
    path.chmod(0o444)
    if not os.access(path, os.W_OK):
        return True
    result = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    return result.returncode == 0 and not os.access(path, os.W_OK)


def _make_writable(path: Path) -> None:
    with contextlib.suppress(OSError):
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)
    path.chmod(0o644)


async def test_an_unwritable_audit_db_makes_readyz_503(slack, scripted_model, tmp_path: Path):
    model = await scripted_model([])
    async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path) as h:
        assert (await readyz(h.serving.port))[0] == 200
        db = Path(h.store.path)
        try:
            if not _make_unwritable(db):
                pytest.skip("cannot make a file unwritable here")
            status, body = await readyz(h.serving.port)
            assert status == 503
            assert body["error"] == f"audit store: {db} is not writable"
        finally:
            _make_writable(db)


def kubeconfig(tmp_path: Path) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
                    "    server: http://127.0.0.1:9\ncontexts:\n- name: c\n  context:\n"
                    "    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n"
                    "  user: {}\n")
    return str(path)


async def _exit_of(env: dict[str, str]) -> tuple[int, list[str], float]:
    started = time.monotonic()
    process = await run_cli(env, "--host", "127.0.0.1", "--port", "0")
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, stderr.decode().strip().splitlines(), \
        time.monotonic() - started


@pytest.mark.slow  # a subprocess
async def test_a_bad_app_token_exits_non_zero_with_one_line(slack, tmp_path: Path):
    env = clean_env(tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN="xapp-revoked",
                    SLACK_API_URL=slack.api_url, BUDO_ONCALL_USERS="U_LEAD",
                    KUBECONFIG=kubeconfig(tmp_path), BUDO_LLM_URL="http://127.0.0.1:9/v1")
    code, lines, took = await _exit_of(env)
    assert code == 2 and took < 30
    assert lines == ["budo serve: SLACK_APP_TOKEN was refused by Slack (apps.connections.open: "
                     "invalid_auth); check the app-level token and its connections:write "
                     "scope"]


@pytest.mark.slow  # a subprocess
async def test_a_bad_bot_token_exits_non_zero_with_one_line(slack, tmp_path: Path):
    env = clean_env(tmp_path, SLACK_BOT_TOKEN="xoxb-revoked", SLACK_API_URL=slack.api_url,
                    SLACK_SIGNING_SECRET=SIGNING_SECRET, BUDO_ONCALL_USERS="U_LEAD",
                    KUBECONFIG=kubeconfig(tmp_path), BUDO_LLM_URL="http://127.0.0.1:9/v1")
    code, lines, _ = await _exit_of(env)
    assert code == 2
    assert len(lines) == 1 and "auth.test failed: invalid_auth" in lines[0], lines
