"""The tamper-evident hash chain: one chain per run, HMAC-SHA256 keyed with BUDO_AUDIT_KEY.

With a key, each link is HMAC-SHA256(key, body): someone holding the database file but not
the key cannot recompute the chain after editing an event, so ``verify`` with the key catches
every rewrite. Without a key budo still chains with plain SHA-256 and ``verify`` says
"unkeyed": anyone with the file could rewrite such a chain consistently, which only the head
hash posted in Slack at the end of the run (``--expect``) can reveal.

Each event's hash covers the canonical JSON (sorted keys, no spaces, UTF-8) of everything
that identifies it — run_id, seq, at, kind, actor, payload and the previous event's hash —
so editing, reordering or deleting any row breaks every hash after it. The first event
chains from ``GENESIS``. The runs row keeps the head (last hash and count) so deleting the
tail is caught too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, non-ASCII kept, NaN refused."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
        default=str,
    )


def audit_key(secret: str | None) -> bytes | None:
    """BUDO_AUDIT_KEY as the HMAC key (None: unkeyed)."""
    return secret.encode("utf-8") if secret else None


def event_hash(
    *, run_id: str, seq: int, at: float, kind: str, actor: str | None,
    payload: dict[str, Any], prev_hash: str, key: bytes | None = None,
) -> str:
    """SHA-256 (or, with ``key``, HMAC-SHA256) of the canonical JSON of
    {run_id, seq, at, kind, actor, payload, prev_hash}."""
    return event_hash_text(run_id=run_id, seq=seq, at=at, kind=kind, actor=actor,
                           payload_text=canonical_json(payload), prev_hash=prev_hash, key=key)


def event_hash_text(
    *, run_id: str, seq: int, at: float, kind: str, actor: str | None, payload_text: str,
    prev_hash: str, key: bytes | None = None,
) -> str:
    """``event_hash`` for a payload already in canonical text (as stored). The body is
    spelled out in sorted-key order so the payload is not parsed and dumped again; the
    result is byte-identical to ``canonical_json`` of the whole dict (tests check)."""
    text = (
        f'{{"actor":{canonical_json(actor)},"at":{canonical_json(at)},'
        f'"kind":{canonical_json(kind)},"payload":{payload_text},'
        f'"prev_hash":{canonical_json(prev_hash)},"run_id":{canonical_json(run_id)},'
        f'"seq":{canonical_json(seq)}}}'
    )
    if key is not None:
        return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sql_event_hash(
    run_id: str, seq: int, at: float, kind: str, actor: str | None, payload_text: str,
    prev_hash: str, key: bytes | None = None,
) -> str:
    """The SQL function ``budo_event_hash`` (payload as the stored canonical text); the
    connection registers it with the process's key bound (functools.partial)."""
    return event_hash_text(run_id=run_id, seq=seq, at=at, kind=kind, actor=actor,
                           payload_text=payload_text, prev_hash=prev_hash, key=key)


def fingerprint(tool: str, args: dict[str, Any]) -> str:
    """Identifies exactly what an approval allows: the tool and its canonical arguments."""
    return hashlib.sha256(canonical_json({"tool": tool, "args": args}).encode()).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    events: int
    first_bad_seq: int | None
    detail: str
    head_hash: str = GENESIS
    keyed: bool = False   # checked with BUDO_AUDIT_KEY (HMAC); False: plain SHA-256


@dataclass(frozen=True)
class ChainRow:
    """What verification needs from one stored event (payload still as stored text)."""

    seq: int
    at: float
    kind: str
    actor: str | None
    payload_text: str
    prev_hash: str
    hash: str


def verify_chain(
    run_id: str, rows: Sequence[ChainRow], *, head_hash: str, event_count: int,
    key: bytes | None = None, expect: str | None = None,
) -> VerifyResult:
    """Recompute the chain (HMAC with ``key``); report the first event that does not match.
    With a key, a chain that verifies only as plain SHA-256 is refused: it was written
    without the key, or rewritten by someone who does not have it. ``expect`` is the head
    hash as posted in Slack at the end of the run."""
    result = _verify(run_id, rows, head_hash=head_hash, event_count=event_count, key=key)
    if key is not None and not result.ok and rows and result.first_bad_seq == 1:
        plain = _verify(run_id, rows, head_hash=head_hash, event_count=event_count, key=None)
        if plain.ok:
            return VerifyResult(False, len(rows), 1, "the chain is unkeyed (plain SHA-256), "
                                "but BUDO_AUDIT_KEY is set: it was written without the key "
                                "or rewritten by someone who does not have it", plain.head_hash,
                                keyed=True)
    if key is None and not result.ok and rows and result.first_bad_seq == 1 and \
            "was modified" in result.detail:
        result = VerifyResult(False, result.events, 1, result.detail + " (or the chain is "
                              "HMAC-keyed: set BUDO_AUDIT_KEY to verify it)", result.head_hash)
    if result.ok and expect is not None and expect != result.head_hash:
        # The hash posted in Slack may be an earlier link when budo recorded something after
        # posting it (e.g. where the outcome was delivered): events up to it are pinned, the
        # later ones are named so a reader can judge them.
        at = next((row.seq for row in rows if row.hash == expect), None)
        if at is None:
            return VerifyResult(False, result.events, None, f"the final hash "
                                f"{result.head_hash} does not match the expected {expect}: "
                                "the trail was rewritten or it is not the one that was posted",
                                result.head_hash, keyed=result.keyed)
        later = ", ".join(row.kind for row in rows[at:])
        return VerifyResult(True, result.events, None, f"{result.detail}; the expected hash "
                            f"is event {at}'s, events after it were added later: {later}",
                            result.head_hash, keyed=result.keyed)
    return result


def _verify(
    run_id: str, rows: Sequence[ChainRow], *, head_hash: str, event_count: int,
    key: bytes | None,
) -> VerifyResult:
    prev = GENESIS
    for expected_seq, row in enumerate(rows, start=1):
        if row.seq != expected_seq:
            return VerifyResult(False, len(rows), expected_seq,
                                f"event {expected_seq} is missing (next stored is {row.seq})",
                                prev)
        if row.prev_hash != prev:
            return VerifyResult(False, len(rows), row.seq,
                                f"event {row.seq} ({row.kind}) does not link to event "
                                f"{row.seq - 1}", prev)
        try:
            payload = json.loads(row.payload_text)
        except ValueError:
            return VerifyResult(False, len(rows), row.seq,
                                f"event {row.seq} ({row.kind}) payload is not valid JSON", prev)
        recomputed = event_hash(run_id=run_id, seq=row.seq, at=row.at, kind=row.kind,
                                actor=row.actor, payload=payload, prev_hash=row.prev_hash,
                                key=key)
        if recomputed != row.hash:
            return VerifyResult(False, len(rows), row.seq,
                                f"event {row.seq} ({row.kind}) was modified: its hash does "
                                "not match its content", prev)
        prev = row.hash
    if len(rows) > event_count:
        return VerifyResult(False, len(rows), event_count + 1,
                            f"event {event_count + 1} was added after the run's recorded "
                            f"head ({event_count} events)", prev)
    if len(rows) < event_count or prev != head_hash:
        missing = len(rows) + 1
        return VerifyResult(False, len(rows), missing,
                            f"the run recorded {event_count} events ending in "
                            f"{head_hash[:12]}…, but {len(rows)} remain: events from "
                            f"{missing} on were removed", prev)
    return VerifyResult(True, len(rows), None, f"{len(rows)} events, chain intact", prev,
                        keyed=key is not None)
