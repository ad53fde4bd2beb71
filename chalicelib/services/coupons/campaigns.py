"""Coupon campaigns: the campaign as the services see it, the per-process caches, and the
admin's create, get, list and patch (SPEC 2.9, 2.20)."""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional

from chalicelib import clock
from chalicelib.config import get_settings
from chalicelib.domain import coupons as rules_
from chalicelib.domain.audience import Audience
from chalicelib.errors import AlreadyExists, NotFound, ValidationFailed
from chalicelib.schemas.coupons import READ_ONLY_FIELDS, CampaignDefinition
from chalicelib.services import attribution, audit
from chalicelib.store import coupons as store
from chalicelib.store import tx
from chalicelib.store.base import Conflict, retrying
from chalicelib.store.coupons import SHARDS

CAMPAIGN_CACHE_SECONDS = 5.0
_STATUS_MOVES = {"draft": {"draft", "active", "paused", "ended"}, "active": {"active", "paused", "ended"},
                 "paused": {"paused", "active", "ended"}, "ended": {"ended"}}
_IMMUTABLE = ("campaign_id", "code_mode", "shared_code", "code_pattern")


# --- the campaign as the services see it ---------------------------------------------------

@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    rev: str
    definition: dict
    caps: tuple
    budgets: Optional[tuple]
    codes: int
    created_at: Optional[str]
    updated_at: Optional[str]
    rules: rules_.Rules

    @property
    def mode(self) -> str:
        return self.definition["code_mode"]

    @property
    def shards(self) -> int:
        return len(self.caps)

    @property
    def stackable(self) -> bool:
        return bool(self.definition.get("stackable", False))

    @classmethod
    def from_record(cls, rec) -> "Campaign":
        """From a stored campaign (as `store.coupons` returns it, read by attribute)."""
        d = rec.data
        caps = tuple(rec.caps) if rec.caps else tuple(rules_.shard_caps(d.get("max_redemptions"), SHARDS))
        budgets = tuple(rec.budgets) if rec.budgets and d.get("budget_amount") is not None else None
        return cls(rec.campaign_id, rec.rev, d, caps, budgets, int(rec.codes or 0), rec.created_at,
                   rec.updated_at, _rules(d))


def _rules(d: dict) -> rules_.Rules:
    return rules_.Rules(
        discount_type=d["discount"]["type"], discount_value=int(d["discount"].get("value") or 0),
        min_order_amount=int(d.get("min_order_amount") or 0),
        categories=frozenset(d["categories"]) if d.get("categories") else None,
        starts_at=clock.parse_instant(d["starts_at"]), ends_at=clock.parse_instant(d["ends_at"]),
        status=d["status"], max_per_member=int(d.get("max_per_member") or 1),
        audience=Audience.of(d.get("audience")))


def _definition_json(model: CampaignDefinition) -> dict:
    d = model.model_dump(mode="json")
    d["starts_at"] = clock.iso(model.starts_at)
    d["ends_at"] = clock.iso(model.ends_at)
    return d


def _new_rev() -> str:
    return secrets.token_hex(8)


# --- per-process caches (bound to the settings object, so tests and stages never mix) -------

_lock = threading.Lock()
_cache: dict[str, Any] = {"settings": None}


def _c() -> dict:
    settings = get_settings()
    if _cache.get("settings") is not settings:
        with _lock:
            if _cache.get("settings") is not settings:
                _cache.clear()
                _cache.update(settings=settings, campaigns={}, shared={}, full={}, rooms={})
    return _cache


def _remember(camp: Campaign) -> Campaign:
    cache = _c()["campaigns"]
    if len(cache) > 10_000:
        cache.clear()
    cache[camp.campaign_id] = (time.monotonic(), camp)
    return camp


def forget(campaign_id: str) -> None:
    _c()["campaigns"].pop(campaign_id, None)


def _fresh(campaign_id: str) -> Optional[Campaign]:
    rec = store.get_campaign(campaign_id)
    if rec is None or rec.data is None:
        return None
    return _remember(Campaign.from_record(rec))


def _cached(campaign_id: str) -> tuple[Optional[Campaign], bool]:
    hit = _c()["campaigns"].get(campaign_id)
    if hit and time.monotonic() - hit[0] < CAMPAIGN_CACHE_SECONDS:
        return hit[1], True
    return _fresh(campaign_id), False


def _cached_only(campaign_id: str) -> tuple[Optional[Campaign], bool]:
    hit = _c()["campaigns"].get(campaign_id)
    if hit and time.monotonic() - hit[0] < CAMPAIGN_CACHE_SECONDS:
        return hit[1], True
    return None, False


def require(campaign_id: str) -> Campaign:
    camp = _fresh(campaign_id)
    if camp is None:
        raise NotFound("no such coupon campaign", campaign_id=campaign_id)
    return camp


# --- admin: campaigns ------------------------------------------------------------------------

