"""`Idempotency-Key` for POSTs without a natural id (SPEC 3).

The first request's response is stored under (principal, route, key); a replay
with the same payload gets it back with status 200, a different payload gets
409 IDEMPOTENCY_MISMATCH. Services that can (redemptions) write the record in
their own transaction via `record_op`, so effect and record commit together.
"""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Callable, Optional

from chalice import Response

from chalicelib.errors import IdempotencyMismatch
from chalicelib.store import tx
from chalicelib.store.models import IdempotencyRecord

TTL_SECONDS = 7 * 24 * 3600


def key_for(req, method: str, path: str) -> str:
    sub = req.principal.sub if req.principal else "-"
    return f"idem#{sub}#{method}#{path.format(**req.params)}#{req.idempotency_key}"


def request_hash(req) -> str:
    from chalicelib.api.http import canonical_hash

    body = req.body.model_dump(mode="json") if req.body is not None else None
    return canonical_hash({"body": body, "params": req.params})


def record_op(key: str, req_hash: str, status: int, payload: dict, member_id: Optional[str] = None) -> tx.Op:
    rec = IdempotencyRecord(key, member_id=member_id, request_hash=req_hash, status_code=status,
                            response=payload, expires_at=timedelta(seconds=TTL_SECONDS))
    return tx.put(rec, IdempotencyRecord.key.does_not_exist())


def replay(key: str, req_hash: str) -> Optional[Response]:
    """The stored response for `key`, or None; raises on a payload mismatch."""
    from chalicelib.api.http import json_response

    try:
        rec = IdempotencyRecord.get(key, consistent_read=True)
    except IdempotencyRecord.DoesNotExist:
        return None
    if rec.request_hash != req_hash:
        raise IdempotencyMismatch()
    return json_response(200, rec.response)


def run(req, method: str, path: str, call: Callable[[], Response]) -> Response:
    key = key_for(req, method, path)
    req_hash = request_hash(req)
    req.extra["idempotency"] = (key, req_hash)
    stored = replay(key, req_hash)
    if stored is not None:
        return stored
    response = call()
    if 200 <= response.status_code < 300 and not req.extra.get("idempotency_recorded"):
        payload = json.loads(response.body) if response.body else None
        try:
            tx.write([record_op(key, req_hash, response.status_code, payload)])
        except tx.TxCancelled:
            pass  # a concurrent twin stored it first; both saw the same effect
    return response
