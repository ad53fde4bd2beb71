"""Program configuration (the config table): name (`settings`, `tiers`) → body."""
from __future__ import annotations

from typing import Any, Optional

from chalicelib.store import tx
from chalicelib.store.models import ConfigRecord


def get_body(name: str) -> tuple[bool, Optional[Any]]:
    """(found, body) of a configuration item (consistent read)."""
    rec = ConfigRecord.find(name)
    return (True, rec.body) if rec else (False, None)


def put_op(name: str, body: Any, updated_at: str) -> tx.Op:
    """The item replaced whole (no condition: the last write wins)."""
    return tx.put(ConfigRecord(name, body=body, updated_at=updated_at))
