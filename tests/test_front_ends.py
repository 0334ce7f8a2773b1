"""`budo demo`, `budo investigate` and `budo eval` as a user runs them: real subprocesses, the
replay API and the scripted model on loopback, the audit DB in a temp state dir."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from scenarios import load_scenario

pytestmark = pytest.mark.slow  # every test here runs the budo CLI as a process
CLOSED_PORT_URL = "http://127.0.0.1:9/v1"  # discard port: nothing listens, connect refused


async def budo(*args: str, env: dict[str, str], limit_s: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "budo", *args, env={**os.environ, **env},
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), limit_s)
    return proc.returncode or 0, out.decode(), err.decode()


def state_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"XDG_STATE_HOME": str(tmp_path / "state"), "BUDO_DB": "", **extra}


async def test_demo_without_a_model_plays_the_golden_path(tmp_path):
    code, out, err = await budo("demo", env=state_env(tmp_path, BUDO_LLM_URL=CLOSED_PORT_URL))
    assert code == 0, err
    assert "playing the scripted golden path" in out
    assert "🔍 Investigating:" in out and "get_pods(namespace=shop)" in out
    assert "Approval needed" in out and "Denied" in out  # no TTY: the gate says no
    assert "ROOT CAUSE" in out and "paymetnservce" in out
    assert "hash chain OK" in out and "✓ the verdict matches the expected diagnosis" in out
    assert "Traceback" not in out + err
    timeline = next((tmp_path / "state" / "budo").glob("r-*.md")).read_text()
    assert "PAYMENT_SERVICE_ADDR" in timeline


async def test_demo_uses_a_model_that_answers(tmp_path, scripted_model):
    scenario = load_scenario("checkout-typo")
    server = await scripted_model(list(scenario.script), model="qwen2.5:14b")
    code, out, err = await budo("demo", env=state_env(tmp_path, BUDO_LLM_URL=server.url,
                                                      BUDO_LLM_MODEL="qwen2.5:14b"))
    assert code == 0, err
    assert "model: " in out and "scripted golden path" not in out
    assert server.requests and server.requests[0]["model"] == "qwen2.5:14b"


async def test_demo_rejects_an_unknown_scenario(tmp_path):
    code, _out, err = await budo("demo", "--scenario", "nope", env=state_env(tmp_path))
    assert code == 2 and "unknown scenario 'nope'" in err and "checkout-typo" in err
    assert "Traceback" not in err


async def test_investigate_denies_mutation_without_a_tty(tmp_path, replay, scripted_model):
    cluster = await replay("checkout-typo")
    pod = cluster.scenario.pod_for("checkoutservice")
    server = await scripted_model([
        {"say": "Restart it.", "calls": [{"tool": "delete_pod",
                                          "args": {"namespace": "shop", "pod": pod}}]},
        {"answer": "ROOT CAUSE: checkoutservice PAYMENT_SERVICE_ADDR typo\nFIX: fix it"},
    ])
    code, out, err = await budo(
        "investigate", "checkout is failing", "-n", "shop",
        env=state_env(tmp_path, BUDO_LLM_URL=server.url, KUBECONFIG=str(cluster.kubeconfig)))
    assert code == 0, err
    assert "no TTY to ask for approval" in out
    assert cluster.deletions == []  # never reached the API
    code, runs, _ = await budo("runs", env=state_env(tmp_path))
    assert code == 0 and "checkout is failing" in runs and "succeeded" in runs


async def test_investigate_fails_with_one_line_when_the_model_is_unreachable(tmp_path, replay):
    cluster = await replay("checkout-typo")
    code, _out, err = await budo(
        "investigate", "checkout is failing",
        env=state_env(tmp_path, BUDO_LLM_URL=CLOSED_PORT_URL, KUBECONFIG=str(cluster.kubeconfig)))
    assert code == 1
    assert "no verdict" in err and "connection refused" in err and "Traceback" not in err


async def test_investigate_without_a_kubeconfig_says_so(tmp_path):
    code, _, err = await budo(
        "investigate", "checkout is failing",
        env=state_env(tmp_path, KUBECONFIG=str(tmp_path / "missing"), HOME=str(tmp_path)))
    assert code == 2 and "kubeconfig" in err.lower() and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


async def test_eval_scores_a_scenario_and_emits_json(tmp_path, scripted_model):
    scenario = load_scenario("checkout-typo")
    server = await scripted_model(list(scenario.script) * 2)
    code, out, err = await budo(
        "eval", "--scenario", "checkout-typo", "--runs", "2", "--json",
        env=state_env(tmp_path, BUDO_LLM_URL=server.url))
    assert code == 0, err
    report = json.loads(out)
    assert report["passed"] == 2 and report["total"] == 2
    assert all(r["tool_calls"] >= 3 for r in report["results"])


async def test_eval_reports_a_model_that_makes_no_tool_calls(tmp_path, scripted_model):
    server = await scripted_model([{"answer": "I cannot tell, maybe the network?"}])
    code, out, err = await budo("eval", "--scenario", "checkout-typo",
                                env=state_env(tmp_path, BUDO_LLM_URL=server.url))
    assert code == 1, err
    assert "FAIL" in out and "made no tool calls" in out and "pass rate: 0/1" in out
    assert "cannot drive budo's tools" in out


async def test_eval_with_no_model_is_one_line(tmp_path):
    code, _out, err = await budo("eval", "--scenario", "checkout-typo",
                                env=state_env(tmp_path, BUDO_LLM_URL=CLOSED_PORT_URL))
    assert code == 2 and "ollama serve" in err and "Traceback" not in err


async def test_sandbox_lists_the_bundled_incidents(tmp_path):
    code, out, _ = await budo("sandbox", "--list", env=state_env(tmp_path))
    assert code == 0 and "checkout-typo" in out and "injection" in out
    code, _, err = await budo("sandbox", env=state_env(tmp_path))
    assert code == 2 and "budo sandbox --list" in err
