"""`Idempotency-Key` for POSTs without a natural id (SPEC 3).

The key is *claimed* before the request runs: a conditional put of an `in_progress`
record under (principal, route, key). So two concurrent twins, or a client's retry while
the first attempt still runs (API Gateway's 29 s timeout), run the effect once: the
second waits a moment for the first answer and replays it (200), or answers 409
`REQUEST_IN_PROGRESS`, which a client retries like a 503. A 2xx answer replaces the claim
with the stored response; an error releases it (errors are not stored: the client may fix
the request and retry). A claim left by a crashed run lapses after `LEASE_SECONDS`.

Services that can (enrolment, redemptions) write the stored answer in their own
transaction with `record_op`, so effect and record commit together.
"""
from __future__ import annotations

import contextvars
import secrets
import time
from datetime import timedelta
from typing import Callable, Optional

from chalicelib.domain.hashing import canonical_hash
from chalicelib.errors import IdempotencyMismatch, LoyaltyError, RequestInProgress, RetryLater
from chalicelib.services.uow import UnitOfWork
from chalicelib.store import idempotency as store
from chalicelib.store import tx

TTL_SECONDS = 7 * 24 * 3600
LEASE_SECONDS = 60  # longer than any API request may run (API Gateway stops at 29 s)
WAIT_SECONDS = 2.0  # how long a twin waits for the first answer before answering 409

_claimed: contextvars.ContextVar[Optional[tuple[str, str]]] = contextvars.ContextVar("idem_claim", default=None)


def key_for(req, method: str, path: str) -> str:
    sub = req.principal.sub if req.principal else "-"
    return store.request_key(sub, method, path.format(**req.params), req.idempotency_key)


def request_hash(req) -> str:
    body = req.body.model_dump(mode="json") if req.body is not None else None
    return canonical_hash({"body": body, "params": req.params})


def _claim_token(key: str) -> Optional[str]:
    """The token of this request's own claim of `key`, if it claimed it."""
    claimed = _claimed.get()
    return claimed[1] if claimed and claimed[0] == key else None


def record_op(key: str, req_hash: str, status: int, payload: dict, member_id: Optional[str] = None) -> tx.Op:
    """The stored answer, for the effect's own transaction: a new key, or one this request claimed."""
    return store.answer_op(key, req_hash, status, payload, member_id=member_id,
                           ttl=timedelta(seconds=TTL_SECONDS), claimed_by=_claim_token(key))


def stored(key: str, req_hash: str) -> Optional[tuple[int, dict]]:
    """(200, the stored answer) for `key`, None when there is none or it is still in progress;
    IDEMPOTENCY_MISMATCH on another payload."""
    rec = store.get(key)
    if rec is None:
        return None
    if rec.request_hash != req_hash:
        raise IdempotencyMismatch()
    if rec.state == "in_progress":
        return None
    return 200, rec.response


def _claim(key: str, req_hash: str) -> Optional[str]:
    """Claim the key: the claim token, or None when another request holds or answered it."""
    token = secrets.token_hex(8)
    now = int(time.time())
    uow = UnitOfWork()
    uow.add(store.claim_op(key, req_hash, token, now, LEASE_SECONDS, timedelta(seconds=TTL_SECONDS)),
            anchor=store.anchor())
    try:
        uow.commit()
    except tx.TxCancelled:
        return None
    return token


def run(req, method: str, path: str, call: Callable[[], tuple[int, Optional[dict]]]) -> tuple[int, Optional[dict]]:
    """Run `call` once per key: `(status, payload)` of the first run, replayed with 200."""
    key = key_for(req, method, path)
    req_hash = request_hash(req)
    req.extra["idempotency"] = (key, req_hash)
    token = _claim(key, req_hash)
    if token is None:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            answer = stored(key, req_hash)
            if answer is not None:
                return answer
            if time.monotonic() >= deadline:
                raise RequestInProgress()
            time.sleep(0.1)
    marker = _claimed.set((key, token))
    try:
        status, payload = call()
    except LoyaltyError as err:
        if not isinstance(err, RetryLater):  # a rule said no: nothing was written, the key is free again
            _release(key, token)
        raise  # otherwise the outcome may be unknown: the claim stands until its lease lapses
    finally:
        _claimed.reset(marker)
    if not 200 <= status < 300:
        _release(key, token)
    elif not req.extra.get("idempotency_recorded"):
        tx.write([store.claimed_answer_op(key, req_hash, status, payload, token, timedelta(seconds=TTL_SECONDS))])
    return status, payload


def _release(key: str, token: str) -> None:
    try:
        tx.write([store.release_op(key, token)])
    except Exception:  # noqa: BLE001 - the lease lapses by itself
        pass


def replay_json(key: str, req_hash: str) -> Optional[dict]:
    """The stored payload (for a service whose own transaction lost the race to a twin)."""
    answer = stored(key, req_hash)
    return None if answer is None else answer[1]
