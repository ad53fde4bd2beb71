"""The admin audit trail (the audit table): `audit` / `{at}#{audit_id}`, newest last."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from chalicelib import clock
from chalicelib.store import tx
from chalicelib.store.models import AuditRecord

PARTITION = "audit"


def entry_op(at: datetime, audit_id: str, entry: dict) -> tx.Op:
    """One entry, for the action's own transaction (a fresh id: no condition)."""
    return tx.put(AuditRecord(PARTITION, f"{clock.sortable(at)}#{audit_id}", entry=entry))


def entries_page(limit: int, cursor: Optional[dict]) -> tuple[list[dict], Optional[dict]]:
    """Entries newest first."""
    result = AuditRecord.query(PARTITION, scan_index_forward=False, limit=limit, last_evaluated_key=cursor)
    items = [r.entry for r in result]
    return items, result.last_evaluated_key
