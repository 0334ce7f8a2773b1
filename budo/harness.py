"""In-process plumbing shared by `budo demo`, `budo eval` and the benchmarks: a replayed
incident served on loopback, the real toolbox talking to it through the real kubernetes client,
and a model (the configured one if it answers, else the scenario's scripted golden path).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import OpenAIChatModel, ToolSpec
from budo import wiring
from budo.config import Settings
from budo.errors import ModelError


@dataclass
class ReplayedIncident:
    scenario: Any          # scenarios.Scenario
    server: Any            # scenarios.replay.ReplayServer
    kubeconfig: str
    tools: list[ToolSpec]


@asynccontextmanager
async def replayed_incident(name_or_path: str, namespaces: tuple[str, ...] = ()
                            ) -> AsyncIterator[ReplayedIncident]:
    """Serve a scenario on 127.0.0.1 and build the real toolbox against it."""
    from agent import Cluster, build_toolbox
    from scenarios import load_scenario
    from scenarios.replay import ReplayServer

    scenario = load_scenario(name_or_path)
    server = ReplayServer(scenario)
    await server.start()
    try:
        with tempfile.TemporaryDirectory(prefix="budo-replay-") as tmp:
            kubeconfig = str(Path(tmp) / "kubeconfig")
            server.write_kubeconfig(kubeconfig)
            cluster = Cluster.from_kubeconfig(kubeconfig, namespaces=namespaces)
            yield ReplayedIncident(scenario, server, kubeconfig, build_toolbox(cluster))
    finally:
        await server.stop()


async def configured_model_status(settings: Settings) -> tuple[bool, str]:
    """(answers, one line): does the configured model endpoint answer right now?"""
    async with wiring.chat_model(settings) as model:
        try:
            return True, await model.check()
        except ModelError as exc:
            return False, str(exc)


@asynccontextmanager
async def scripted_model(turns: list[Any], model_name: str = "scripted-golden-path"
                         ) -> AsyncIterator[OpenAIChatModel]:
    """The scripted model server on loopback, and our real HTTP client pointed at it: only the
    model's choices are scripted; the request/response path is the real one."""
    from scenarios.scripted_model import ScriptedModelServer

    server = ScriptedModelServer(turns, model=model_name)
    await server.start()
    try:
        async with OpenAIChatModel(server.url, model_name, timeout=30, max_retries=1) as model:
            yield model
    finally:
        await server.stop()
