"""A whole Slack run over hostile cluster data: secrets in logs, events, env, args and
annotations; Slack mention markup in every free-text field and in the model's own words.

Through the real wires (signed requests into the Bolt app, the Slack emulator, the replay
API, the scripted model, the on-disk audit DB), it checks that

- no Slack message, update, ephemeral, response_url reply or file title/comment carries a
  mention or link budo did not build (the only ones allowed: the requester, on-call, the
  on-call group, budo's own permalinks);
- no planted secret reaches a model request, a Slack call, an uploaded file, the audit DB
  file or an export.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from agent.guards import UNTRUSTED_END
from agent.kube import Cluster
from agent.tools import build_toolbox
from scenarios.hostile import (
    FALSE_POSITIVES,
    HOSTILE_LINE,
    SCRIPT,
    SECRETS,
    hostile_scenario,
)
from storage.export import export_jsonl, export_markdown
from tests.bot_harness import CHANNEL, ONCALL_USER, REQUESTER, run_id_of, running_bot
from tests.fixtures.slack import ONCALL_GROUP

ANGLED = re.compile(r"<([^<>\n]*)>")


def strings(value: Any) -> list[str]:
    """Every string inside a JSON-like value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings(v)]
    return []


def db_bytes(directory: Path) -> bytes:
    """The audit DB file and its WAL, raw."""
    return b"".join(p.read_bytes() for p in sorted(directory.glob("budo.db*")))


def foreign_markup(text: str, allowed_users: set[str]) -> list[str]:
    """Mentions and links in ``text`` that budo did not build."""
    bad = []
    for inner in ANGLED.findall(text):
        if inner.startswith("@") and inner[1:] in allowed_users:
            continue
        if inner == f"!subteam^{ONCALL_GROUP}":
            continue
        if inner.startswith("https://budo-test.slack.com/archives/C1/p"):
            continue
        bad.append(f"<{inner}>")
    return bad


async def test_hostile_cluster_data_neither_pings_nor_leaks(slack, scripted_model, replay,
                                                            tmp_path: Path) -> None:
    server = await replay(hostile_scenario(tmp_path / "hostile.yaml"))
    pod = server.scenario.pod_for("vault-agent")
    script = [dict(t) for t in SCRIPT]
    script.insert(-1, {"say": f"Restart it {HOSTILE_LINE}", "calls": [
        {"tool": "delete_pod", "args": {"namespace": "shop", "pod": pod}}]})
    model = await scripted_model(script)
    cluster = Cluster.from_kubeconfig(str(server.kubeconfig), namespaces=("shop",))
    async with running_bot(slack, model.url, build_toolbox(cluster), tmp_path,
                           approval_timeout=30.0) as h:
        await h.sim.slash_command(f"investigate {HOSTILE_LINE}", user_id=REQUESTER)
        root = await h.root_message()
        run_id = run_id_of(root)
        card = await slack.wait_for(lambda: h.card(root.ts), timeout=15,
                                    message="no approval card")
        value = next(e["value"] for b in card.blocks if b["type"] == "actions"
                     for e in b["elements"] if e["action_id"] == "budo_approve")
        await h.sim.block_action("budo_approve", value, user_id=ONCALL_USER,
                                 channel_id=CHANNEL, message_ts=card.ts)
        await h.top_level("🧭 Verdict", wait_s=20)
        await h.run_finished(run_id)
        await h.sim.slash_command("runs", user_id=REQUESTER)
        await h.sim.slash_command(f"export {run_id}", user_id=REQUESTER)
        await slack.wait_for(lambda: len(slack.files) == 2, timeout=10, message="no export")
        await slack.wait_for(lambda: len(slack.response_posts) >= 2, message="no replies")
        store_events = await h.store.events(run_id)
        run = await h.store.get_run(run_id)
    cluster.close()
    assert server.deletions and server.deletions[0].name == pod   # the run really ran

    # --- 1. mentions and links ---------------------------------------------------------------
    allowed = {REQUESTER, ONCALL_USER, "U_LEAD"}
    shown: list[tuple[str, str]] = []
    for call in slack.calls:
        if call.method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            shown += [(call.method, s) for s in strings(
                {k: call.params.get(k) for k in ("text", "blocks")})]
        elif call.method.startswith("files."):
            shown += [(call.method, s) for s in strings(
                {k: call.params.get(k) for k in ("title", "initial_comment", "files")})]
    shown += [("response_url", s) for p in slack.response_posts for s in strings(p.body)]
    shown += [("file", f.title or "") for f in slack.files]
    shown += [("file", f.initial_comment or "") for f in slack.files]
    assert len(shown) > 50
    assert any("&lt;!channel&gt;" in text for _, text in shown)  # it was there, escaped
    problems = [(where, bad) for where, text in shown for bad in foreign_markup(text, allowed)]
    assert problems == []

    # --- 2. secrets -------------------------------------------------------------------------
    places: dict[str, str] = {
        "model requests": json.dumps(model.requests),
        "slack calls": json.dumps([c.params for c in slack.calls], default=str),
        "slack files": "\n".join((f.content or b"").decode("utf-8", "replace")
                                 for f in slack.files),
        "audit db": db_bytes(tmp_path).decode("utf-8", "replace"),
        "exports": export_markdown(run, store_events) + export_jsonl(store_events),
    }
    # The data really went through: the model read the log and the env.
    assert "[REDACTED:" in places["model requests"]
    assert "vault-agent" in places["slack files"]
    leaks = [(where, s.value) for s in SECRETS for where, text in places.items()
             if s.value in text]
    assert leaks == []
    # --- 3. delimiters: the poisoned log neither closes its block nor opens a turn ----------
    tool_messages = [m["content"] for m in model.requests[-1]["messages"] if m["role"] == "tool"]
    assert len(tool_messages) >= 5
    for content in tool_messages:
        assert content.startswith("--- BEGIN UNTRUSTED TOOL OUTPUT: ")
        assert content.endswith("\n" + UNTRUSTED_END) and content.count(UNTRUSTED_END) == 1
        inner = content.split("\n")[1:-1]
        assert not [line for line in inner if "---" in line and "untrusted" in line.lower()]
        for token in ("<|im_start|>", "<|im_end|>", "[INST]", "<tool_call>", "\u200b"):
            assert token not in content
    assert sum("imitates a delimiter" in c for c in tool_messages) >= 1

    # ... and the ordinary lines in the same log reached the model untouched.
    logs_output = next(e.payload["output"] for e in store_events
                       if e.kind == "tool_finished" and e.payload["tool"] == "logs")
    # (the replay strips a leading kubelet timestamp, as `kubectl logs` does)
    expected = [re.sub(r"^\d{4}-\d\d-\d\dT[\d:.]+Z ", "", line) for line in FALSE_POSITIVES]
    assert [line for line in expected if line not in logs_output] == []
