"""Stored answers in the idempotency table: Idempotency-Key requests (claimed before they
run) and the records of operations that carry their own id (storefront events, product
signals). Key formats live here and nowhere else.

- `idem#{principal}#{method}#{path}#{Idempotency-Key}`: a generic Idempotency-Key request;
  `state` "in_progress" with the claimer's `claim` token and `claimed_at` while it runs.
- `event#{event_id}`, `signal#{signal_id}`: a storefront event's, a product signal's answer.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Optional

from chalicelib.store import tx
from chalicelib.store.models import IdempotencyRecord


# --- key formats ---------------------------------------------------------------------

def request_key(principal: str, method: str, path: str, idempotency_key: str) -> str:
    return f"idem#{principal}#{method}#{path}#{idempotency_key}"


def event_key(event_id: str) -> str:
    return f"event#{event_id}"


def signal_key(signal_id: str) -> str:
    return f"signal#{signal_id}"


def key(stored_key: str) -> tuple:
    """A stored answer's key for `tx.get_many`."""
    return (IdempotencyRecord, stored_key)


def anchor() -> type:
    """The stored answer as a unit of work's anchor (the write's own record)."""
    return IdempotencyRecord


# --- reads -------------------------------------------------------------------------------

def get(stored_key: str) -> Optional[IdempotencyRecord]:
    """The stored answer (consistent read), None when there is none."""
    return IdempotencyRecord.find(stored_key)


# --- ops -----------------------------------------------------------------------------------

def answer_op(stored_key: str, request_hash: str, status_code: int, response: dict, *,
              member_id: Optional[str] = None, ttl: Optional[timedelta] = None,
              claimed_by: Optional[str] = None) -> tx.Op:
    """The stored answer, only if the key is new, or (`claimed_by`) still claimed by that token."""
    rec = IdempotencyRecord(stored_key, member_id=member_id, request_hash=request_hash, status_code=status_code,
                            response=response, expires_at=ttl)
    cond = IdempotencyRecord.key.does_not_exist()
    if claimed_by is not None:
        cond = cond | (IdempotencyRecord.claim == claimed_by)
    return tx.put(rec, cond)


def claim_op(stored_key: str, request_hash: str, token: str, now: int, lease_seconds: int,
             ttl: timedelta) -> tx.Op:
    """Claim a key before its request runs: only if it is new, or its claim lapsed (held
    `in_progress` since before `now - lease_seconds`)."""
    rec = IdempotencyRecord(stored_key, request_hash=request_hash, state="in_progress", claim=token, claimed_at=now,
                            expires_at=ttl)
    lapsed = (IdempotencyRecord.state == "in_progress") & (IdempotencyRecord.claimed_at < now - lease_seconds)
    return tx.put(rec, IdempotencyRecord.key.does_not_exist() | lapsed)


def claimed_answer_op(stored_key: str, request_hash: str, status_code: int, response: dict, token: str,
                      ttl: timedelta) -> tx.Op:
    """The answer in place of the claim, only while the claim is `token`'s."""
    rec = IdempotencyRecord(stored_key, request_hash=request_hash, status_code=status_code, response=response,
                            expires_at=ttl)
    return tx.put(rec, IdempotencyRecord.claim == token)


def release_op(stored_key: str, token: str) -> tx.Op:
    """Give a claimed key back (the request failed), only while the claim is `token`'s."""
    return tx.delete(IdempotencyRecord(stored_key, request_hash=""), IdempotencyRecord.claim == token)
