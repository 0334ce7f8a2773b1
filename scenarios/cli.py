"""`budo sandbox SCENARIO`: serve a replayed incident as a Kubernetes API plus a kubeconfig."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

from budo.config import default_state_dir
from budo.signals import StopSignals
from scenarios.load import bundled_scenarios, load_scenario
from scenarios.replay import ReplayServer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", nargs="?", help="a bundled scenario name (e.g. "
                        "checkout-typo) or the path of a scenario YAML file")
    parser.add_argument("--list", action="store_true",
                        help="list the bundled incidents and exit")
    parser.add_argument("--port", type=int, default=0,
                        help="port on 127.0.0.1 to listen on (default: a free port)")
    parser.add_argument("--kubeconfig", type=Path, default=None,
                        help="where to write the kubeconfig (default: "
                        "$XDG_STATE_HOME/budo/sandbox/<scenario>.kubeconfig)")


def list_scenarios() -> int:
    for name in bundled_scenarios():
        print(f"{name:<22} {load_scenario(name).title}")
    return 0


async def run(args: argparse.Namespace) -> int:
    if args.list:
        return list_scenarios()
    if not args.scenario:
        print("budo sandbox: name a scenario (see `budo sandbox --list`)", file=sys.stderr)
        return 2
    scenario = load_scenario(args.scenario)  # ScenarioError -> one line, exit 2 (budo.cli)
    if not 0 <= args.port <= 65535:
        print(f"budo sandbox: --port must be 0-65535, got {args.port}", file=sys.stderr)
        return 2
    kubeconfig = args.kubeconfig
    if kubeconfig is None:  # only the default state directory is created for you
        kubeconfig = default_state_dir() / "sandbox" / f"{scenario.name}.kubeconfig"
        try:
            kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"budo sandbox: cannot create {kubeconfig.parent}: {exc.strerror or exc}",
                  file=sys.stderr)
            return 2
    problem = _unwritable(Path(kubeconfig))
    if problem:
        print(f"budo sandbox: cannot write the kubeconfig {kubeconfig}: {problem} "
              "(--kubeconfig)", file=sys.stderr)
        return 2
    with StopSignals() as stop:  # before anything slow: a Ctrl-C during start-up is never lost
        return await _serve(scenario, args.port, kubeconfig, stop)


async def _serve(scenario: Any, port: int, kubeconfig: Path, stop: StopSignals) -> int:
    server = ReplayServer(scenario, port=port)
    try:
        await server.start(kubeconfig=kubeconfig)
    except OSError as exc:
        await server.stop()
        print(f"budo sandbox: cannot start on 127.0.0.1:{port} with kubeconfig "
              f"{kubeconfig}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    task = asyncio.current_task()
    # Interrupted while starting: by our handler, or by asyncio's (it cancels the main task
    # once, and a cancellation that lands inside a library can be swallowed there).
    if stop.event.is_set() or (task is not None and task.cancelling()):
        await server.stop()
        print("budo sandbox: interrupted", file=sys.stderr)
        return 0 if stop.first == signal.SIGTERM else 130
    config = shlex.quote(str(server.kubeconfig))
    namespace = shlex.quote(scenario.namespace)
    print(f"Serving scenario {scenario.name!r} ({scenario.title}) at {server.url}")
    print(f"kubeconfig: {server.kubeconfig}")
    print(f"Try:  KUBECONFIG={config} kubectl get pods -n {namespace}")
    if scenario.question:
        # Quoted for a POSIX shell: the question is scenario text (it may hold quotes,
        # backticks or $(…)), pasted into a terminal with a real cluster one env var away.
        print(f"      KUBECONFIG={config} budo investigate -n {namespace} "
              f"{shlex.quote(scenario.question)}")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        await stop.event.wait()
    finally:
        await server.stop()
    print("sandbox stopped", flush=True)
    return stop.exit_code()


def _unwritable(path: Path) -> str | None:
    """Why ``path`` cannot be written (checked before listening, so the error names it)."""
    if path.is_dir():
        return "it is a directory"
    parent = path.parent
    if not parent.is_dir():
        return f"{parent} is not a directory" if parent.exists() else f"{parent} does not exist"
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
