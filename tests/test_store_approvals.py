"""Approvals are decided once, by the database: concurrent clicks produce one winner and
everyone else learns who decided and when; late clicks find it expired."""

from __future__ import annotations

import asyncio
import time

import pytest

from budo.errors import RunNotFound, StoreError
from storage import ApprovalNotFound, Store
from storage.chain import fingerprint


async def _approval(store: Store, ttl_s: float = 600.0):
    run = await store.start_run(source="slack", question="q", channel="C1", thread_ts="1")
    return await store.create_approval(run.id, "delete_pod",
                                       {"namespace": "shop", "name": "checkout-1"}, ttl_s)


async def test_create_records_a_pending_approval_with_its_fingerprint(store: Store) -> None:
    before = time.time()
    approval = await _approval(store, ttl_s=60)
    assert approval.id.startswith("a-") and len(approval.id) == 8
    assert approval.status == "pending" and approval.decided_by is None
    assert approval.args == {"namespace": "shop", "name": "checkout-1"}
    assert approval.fingerprint == fingerprint("delete_pod", {"name": "checkout-1",
                                                              "namespace": "shop"})
    assert approval.fingerprint != fingerprint("delete_pod", {"name": "other",
                                                              "namespace": "shop"})
    assert before <= approval.requested_at <= approval.expires_at - 60 + 0.001
    await store.set_approval_message(approval.id, "1750000000.000200")
    assert (await store.get_approval(approval.id)).message_ts == "1750000000.000200"
    assert await store.approvals(approval.run_id) == [await store.get_approval(approval.id)]


async def test_hundred_concurrent_decides_have_exactly_one_winner(store: Store) -> None:
    approval = await _approval(store)
    results = await asyncio.gather(
        *(store.decide_approval(approval.id, approved=i % 2 == 0, user=f"U{i}")
          for i in range(100))
    )
    winners = [r for r in results if r.won]
    assert len(winners) == 1
    final = winners[0].approval
    assert final.status in ("approved", "denied") and final.decided_at is not None
    # Every loser learns the same who and when.
    assert all(r.approval == final for r in results)


async def test_concurrent_decides_across_connections_have_one_winner(store_path: str) -> None:
    # Separate connections, as separate bot processes would have: only the SQL guards this.
    stores = [await Store.open(store_path) for _ in range(4)]
    try:
        approval = await _approval(stores[0])
        results = await asyncio.gather(
            *(s.decide_approval(approval.id, approved=True, user=f"U{i}")
              for i, s in enumerate(stores * 25))
        )
    finally:
        for s in stores:
            await s.close()
    winners = [r for r in results if r.won]
    assert len(winners) == 1
    assert {r.approval.decided_by for r in results} == {winners[0].approval.decided_by}


async def test_a_click_after_expiry_loses_and_finds_it_expired(store: Store) -> None:
    approval = await _approval(store, ttl_s=0.05)
    await asyncio.sleep(0.08)
    result = await store.decide_approval(approval.id, approved=True, user="U1")
    assert not result.won
    assert result.approval.status == "expired" and result.approval.decided_by is None


async def test_expire_is_once_and_does_not_undo_a_decision(store: Store) -> None:
    first = await _approval(store)
    expired = await store.expire_approval(first.id)
    assert expired.status == "expired"
    late = await store.decide_approval(first.id, approved=True, user="U1")
    assert not late.won and late.approval.status == "expired"

    run_id = first.run_id
    second = await store.create_approval(run_id, "scale", {"replicas": 0}, ttl_s=600)
    assert (await store.decide_approval(second.id, approved=False, user="U2")).won
    after = await store.expire_approval(second.id)
    assert (after.status, after.decided_by) == ("denied", "U2")


async def test_unknown_ids_raise_store_errors(store: Store) -> None:
    for call in (store.decide_approval("a-000000", True, "U1"),
                 store.expire_approval("a-000000"), store.get_approval("a-000000"),
                 store.set_approval_message("a-000000", "1.2")):
        with pytest.raises(ApprovalNotFound, match="a-000000"):
            await call
    assert issubclass(ApprovalNotFound, StoreError)
    with pytest.raises(RunNotFound):
        await store.create_approval("r-000000", "delete_pod", {}, ttl_s=60)
    with pytest.raises(StoreError, match="greater than 0"):
        await store.create_approval("r-000000", "delete_pod", {}, ttl_s=0)
