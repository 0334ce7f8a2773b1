"""A running budo bot against the Slack emulator, for the bot tests (no tests in here).

    async with running_bot(slack, model_url, tools) as h:
        await h.sim.slash_command("investigate why is checkout failing?")
        root = await h.root_message()

The bot runs for real: BudoBot + aiohttp on 127.0.0.1:0, Bolt verifying signatures, the
OpenAI-compatible client talking to a scripted model server, an on-disk SQLite store.
Timings are shortened through constructor parameters (coalescing interval, channel pacing,
approval timeout), never by patching.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.protocols import ToolResult, ToolSpec
from agent.tools import SUMMARIES
from bot.bot import BudoBot
from bot.serve import Serving, open_server
from budo.config import Settings
from scenarios.slack_emulator import Message, SlackClientSim, SlackEmulator
from storage.store import Store
from tests.fixtures.model import quick_model
from tests.fixtures.slack import BOT_TOKEN, ONCALL_GROUP, ONCALL_USER, SIGNING_SECRET

CHANNEL = "C1"
REQUESTER = "U_ASKER"
BYSTANDER = "U_RANDOM"

VERDICT = """ROOT CAUSE: checkoutservice has PAYMENT_SERVICE_ADDR=paymentservce:50051 (a typo).
EVIDENCE:
- get_pods shows checkoutservice-7d9f8-abcde Running
- logs of checkoutservice-7d9f8-abcde: dial tcp: lookup paymentservce: no such host
FIX: kubectl -n shop set env deploy/checkoutservice PAYMENT_SERVICE_ADDR=paymentservice:50051
CONFIDENCE: high"""


def run_id_of(message: Message) -> str:
    """The run id a root message names ("… · run r-7f3a2c …")."""
    return message.text.split("· run ")[1].split()[0]


@dataclass
class FakeCluster:
    """In-process tools for tests that do not need the replay cluster."""

    deletions: list[tuple[str, str]] = field(default_factory=list)

    def tools(self) -> list[ToolSpec]:
        async def get_pods(namespace: str) -> ToolResult:
            return ToolResult(True, "NAME                          READY  STATUS\n"
                                    "checkoutservice-7d9f8-abcde   1/1    Running\n"
                                    "paymentservice-5c4b3-fghij    1/1    Running\n")

        async def get_logs(pod: str, namespace: str) -> ToolResult:
            return ToolResult(True, "dial tcp: lookup paymentservce: no such host\n" * 80)

        async def delete_pod(pod: str, namespace: str) -> ToolResult:
            self.deletions.append((namespace, pod))
            return ToolResult(True, f"pod {pod} deleted")

        schema = {"type": "object", "properties": {"namespace": {"type": "string"},
                                                   "pod": {"type": "string"}}}
        return [ToolSpec("get_pods", "list pods", schema, get_pods),
                ToolSpec("get_logs", "pod logs", schema, get_logs),
                ToolSpec("delete_pod", "delete a pod", schema, delete_pod, mutating=True,
                         summarise=SUMMARIES["delete_pod"])]


@dataclass
class Harness:
    bot: BudoBot
    store: Store
    sim: SlackClientSim
    slack: SlackEmulator
    serving: Serving

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.serving.port}"

    async def root_message(self, index: int = 0) -> Message:
        """The index-th run root message at the channel's top level."""
        def roots() -> list[Message]:
            return [m for m in self.slack.channel_messages(CHANNEL)
                    if m.text.startswith("🔍 Investigating")]
        found = await self.slack.wait_for(lambda: len(roots()) > index and roots(),
                                          message="no root message")
        return found[index]

    async def top_level(self, prefix: str, wait_s: float = 10.0) -> Message:
        def find() -> Message | None:
            return next((m for m in self.slack.channel_messages(CHANNEL)
                         if m.text.startswith(prefix)), None)
        found = await self.slack.wait_for(find, timeout=wait_s, message=f"no {prefix!r} post")
        assert found is not None
        return found

    async def run_finished(self, run_id: str, wait_s: float = 10.0) -> None:
        """The run has ended in the store and its task is done. (Not only "not active": the
        root message is visible a moment before the run is registered as active.)"""
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            ended = (await self.store.get_run(run_id)).status != "running"
            if ended and run_id not in self.bot.runs.active:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"run {run_id} did not finish within {wait_s}s")
            await asyncio.sleep(0.02)

    def card(self, root_ts: str) -> Message | None:
        return next((m for m in self.slack.thread(CHANNEL, root_ts)
                     if any(b.get("type") == "actions" for b in m.blocks or [])), None)


def bot_settings(slack: SlackEmulator, model_url: str, tmp: Path, **overrides: Any) -> Settings:
    base = Settings(
        llm_url=model_url, llm_model="qwen2.5:14b", llm_timeout=5.0,
        db_path=str(tmp / "budo.db"), slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET, slack_api_url=slack.api_url,
        oncall_users=("U_LEAD",), oncall_usergroup=ONCALL_GROUP, approval_timeout=2.0,
        max_turns=8, run_timeout=30.0, tool_timeout=5.0,
    )
    return dataclasses.replace(base, **overrides)


@asynccontextmanager
async def running_bot(slack: SlackEmulator, model_url: str, tools: Sequence[ToolSpec],
                      tmp: Path, *, update_interval: float = 0.05, rate: float = 200.0,
                      **overrides: Any) -> AsyncIterator[Harness]:
    settings = bot_settings(slack, model_url, tmp, **overrides)
    store = await Store.open(settings.db_path)
    bot = BudoBot(settings, store, model_factory=quick_model,
                  toolbox_factory=lambda _settings: list(tools),
                  update_interval=update_interval, rate_per_channel=rate, burst=50,
                  shutdown_grace=0.5, slack_backoff=0.0, delivery_retry_delays=(0.0, 0.0))
    serving = await open_server(bot, "127.0.0.1", 0)
    sim = SlackClientSim(f"http://127.0.0.1:{serving.port}/slack/events", SIGNING_SECRET,
                         emulator=slack)
    try:
        yield Harness(bot, store, sim, slack, serving)
    finally:
        await sim.close()
        await serving.close(grace=0.5)
        await store.close()


__all__ = ["BYSTANDER", "CHANNEL", "ONCALL_USER", "REQUESTER", "VERDICT", "FakeCluster",
           "Harness", "bot_settings", "running_bot"]
