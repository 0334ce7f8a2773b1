"""Both exports of the recorded checkout-typo run: JSONL is the whole trail, re-verifiable
offline; Markdown is a postmortem a human can read."""

from __future__ import annotations

import json
import re

from agent.events import ToolFinished
from storage import RunRecord, Store, export_jsonl, export_markdown
from storage.chain import GENESIS, event_hash
from tests.fixtures.store import LOGS, QUESTION, TYPO_ADDR


async def test_jsonl_is_one_event_per_line_whole_and_reverifiable(
    store: Store, canonical_run: RunRecord
) -> None:
    events = await store.events(canonical_run.id)
    lines = export_jsonl(events).splitlines()
    assert len(lines) == len(events) == canonical_run.event_count
    rows = [json.loads(line) for line in lines]
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    logs = next(r for r in rows if r["kind"] == "tool_finished"
                and r["payload"]["tool"] == "logs")
    assert logs["payload"]["output"] == LOGS  # never trimmed
    # Anyone with the file alone can recompute the chain.
    prev = GENESIS
    for row in rows:
        assert row["prev_hash"] == prev
        assert event_hash(run_id=row["run_id"], seq=row["seq"], at=row["at"],
                          kind=row["kind"], actor=row["actor"], payload=row["payload"],
                          prev_hash=row["prev_hash"]) == row["hash"]
        prev = row["hash"]
    assert prev == canonical_run.head_hash


async def test_markdown_reads_as_a_postmortem(store: Store, canonical_run: RunRecord) -> None:
    md = export_markdown(canonical_run, await store.events(canonical_run.id))
    # Header
    assert md.startswith(f"# Investigation {canonical_run.id}\n")
    for row in (f"| Question | {QUESTION} |", "| Requester | U0ONCALL |",
                "| Model | qwen2.5:14b |", "| Namespace | shop |", "| Status | succeeded |"):
        assert row in md
    assert re.search(r"\| Started \| \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \|", md)
    # Timeline: UTC clock, elapsed, model turns with tokens, tool calls with args and time
    assert re.search(r"- \*\*\d\d:\d\d:\d\d\*\* \(\+0\.0 s\) — run started by U0ONCALL", md)
    assert "model turn 1: 1,248 tokens, 2.4 s; asked for `get_pods(namespace=shop)`" in md
    assert ("tool call `logs(namespace=shop, pod=checkoutservice-7d9c6b5f4-x2x9z, "
            "previous=true)` -> ok, 0.31 s") in md
    assert ("(+31.4 s) — tool call `delete_pod(namespace=shop, "
            "pod=checkoutservice-7d9c6b5f4-x2x9z)`") in md
    # Long output trimmed, keeping the tail where the error is
    assert "lines omitted (whole output in the JSONL export)" in md
    assert f"lookup {TYPO_ADDR.split(':')[0]}: no such host" in md
    assert "attempt=60" not in md
    # Redaction, truncation, approval who/when
    assert "redacted 1 value(s) in `logs` output (bearer)" in md
    assert "trimmed for the model: kept 2,000 of" in md
    assert ("approval requested for `delete_pod(namespace=shop, "
            "pod=checkoutservice-7d9c6b5f4-x2x9z)`") in md
    assert re.search(r"\(\+31\.0 s\) — \*\*approved\*\* by U0ONCALL", md)
    # Verdict, totals, footer
    verdict = md.split("## Verdict", 1)[1]
    assert f"**Root cause:** Revision 14 of deployment checkoutservice sets " \
           f"PAYMENT_SERVICE_ADDR to {TYPO_ADDR}" in verdict
    assert "- logs: 'lookup paymentservcie: no such host' right before FATAL" in verdict
    assert "kubectl -n shop rollout undo deployment/checkoutservice" in verdict
    assert "**Confidence:** high" in verdict
    assert "- Turns: 5\n- Tokens: 11,303\n- Duration: 36.2 s" in md
    assert md.rstrip().endswith(
        f"final hash `{canonical_run.head_hash}`. Verify with "
        f"`budo audit verify {canonical_run.id} --expect {canonical_run.head_hash}`."
    )


async def test_markdown_of_a_failed_run_and_hostile_output(store: Store) -> None:
    run = await store.start_run(source="terminal", question="why | broken?")
    await store.append(ToolFinished(run_id=run.id, turn=1, call_id="c1", tool="logs",
                                    ok=True, duration_s=0.5,
                                    output="```\nnot closed early\n```"))
    await store.record(run.id, "follow_up", {"text": "and now?"}, actor="U7")
    await store.finish_run(run.id, "failed", turns=1, tokens=10)
    done = await store.get_run(run.id)
    md = export_markdown(done, await store.events(run.id))
    assert "| Question | why \\| broken? |" in md  # table cell stays one cell
    assert "No verdict: the run failed." in md
    assert "| Source | terminal |" in md
    assert "\n  ````\n  ```\n  not closed early\n  ```\n  ````\n" in md  # longer fence
    assert "follow up by U7: text=and now?" in md
