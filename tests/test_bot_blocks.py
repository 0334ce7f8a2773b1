"""Block Kit builders within Slack's limits, /budo parsing, evidence matching (pure functions)."""

from __future__ import annotations

import json
import time

import pytest

from bot import blocks
from bot.commands import Command, parse_slash, question_from_mention
from bot.evidence import ToolCallRecord, match_evidence
from scenarios.slack_emulator import validate_blocks

HUGE = ("x" * 500 + "\n") * 200  # 100 kB, every field over every limit


def test_every_builder_stays_valid_with_oversized_input():
    built = [
        blocks.root_message(HUGE, "U1", "r-abc123", HUGE, running=True),
        blocks.reasoning_message(HUGE),
        blocks.tool_started("get_logs", {"pod": HUGE, "grep": ["a"] * 500}),
        blocks.tool_finished("get_logs", {"pod": HUGE}, True, 1.5, HUGE, None),
        blocks.tool_finished("get_logs", {}, False, 0.1, "", HUGE),
        blocks.approval_card("a-1", HUGE, HUGE, HUGE, time.time() + 60, "U1"),
        blocks.approval_resolved(HUGE, "✅ Approved by <@U2> at 14:09 UTC"),
        blocks.verdict_message(HUGE, {"root_cause": HUGE, "evidence": [HUGE] * 300,
                                      "fix": HUGE, "confidence": "high"},
                               ["https://slack.com/archives/C1/p1"] * 300, "r-1", 3, 10, 5.0,
                               "https://slack.com/archives/C1/p1"),
        blocks.failure_message("failed", HUGE, HUGE, "r-1", 1, 2, 3.0, None),
    ]
    for text, body in built:
        assert validate_blocks(body) == [], body
        assert 0 < len(text) <= blocks.MESSAGE_TEXT_LIMIT


def test_empty_verdict_fields_still_render():
    _, body = blocks.verdict_message("q", {"root_cause": "", "evidence": [], "fix": ""},
                                        [], "r-1", 1, 1, 1.0, None)
    assert validate_blocks(body) == []
    assert "no root cause" in json.dumps(body)


def test_code_block_previews_cannot_break_out_of_the_fence():
    preview = blocks.code_block("```\n<!channel> & friends\n```", limit=100)
    assert preview.count("```") == 2
    assert "&lt;!channel&gt; &amp; friends" in preview


def test_split_text_prefers_line_breaks_and_keeps_everything():
    text = "\n".join(f"line {i}" for i in range(2000))
    chunks = blocks.split_text(text, 1000)
    assert all(len(c) <= 1000 for c in chunks)
    assert "\n".join(chunks) == text


def test_permalink_has_the_thread_parameters():
    assert blocks.permalink("C1", "1700000000.000200", "1700000000.000100") == (
        "https://slack.com/archives/C1/p1700000000000200"
        "?thread_ts=1700000000.000100&cid=C1")
    assert blocks.permalink("C1", "1.2", base="https://x.slack.com/") == (
        "https://x.slack.com/archives/C1/p12")


@pytest.mark.parametrize(("text", "expected"), [
    ("investigate  why is   checkout down? ", Command("investigate", "why is checkout down?")),
    ("INVESTIGATE pods", Command("investigate", "pods")),
    ("runs", Command("runs")),
    ("export", Command("export", "")),
    ("export r-7f3a2c", Command("export", "r-7f3a2c")),
    ("help", Command("help")),
    (None, Command("help")),
])
def test_parse_slash(text, expected):
    assert parse_slash(text) == expected


@pytest.mark.parametrize("text", ["frobnicate", "investigate", "export ; rm -rf /", "runs2"])
def test_bad_subcommands_fall_back_to_help_with_a_reason(text):
    command = parse_slash(text)
    assert command.kind == "help" and command.problem


def test_mentions_are_stripped_from_the_question():
    assert question_from_mention("<@U0BOT> why is <@U2|bob>'s pod   down?") == (
        "why is 's pod down?")
    assert question_from_mention("<@U0BOT>") == ""


def test_evidence_links_to_the_call_it_quotes_and_not_to_a_guess():
    pods = ToolCallRecord("c1", "get_pods", {"namespace": "shop"}, ts="1.1", ok=True)
    pods.remember_output("checkoutservice-7d9f8-abcde 1/1 Running")
    logs = ToolCallRecord("c2", "get_logs", {"pod": "checkoutservice-7d9f8-abcde"},
                          ts="1.2", ok=True)
    logs.remember_output("dial tcp: lookup paymentservce.shop.svc: no such host")
    events = ToolCallRecord("c3", "get_events", {"namespace": "shop"}, ts=None, ok=True)
    matched = match_evidence([
        "get_pods: checkoutservice-7d9f8-abcde is Running",
        "logs say lookup paymentservce.shop.svc: no such host",
        "the moon is full",
        "get_events shows nothing",  # that call has no thread message: no link
    ], [pods, logs, events])
    assert [m.call_id if m else None for m in matched] == ["c1", "c2", None, None]
