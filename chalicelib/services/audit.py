"""The admin audit trail: who did what, when. Written in the same transaction as the action."""
from __future__ import annotations

import secrets
from typing import Optional

from chalicelib import clock
from chalicelib.store import audit as store
from chalicelib.store import tx


def entry_op(actor: str, action: str, target: Optional[str] = None, details: Optional[dict] = None) -> tx.Op:
    now = clock.now()
    at = clock.iso(now)
    audit_id = "au_" + secrets.token_hex(8)
    entry = {"audit_id": audit_id, "actor": actor, "action": action, "target": target,
             "details": details or {}, "at": at}
    return store.entry_op(now, audit_id, entry)


def record(actor: str, action: str, target: Optional[str] = None, details: Optional[dict] = None) -> None:
    tx.write([entry_op(actor, action, target, details)])


def list_entries(limit: int, cursor: Optional[dict]) -> tuple[list[dict], Optional[dict]]:
    return store.entries_page(limit, cursor)


