"""Unique-code generation (SPEC 2.10): inline up to SYNC_GENERATION_LIMIT, else a job; resumable
and exact through a checkpoint per generation (docs/COUPONS.md)."""
from __future__ import annotations

import secrets

from chalicelib import clock
from chalicelib.domain import codes
from chalicelib.domain import coupons as rules_
from chalicelib.errors import CouponRejected, RetryLater, ValidationFailed
from chalicelib.jobs import framework
from chalicelib.schemas.coupons import MAX_CODES_PER_CAMPAIGN
from chalicelib.services import audit
from chalicelib.services.coupons.campaigns import Campaign, require
from chalicelib.store import coupons as store
from chalicelib.store import tx

SYNC_GENERATION_LIMIT = 10_000  # above this, POST .../codes answers 202 and a job generates
GENERATION_CHUNK = 5_000  # codes per checkpoint
LONG_CODE_LENGTH = 12  # 60 bits: batch writes; shorter patterns use conditional puts


def _pattern(camp: Campaign) -> tuple[str, int]:
    p = camp.definition.get("code_pattern") or {}
    return p.get("prefix") or "", int(p.get("length") or LONG_CODE_LENGTH)


def code_capacity(length: int) -> int:
    """Codes a campaign may hold: SPEC's 1,000,000, and for short patterns at most a quarter of
    the code space, so conditional puts rarely collide."""
    return min(MAX_CODES_PER_CAMPAIGN, (2 ** codes.bits(length)) // 4)


def request_codes(campaign_id: str, count: int, actor: str) -> tuple[int, dict]:
    """POST .../codes: up to SYNC_GENERATION_LIMIT inline (201), else a background job (202)."""
    camp = require(campaign_id)
    if camp.mode != "unique":
        raise ValidationFailed("a shared-code campaign has its one code",
                               fields=[{"field": "count", "message": "code_mode is shared"}])
    if camp.rules.status == "ended":
        raise CouponRejected(rules_.INACTIVE, "the campaign has ended")
    _, length = _pattern(camp)
    capacity = code_capacity(length)
    if count > capacity:
        raise ValidationFailed(f"at most {capacity} codes for this campaign",
                               fields=[{"field": "count", "message": f"at most {capacity}"}])
    gen_id = secrets.token_hex(6)
    details = {"count": count, "gen_id": gen_id, "mode": "inline" if count <= SYNC_GENERATION_LIMIT else "job"}
    try:
        tx.write([store.reserve_codes_op(campaign_id, count, capacity),
                  audit.entry_op(actor, "coupon_campaign.generate_codes", target=campaign_id, details=details)])
    except tx.TxCancelled:
        raise ValidationFailed(f"the campaign would hold more than {capacity} codes",
                               fields=[{"field": "count", "message": f"at most {capacity} in all"}])
    if count <= SYNC_GENERATION_LIMIT:
        generate(campaign_id, count, gen_id)
        camp = require(campaign_id)
        return 201, {"campaign_id": campaign_id, "generated": count, "codes_total": camp.codes}
    job = framework.start("generate-coupon-codes", clock.now(), actor,
                          {"campaign_id": campaign_id, "count": count, "gen_id": gen_id}, wait_seconds=0)
    return 202, {"campaign_id": campaign_id, "job_id": job["job_id"], "status": job["status"], "count": count}


def generate_codes(campaign_id: str, count: int, actor: str = "system") -> dict:
    """Generate `count` codes now, whatever the count (benchmarks, CLI, jobs)."""
    camp = require(campaign_id)
    _, length = _pattern(camp)
    capacity = code_capacity(length)
    try:
        tx.write([store.reserve_codes_op(campaign_id, count, capacity)])
    except tx.TxCancelled:
        raise ValidationFailed(f"the campaign would hold more than {capacity} codes")
    generated = generate(campaign_id, count, secrets.token_hex(6))
    return {"campaign_id": campaign_id, "generated": generated, "codes_total": require(campaign_id).codes}


def _checkpoint(campaign_id: str, gen_id: str) -> tuple[int, dict]:
    rec = store.get_gen(campaign_id, gen_id)
    return int(rec.seq or 0), dict(rec.gen)


def generate(campaign_id: str, count: int, gen_id: str, progress=None) -> int:
    """Write `count` new unissued codes; resumable and exact.

    Each chunk is announced first (its candidate codes saved in the generation checkpoint,
    `seq` odd), then written, then committed (`seq` even, `done` and the campaign's `codes`
    counter raised in one transaction). A run that stopped between announce and commit
    finds the pending chunk on restart, writes only the codes that are missing and commits:
    the total never overshoots `count`. (Short codes carry their chunk's tag, so a colliding
    code of someone else is never counted as ours.)
    """
    camp = require(campaign_id)
    prefix, length = _pattern(camp)
    long_codes = length >= LONG_CODE_LENGTH
    chunk_size = max(100, min(GENERATION_CHUNK, 200_000 // (len(prefix) + length + 4)))
    if store.get_gen(campaign_id, gen_id) is None:
        op, seq, state = store.gen_start_op(campaign_id, gen_id, count)
        try:
            tx.write([op])
        except tx.TxCancelled:
            seq, state = _checkpoint(campaign_id, gen_id)
    else:
        seq, state = _checkpoint(campaign_id, gen_id)
    count = int(state["count"])
    resumed = bool(state.get("pending"))  # a pending chunk from an earlier run: check what exists
    barren = 0
    while True:
        if state.get("pending"):
            written = _write_chunk(campaign_id, state["pending"], long_codes, check_existing=resumed)
            resumed = False
            done = int(state["done"]) + written
            committed = {"count": count, "done": done, "pending": None}
            try:
                tx.write([store.gen_advance_op(campaign_id, gen_id, seq, committed),
                          store.codes_added_op(campaign_id, written)])
            except tx.TxCancelled:  # another run committed it: continue from its state
                (seq, state), resumed = _checkpoint(campaign_id, gen_id), True
                continue
            seq, state = seq + 1, committed
            if progress:
                progress(written)
            barren = barren + 1 if written == 0 else 0
            if barren >= 3:
                raise RetryLater("the code space of this pattern is exhausted")
        if state["done"] >= count:
            return int(state["done"])
        n = min(chunk_size, count - int(state["done"]))
        pending = {"tag": f"{gen_id}:{seq + 1}", "codes": codes.random_codes(n, length, prefix)}
        new_state = {**state, "pending": pending}
        try:
            tx.write([store.gen_advance_op(campaign_id, gen_id, seq, new_state)])
        except tx.TxCancelled:
            (seq, state), resumed = _checkpoint(campaign_id, gen_id), True
            continue
        seq, state = seq + 1, new_state


def _write_chunk(campaign_id: str, pending: dict, long_codes: bool, check_existing: bool) -> int:
    """Write an announced chunk; returns how many of its codes are now ours. On a resume,
    codes already there are not written again (a long code found is ours: 60 random bits
    do not collide; a short one is ours only if it carries this chunk's tag)."""
    tag, candidates = pending["tag"], pending["codes"]
    ours = 0
    todo = list(enumerate(candidates))
    if check_existing:
        found = store.existing_codes(candidates)
        ours = sum(1 for c in candidates if c in found and (long_codes or found[c] == tag))
        todo = [(i, c) for i, c in todo if c not in found]
    if long_codes:
        return ours + store.put_codes(campaign_id, todo)
    return ours + store.put_new_codes(campaign_id, todo, tag)
