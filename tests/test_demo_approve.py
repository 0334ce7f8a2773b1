"""`budo demo --approve` as a user runs it: the proposed fix is approved, applied to the replay
cluster and its rollout watched; without it the same card is denied (no TTY)."""

from __future__ import annotations

import io

import pytest

from agent.protocols import ApprovalRequest, Preview
from budo.terminal import TerminalApprover
from tests.test_front_ends import CLOSED_PORT_URL, budo, state_env

pytestmark = pytest.mark.slow

DIFF = "env PAYMENT_SERVICE_ADDR: paymetnservce:50051 → paymentservice:50051"


async def test_demo_approve_applies_the_fix_and_shows_the_verified_rollout(tmp_path):
    code, out, err = await budo("demo", "--approve",
                                env=state_env(tmp_path, BUDO_LLM_URL=CLOSED_PORT_URL))
    assert code == 0, err
    assert out.index(DIFF) < out.index("✅ Approved by you (--approve)")  # diff before the click
    assert "✅ rolled out: 1/1 ready in " in out
    assert "ACTION  ✅ rolled out: 1/1 ready" in out
    assert "cluster: patched deployment/checkoutservice in shop" in out
    assert "✓ the verdict matches the expected diagnosis" in out
    timeline = next((tmp_path / "state" / "budo").glob("r-*.md")).read_text()
    assert f"- change: {DIFF}" in timeline and "verified: set env" in timeline


async def test_demo_without_a_tty_shows_the_diff_and_denies(tmp_path):
    code, out, err = await budo("demo", env=state_env(tmp_path, BUDO_LLM_URL=CLOSED_PORT_URL))
    assert code == 0, err
    assert DIFF in out and "🚫 Denied (no TTY to ask for approval: denied)" in out
    assert "cluster: patched" not in out and "✅ rolled out" not in out


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_the_terminal_prompt_shows_the_diff_before_y_n():
    out = io.StringIO()
    approver = TerminalApprover(stdin=_Tty("y\n"), out=out)
    preview = Preview(changes=[DIFF], current="deployment/checkoutservice in shop: 1/1 ready")
    decision = await approver.request(ApprovalRequest(
        "r1", "c1", "set_env", {"name": "checkoutservice"}, "set env PAYMENT_SERVICE_ADDR=…",
        "typo", preview))
    prompt = out.getvalue()
    assert decision.approved and prompt.index(DIFF) < prompt.index("[y/N]")
    denied = await TerminalApprover(stdin=_Tty("\n"), out=io.StringIO()).request(
        ApprovalRequest("r1", "c2", "set_env", {}, "s", "", preview))
    assert not denied.approved
