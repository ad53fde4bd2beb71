"""Program settings and tiers: stored in the config table, cached per process.

A warm Lambda serves them from memory (`LOYALTY_SETTINGS_CACHE_SECONDS`,
default 30 s), so a points mutation costs no extra read. A PUT refreshes the
writing process at once; other warm containers pick it up within the TTL.
"""
from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Optional

from chalicelib import clock
from chalicelib.config import get_settings
from chalicelib.domain.tiers import TierDef
from chalicelib.services import audit
from chalicelib.store import config as store
from chalicelib.store import tx

if TYPE_CHECKING:
    from chalicelib.schemas.program import ProgramSettings, TierList

_lock = threading.Lock()
_cache: dict[str, tuple[float, Any]] = {}


def _load(name: str, parse):
    entry = _cache.get(name)
    ttl = get_settings().settings_cache_seconds
    if entry and time.monotonic() - entry[0] < ttl:
        return entry[1]
    found, body = store.get_body(name)
    value = parse(body if found else None)
    with _lock:
        _cache[name] = (time.monotonic(), value)
    return value


def invalidate() -> None:
    with _lock:
        _cache.clear()


def settings() -> ProgramSettings:
    from chalicelib.schemas.program import ProgramSettings  # imported on first use (cold start)

    return _load("settings", lambda body: ProgramSettings.model_validate(body or {}))


def tier_list() -> TierList:
    from chalicelib.schemas.program import DEFAULT_TIERS, TierList

    return _load("tiers", lambda body: TierList.model_validate({"items": body or DEFAULT_TIERS}))


def tiers() -> list[TierDef]:
    return _load("tierdefs", lambda _body: [
        TierDef(t.tier_id, t.name, t.threshold, Decimal(t.multiplier), tuple(t.benefits))
        for t in tier_list().items])


def _put(name: str, body: Any, actor: str, action: str) -> None:
    now = clock.iso(clock.now())
    tx.write([store.put_op(name, body, now), audit.entry_op(actor, action, target=name, details={"body": body})])
    invalidate()


def put_settings(new: ProgramSettings, actor: str) -> ProgramSettings:
    _put("settings", new.model_dump(mode="json"), actor, "settings.replace")
    return settings()


def put_tiers(new: TierList, actor: str) -> TierList:
    _put("tiers", new.model_dump(mode="json")["items"], actor, "tiers.replace")
    return tier_list()


def tier_by_id(tier_id: Optional[str]) -> Optional[TierDef]:
    for t in tiers():
        if t.tier_id == tier_id:
            return t
    return None


