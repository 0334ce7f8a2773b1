"""kubectl against the replay server, and the `budo sandbox` command end to end."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client, config

FRONTEND = "frontend-s58x6nq864-p22sv"
CHECKOUT = "checkoutservice-5fsbm7q4qr-gdmnl"
pytestmark = pytest.mark.slow  # every test here runs kubectl or the budo CLI as a process
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")


async def kubectl(kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        "kubectl", *args, env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    return proc.returncode or 0, out.decode(), err.decode()


@needs_kubectl
async def test_kubectl_get_pods(replay) -> None:
    server = await replay("checkout-typo")
    code, out, err = await kubectl(server.kubeconfig, "get", "pods", "-n", "shop")
    assert code == 0, err
    assert FRONTEND in out and CHECKOUT in out
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]  # server-side Table
    assert len(rows) == 12 and all(row.split()[1:3] == ["1/1", "Running"] for row in rows)
    code, out, err = await kubectl(server.kubeconfig, "get", "pods", "-A", "-l",
                                   "k8s-app=kube-dns", "-o", "name")
    assert code == 0, err
    assert sorted(out.split()) == sorted(f"pod/{n}" for n in server.scenario.pod_names(
        "kube-system"))


@needs_kubectl
async def test_kubectl_describe_pod_shows_env_and_events(replay) -> None:
    server = await replay("checkout-typo")
    code, out, err = await kubectl(server.kubeconfig, "describe", "pod", CHECKOUT, "-n", "shop")
    assert code == 0, err
    assert "PAYMENT_SERVICE_ADDR:" in out and "paymetnservce:50051" in out
    assert "Controlled By:  ReplicaSet/checkoutservice-5fsbm7q4qr" in out
    assert "Started container server" in out  # events found by involvedObject field selector


@needs_kubectl
async def test_kubectl_logs(replay) -> None:
    server = await replay("checkout-typo")
    code, out, err = await kubectl(server.kubeconfig, "logs", FRONTEND, "-n", "shop",
                                   "--tail=5", "--timestamps")
    assert code == 0, err
    assert len(out.splitlines()) == 5
    code, out, err = await kubectl(server.kubeconfig, "logs", FRONTEND, "-c", "nope")
    assert code != 0 and "container nope is not valid for pod" in err


@needs_kubectl
async def test_kubectl_delete_pod(replay) -> None:
    server = await replay("checkout-typo")
    code, out, err = await kubectl(server.kubeconfig, "delete", "pod", CHECKOUT, "-n", "shop")
    assert code == 0, err
    assert f'pod "{CHECKOUT}" deleted' in out
    assert [d.name for d in server.deletions] == [CHECKOUT]
    assert server.deletions[0].user_agent.startswith("kubectl")
    code, out, _ = await kubectl(server.kubeconfig, "get", "pods", "-n", "shop", "-o", "name")
    assert f"pod/{CHECKOUT}" not in out and "pod/checkoutservice-5fsbm7q4qr-" in out


async def _read_until(stream: asyncio.StreamReader, marker: str) -> str:
    seen = ""
    while marker not in seen:
        line = await asyncio.wait_for(stream.readline(), timeout=20)
        if not line:
            break
        seen += line.decode()
    return seen


async def test_budo_sandbox_serves_until_ctrl_c(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "budo", "sandbox", "checkout-typo", "--kubeconfig", str(kubeconfig),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Path(__file__).parent.parent)
    try:
        assert proc.stdout is not None
        banner = await _read_until(proc.stdout, "Ctrl-C")
        assert f"kubeconfig: {kubeconfig}" in banner
        assert f"KUBECONFIG={kubeconfig} kubectl get pods -n shop" in banner
        api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
        pods = await asyncio.to_thread(api.list_namespaced_pod, "shop")
        assert FRONTEND in {p.metadata.name for p in pods.items}
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = await asyncio.wait_for(proc.communicate(), timeout=20)
    assert proc.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()


async def test_budo_sandbox_rejects_an_unknown_scenario() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "budo", "sandbox", "no-such-incident",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Path(__file__).parent.parent)
    _out, err = await asyncio.wait_for(proc.communicate(), timeout=20)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "no-such-incident" in lines[0] and "checkout-typo" in lines[0]
