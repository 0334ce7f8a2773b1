"""Model-client overhead: a round trip through OpenAIChatModel to the scripted model server
on loopback, and the lenient tool-call parser on its own. Prints medians; no pass/fail.

    python bench/model_client.py [--requests 300]

The figures bound what budo adds per model turn; a real model takes seconds per turn.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent import OpenAIChatModel
from agent.call_arguments import parse_arguments
from agent.toolcalls import recover_text_calls
from scenarios.scripted_model import ScriptedModelServer

TOOLS = [
    {"type": "function", "function": {"name": f"tool_{i}", "description": "x" * 200,
                                      "parameters": {"type": "object", "properties": {}}}}
    for i in range(12)
]
HISTORY = [{"role": "system", "content": "s" * 4000}] + [
    {"role": "tool", "tool_call_id": f"c{i}", "content": "log line\n" * 300} for i in range(8)
]


async def round_trips(count: int) -> list[float]:
    turn = {"say": "checking", "calls": [{"tool": "tool_3", "args": {"namespace": "shop"}}]}
    async with ScriptedModelServer([turn] * count) as server:
        async with OpenAIChatModel(server.url, server.model) as client:
            await client.complete(HISTORY, tools=TOOLS)  # warm the connection
            timings = []
            for _ in range(count - 1):
                started = time.perf_counter()
                await client.complete(HISTORY, tools=TOOLS)
                timings.append(time.perf_counter() - started)
    return timings


def parser_timings(count: int) -> tuple[float, float]:
    messy = "```json\n{'namespace': 'shop', 'labels': ['a', 'b',], 'previous': True,}\n```"
    text = "Let me look.\n" + "\n".join(
        f'<tool_call>{{"name": "tool_{i}", "arguments": {{"pod": "web-{i}"}}}}</tool_call>'
        for i in range(3)
    )
    names = {f"tool_{i}" for i in range(12)}
    parse, recover = [], []
    for _ in range(count):
        started = time.perf_counter()
        parse_arguments(messy)
        parse.append(time.perf_counter() - started)
        started = time.perf_counter()
        recover_text_calls(text, names)
        recover.append(time.perf_counter() - started)
    return statistics.median(parse), statistics.median(recover)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    timings = asyncio.run(round_trips(args.requests))
    request_kb = (len(str(HISTORY)) + len(str(TOOLS))) / 1024
    parse_median, recover_median = parser_timings(2000)
    print(f"machine: {platform.machine()} {platform.python_implementation()} "
          f"{platform.python_version()}, {os.cpu_count()} CPUs")
    print(f"round trip, {request_kb:.0f} KB request, {len(timings)} requests: "
          f"median {statistics.median(timings) * 1000:.2f} ms, "
          f"p90 {statistics.quantiles(timings, n=10)[-1] * 1000:.2f} ms")
    print(f"parse_arguments (fenced, single quotes, trailing commas): "
          f"median {parse_median * 1e6:.1f} µs")
    print(f"recover_text_calls (3 <tool_call> blocks): median {recover_median * 1e6:.1f} µs")


if __name__ == "__main__":
    main()
