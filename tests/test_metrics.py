"""GET /metrics after real runs: Prometheus text with runs, model, tools, approvals, Slack
errors and 429s; JSON log lines carry the run id."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from budo import logs
from tests.bot_harness import CHANNEL, ONCALL_USER, FakeCluster, run_id_of, running_bot
from tests.fixtures.slack import BOT_TOKEN, SIGNING_SECRET
from tests.test_bot_approvals import DELETE_SCRIPT, click, start_and_wait_for_card
from tests.test_bot_serve import ROOT, clean_env, run_cli
from tests.test_readiness import kubeconfig


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def scrape(port: int) -> tuple[str, str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
            return response.headers["Content-Type"], await response.text()


async def test_metrics_after_an_approved_run(slack, scripted_model, tmp_path: Path):
    model = await scripted_model([
        {"calls": [{"tool": "get_pods", "args": {"namespace": "shop"}}]}, *DELETE_SCRIPT])
    slack.rate_limit("chat.update", times=1, retry_after=0)
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    try:
        async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path) as h:
            root, card = await start_and_wait_for_card(h)
            run_id = run_id_of(root)
            await click(h, "budo_approve", card, ONCALL_USER)
            await h.run_finished(run_id)
            content_type, text = await scrape(h.serving.port)
            logging.getLogger("budo.test").info("outside any run")
    finally:
        logging.getLogger().handlers.clear()
    assert content_type.startswith("text/plain; version=0.0.4")
    got = samples(text)
    assert got[("budo_runs_total", (("status", "succeeded"),))] == 1
    assert got[("budo_run_duration_seconds_count", ())] == 1
    assert got[("budo_model_request_seconds_count", ())] == 3
    assert got[("budo_model_tokens_total", (("kind", "prompt"),))] > 0
    assert got[("budo_model_tokens_total", (("kind", "completion"),))] > 0
    assert got[("budo_tool_calls_total", (("outcome", "ok"), ("tool", "get_pods")))] == 1
    assert got[("budo_tool_calls_total", (("outcome", "ok"), ("tool", "delete_pod")))] == 1
    assert got[("budo_tool_call_seconds_count", (("tool", "get_pods"),))] == 1
    assert got[("budo_approvals_total", (("decision", "approved"),))] == 1
    assert got[("budo_approval_decision_seconds_count", ())] == 1
    assert got[("budo_slack_ratelimited_total", (("method", "chat.update"),))] == 1
    assert got[("budo_outcome_deliveries_total", (("via", "channel"),))] == 1
    assert got[("budo_active_runs", ())] == 0
    assert got[("budo_queued_runs", ())] == 0
    assert [m for m in slack.channel_messages(CHANNEL) if m.text.startswith("🧭 Verdict")]

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines and all({"ts", "level", "logger", "message"} <= set(e) for e in lines)
    assert any(e.get("run_id") == run_id for e in lines)
    assert lines[-1]["message"] == "outside any run" and "run_id" not in lines[-1]


@pytest.mark.slow  # a subprocess
async def test_serve_with_json_logs_writes_only_json_lines(slack, tmp_path: Path):
    env = clean_env(tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                    SLACK_API_URL=slack.api_url, BUDO_ONCALL_USERS="U_LEAD",
                    KUBECONFIG=kubeconfig(tmp_path), BUDO_LLM_URL="http://127.0.0.1:9/v1",
                    BUDO_LOG_FORMAT="json")
    process = await run_cli(env, "--host", "127.0.0.1", "--port", "0")
    try:
        assert process.stderr is not None
        first = json.loads(await asyncio.wait_for(process.stderr.readline(), 30))
        assert first["logger"] == "budo.serve" and "health on" in first["message"]
        port = int(first["message"].split("127.0.0.1:")[1].split("/")[0])
        _, text = await scrape(port)
        assert "budo_runs_total" in text and "budo_active_runs 0.0" in text
        process.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    lines = [json.loads(line) for line in rest.decode().splitlines()]
    assert any("shutting down" in e["message"] for e in lines)


@pytest.mark.slow  # a subprocess: a fresh interpreter's sys.modules
def test_http_mode_never_imports_socket_mode():
    code = ("import sys, bot.serve, bot.bot; "
            "print(any('socket_mode' in m for m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, check=True, timeout=60)
    assert result.stdout.strip() == "False"
