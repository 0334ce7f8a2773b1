"""`budo serve`: Socket Mode through the emulator's websocket, health endpoints, and the real
CLI process (configuration errors, SIGTERM)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.bot import BudoBot
from bot.serve import open_server
from storage.store import Store
from tests.bot_harness import CHANNEL, REQUESTER, VERDICT, bot_settings
from tests.fixtures.slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET

ROOT = Path(__file__).resolve().parents[1]


async def test_socket_mode_slash_command_runs_an_investigation(slack, scripted_model,
                                                              tmp_path: Path):
    model = await scripted_model([{"answer": VERDICT}])
    settings = bot_settings(slack, model.url, tmp_path, slack_app_token=APP_TOKEN,
                            slack_signing_secret=None)
    store = await Store.open(settings.db_path)
    bot = BudoBot(settings, store, toolbox_factory=lambda _s: [], update_interval=0.05,
                  rate_per_channel=100)
    serving = await open_server(bot, "127.0.0.1", 0)
    try:
        assert serving.mode == "Socket Mode"
        assert slack.calls_to("apps.connections.open")  # through SLACK_API_URL
        envelope = await slack.socket_push("slash_commands", {
            "command": "/budo", "text": "investigate checkout is down", "user_id": REQUESTER,
            "channel_id": CHANNEL, "team_id": "T0TEST", "api_app_id": "A0BUDO",
            "response_url": slack.new_response_url(CHANNEL, REQUESTER)})
        ack = await slack.socket_wait_ack(envelope)
        assert ack["envelope_id"] == envelope
        await slack.wait_for(lambda: [m for m in slack.channel_messages(CHANNEL)
                                      if m.text.startswith("🧭 Verdict")])

        help_envelope = await slack.socket_push("slash_commands", {
            "command": "/budo", "text": "", "user_id": REQUESTER, "channel_id": CHANNEL,
            "team_id": "T0TEST", "api_app_id": "A0BUDO"})
        help_ack = await slack.socket_wait_ack(help_envelope)
        assert "/budo investigate" in json.dumps(help_ack.get("payload"))

        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{serving.port}"
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 200
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 200
            async with http.post(f"{base}/slack/events", data=b"{}") as response:
                assert response.status == 404  # Socket Mode: no public request URL
    finally:
        await serving.close(grace=0.5)
        await store.close()


async def run_cli(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "budo", "serve", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


def clean_env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "BUDO_", "KUBECONFIG"))}
    env.update(XDG_STATE_HOME=str(tmp_path), PYTHONPATH=str(ROOT), **values)
    return env


@pytest.mark.slow  # a subprocess
async def test_missing_configuration_is_one_line_and_a_non_zero_exit(tmp_path: Path):
    process = await run_cli(clean_env(tmp_path))
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    lines = stderr.decode().strip().splitlines()
    assert process.returncode == 2
    assert lines == ["budo serve: SLACK_BOT_TOKEN is not set (the bot token, xoxb-…)"]


@pytest.mark.slow  # a subprocess
async def test_serve_process_answers_health_and_stops_on_sigterm(slack, scripted_model,
                                                                tmp_path: Path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
                          "    server: http://127.0.0.1:9\ncontexts:\n- name: c\n  context:\n"
                          "    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n"
                          "  user: {}\n")
    env = clean_env(tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                    SLACK_API_URL=slack.api_url, BUDO_ONCALL_USERS="U_LEAD",
                    KUBECONFIG=str(kubeconfig), BUDO_LLM_URL="http://127.0.0.1:9/v1")
    process = await run_cli(env, "--host", "127.0.0.1", "--port", "0")
    try:
        assert process.stderr is not None
        line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
        while "health on" not in line:
            line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
            assert line, "budo serve exited early"
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        assert "HTTP" in line
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                assert response.status == 200
        process.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0
        assert "Traceback" not in rest.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
