"""The context budget's invariants, on plain message lists (the loop-level behaviour is in
tests/test_model_servers.py): what compaction keeps, what it never touches, and calibration."""

from __future__ import annotations

from typing import Any

from agent.context import COMPACTED_MARK, ContextBudget, compacted_result
from agent.guards import UNTRUSTED_END, wrap_untrusted


def tool_result(call_id: str, tool: str, lines: int, findings: str = "") -> list[dict[str, Any]]:
    body = "\n".join(f'{{"line": {i}, "message": "request complete", "status": 200}}'
                     for i in range(lines))
    if findings:
        body += f"\nFINDINGS: {findings}"
    return [
        {"role": "assistant", "content": f"reading {tool}",
         "tool_calls": [{"id": call_id, "type": "function",
                         "function": {"name": tool, "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": call_id, "name": tool,
         "content": wrap_untrusted(tool, body)},
    ]


def conversation() -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You are budo. " * 50},
        {"role": "user", "content": "Incident report: checkout is failing"},
        *tool_result("c1", "get_pods", 40, "pod web-1 restarted 3 times"),
        *tool_result("c2", "logs", 150),
        *tool_result("c3", "describe", 60, "env PAYMENT_ADDR points at a missing service"),
    ]


def test_nothing_happens_when_it_fits() -> None:
    messages = conversation()
    assert ContextBudget(100_000).fit(messages, None) is None


def test_oldest_results_are_compacted_first_and_the_rest_is_untouched() -> None:
    messages = conversation()
    budget = ContextBudget(5000)
    before = [dict(m) for m in messages]
    done = budget.fit(messages, None)
    assert done is not None and done.fits and done.after <= budget.limit < done.before
    assert done.compacted_calls[0] == "c1"
    assert messages[:2] == before[:2]          # system prompt and question, verbatim
    assert messages[-1] == before[-1]          # the latest result, verbatim
    first = messages[3]["content"]
    assert first.startswith(COMPACTED_MARK) and "audit trail" in first
    assert "FINDINGS: pod web-1 restarted 3 times" in first
    assert first.endswith(UNTRUSTED_END)       # the kept data is still delimited


def test_the_last_resort_clips_the_latest_result_but_keeps_everything_else() -> None:
    messages = conversation()
    budget = ContextBudget(1800)
    done = budget.fit(messages, None)
    assert done is not None and done.level == 3 and done.fits
    assert messages[1]["content"] == "Incident report: checkout is failing"
    latest = messages[-1]["content"]
    assert "lines omitted" in latest and "FINDINGS: env PAYMENT_ADDR" in latest


def test_a_conversation_that_cannot_fit_says_so() -> None:
    messages = conversation()
    done = ContextBudget(600).fit(messages, None)
    assert done is not None and not done.fits
    assert messages[1]["content"] == "Incident report: checkout is failing"


def test_compacting_twice_keeps_the_findings_and_one_note() -> None:
    once = compacted_result(conversation()[3]["content"], "get_pods")
    twice = compacted_result(once, "get_pods", head_lines=0)
    assert twice.count(COMPACTED_MARK) == 1
    assert "FINDINGS: pod web-1 restarted 3 times" in twice
    assert '"line": 0' not in twice


def test_calibration_follows_the_server_and_truncation_is_told_apart() -> None:
    budget = ContextBudget(32768)
    messages = conversation()
    raw = budget.raw(messages, None)
    budget.calibrate(raw, int(raw * 1.3))
    assert abs(budget.estimate(messages) - raw * 1.3) < 2
    estimate = budget.estimate(messages)
    assert not budget.truncated_by_server(estimate, int(estimate * 0.9))
    assert budget.truncated_by_server(estimate, int(estimate * 0.5))


def test_shrinking_to_the_servers_window_keeps_room_for_the_reply() -> None:
    budget = ContextBudget(32768)
    budget.shrink_to(4096, "the server's overflow error")
    assert budget.window == 4096 and budget.source == "the server's overflow error"
    assert 3000 < budget.limit < 4096


def test_a_small_cut_to_a_power_of_two_window_is_caught_once_calibrated() -> None:
    """Ollama dropping only the oldest few messages to fit num_ctx 4096: the count is close to
    ours, but sits under a window our calibrated estimate clearly exceeds."""
    budget = ContextBudget(32768)
    assert not budget.truncated_by_server(4600, 3900)  # not calibrated yet: no guessing
    budget.calibrate(1000.0, 1000)
    assert budget.truncated_by_server(4600, 3900)
    assert not budget.truncated_by_server(4100, 3900)  # within our error: not claimed
    assert not budget.truncated_by_server(6000, 5800)  # 8192 window, nothing cut


def test_reading_counts_tells_truncation_from_a_count_that_leaves_the_cache_out() -> None:
    budget = ContextBudget(32768)
    budget.read_count(2000.0, 2000, floor=1500)           # a whole count: calibrates
    assert budget.calibrated and budget.scale == 1.0
    # Cut to the window: Ollama's runner leaves exactly num_ctx.
    assert budget.read_count(7000.0, 4096, floor=5500) == 4096
    # Far below what any truncation keeps, and not a window: a cache left out of the count.
    fresh = ContextBudget(32768)
    fresh.read_count(2000.0, 2000, floor=1500)
    assert fresh.read_count(6000.0, 700, floor=2500) is None
    assert fresh.counts_ignored
    assert fresh.read_count(9000.0, 100, floor=2500) is None  # and never read again
