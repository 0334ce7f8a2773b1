"""`budo sandbox SCENARIO`: serve a replayed incident as a Kubernetes API plus a kubeconfig."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from budo.config import default_state_dir
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
    kubeconfig = args.kubeconfig or default_state_dir() / "sandbox" / f"{scenario.name}.kubeconfig"
    if not 0 <= args.port <= 65535:
        print(f"budo sandbox: --port must be 0-65535, got {args.port}", file=sys.stderr)
        return 2
    server = ReplayServer(scenario, port=args.port)
    try:
        await server.start(kubeconfig=kubeconfig)
    except OSError as exc:
        print(f"budo sandbox: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}",
              file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"Serving scenario {scenario.name!r} ({scenario.title}) at {server.url}")
    print(f"kubeconfig: {server.kubeconfig}")
    print(f"Try:  KUBECONFIG={server.kubeconfig} kubectl get pods -n {scenario.namespace}")
    if scenario.question:
        print(f'      KUBECONFIG={server.kubeconfig} budo investigate "{scenario.question}"')
    print("Press Ctrl-C to stop.", flush=True)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await server.stop()
    print("sandbox stopped", flush=True)
    return 0