def view(camp: Campaign, totals: Optional[dict] = None) -> dict:
    totals = totals or {"used": 0, "issued": 0}
    d = {"stackable": False, "budget_amount": None, **camp.definition}
    return {**d, "created_at": camp.created_at, "updated_at": camp.updated_at,
            "stats": rules_.stats(camp.mode, camp.codes, int(totals["issued"]), int(totals["used"]),
                                  int(totals.get("spent", 0)))}


def create(body, actor: str) -> dict:
    """Create a campaign with its counter shards (and its shared code); 409 on a taken id or code."""
    d = _definition_json(body)
    cid = d["campaign_id"]
    now = clock.now()
    rev = _new_rev()
    caps = rules_.shard_caps(d["max_redemptions"], SHARDS)
    budgets = rules_.shard_caps(d["budget_amount"], SHARDS) if d.get("budget_amount") is not None else None
    shared = d["code_mode"] == "shared"
    rec = store.new_campaign(cid, rev, d, caps, budgets, 1 if shared else 0, now)
    ops = [store.campaign_create_op(rec)]
    ops += store.shard_create_ops(cid, rev, caps, budgets)
    code_index = len(ops)
    if shared:
        ops.append(store.shared_code_create_op(d["shared_code"], cid))
    ops.append(audit.entry_op(actor, "coupon_campaign.create", target=cid, details={"definition": d}))
    try:
        tx.write(ops)
    except tx.TxCancelled as c:
        if c.failed(0):
            raise AlreadyExists("a coupon campaign with this id exists", campaign_id=cid)
        if shared and c.failed(code_index):
            raise AlreadyExists("this code is already in use", shared_code=d["shared_code"])
        raise
    return view(_remember(Campaign.from_record(rec)))


def get(campaign_id: str) -> dict:
    camp = require(campaign_id)
    return _with_revenue([view(camp, store.shard_totals({campaign_id: camp.shards})[campaign_id])])[0]


def list_campaigns(limit: int, cursor: Optional[dict]) -> tuple[list[dict], Optional[dict]]:
    recs, last = store.campaigns_page(limit, cursor)
    camps = [Campaign.from_record(r) for r in recs if r.data is not None]
    totals = store.shard_totals({c.campaign_id: c.shards for c in camps}) if camps else {}
    return _with_revenue([view(c, totals[c.campaign_id]) for c in camps]), last


def _with_revenue(views: list[dict]) -> list[dict]:
    """SPEC 2.18: stats gain `revenue` once measure-campaigns has run (docs/UPLIFT.md)."""
    return attribution.with_coupon_revenue(views)


def patch(campaign_id: str, body, actor: str) -> dict:
    """Change fields (and pause, resume or end through `status`). A new `max_redemptions` is
    re-sliced over the shards from their current use, in the same transaction."""
    dumped = body.model_dump(mode="json")
    changes = {k: dumped[k] for k in body.model_fields_set if k not in READ_ONLY_FIELDS}

    def attempt():
        camp = require(campaign_id)
        current = camp.definition
        for key in _IMMUTABLE:
            if key in changes and changes[key] != current.get(key):
                raise ValidationFailed(f"{key} cannot change after creation",
                                       fields=[{"field": key, "message": "fixed at creation"}])
        if "status" in changes and changes["status"] not in _STATUS_MOVES[current["status"]]:
            raise ValidationFailed(f"a campaign cannot go from {current['status']} to {changes['status']}",
                                   fields=[{"field": "status", "message": "transition not allowed"}])
        new_def = _definition_json(CampaignDefinition.model_validate({**current, **changes}))
        _, shards = store.get_shards(campaign_id, camp.shards)
        used = [int(s.used or 0) if s is not None else 0 for s in shards]
        spent = [int(s.spent or 0) if s is not None else 0 for s in shards]
        limit_changed = new_def["max_redemptions"] != current.get("max_redemptions")
        caps = rules_.redistribute(new_def["max_redemptions"], used) if limit_changed else list(camp.caps)
        # the money budget is re-sliced the same way, from what each slice has spent (SPEC 2.20)
        budget_changed = new_def.get("budget_amount") != current.get("budget_amount")
        budgets = (rules_.redistribute(new_def.get("budget_amount"), spent) if budget_changed
                   else list(camp.budgets) if camp.budgets else None)
        if budgets is not None and all(b is None for b in budgets):
            budgets = None
        rev = _new_rev()
        now = clock.iso(clock.now())
        ops = [store.campaign_revise_op(campaign_id, new_def, rev, caps, budgets, now, expected_rev=camp.rev)]
        for n in range(camp.shards):
            ops.append(store.shard_revise_op(
                campaign_id, n, rev, cap=(caps[n], used[n]) if limit_changed else None,
                budget=(budgets[n] if budgets else None, spent[n]) if budget_changed else None))
        ops.append(audit.entry_op(actor, "coupon_campaign.update", target=campaign_id, details={"changes": changes}))
        try:
            tx.write(ops)
        except tx.TxCancelled:
            raise Conflict()
        forget(campaign_id)
        return get(campaign_id)

    return retrying()(attempt)
