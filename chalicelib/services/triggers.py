"""Behaviour triggers (SPEC 2.12): storefront events, cart and browse reminders, product signals."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Optional

from chalicelib import clock
from chalicelib.domain.hashing import canonical_hash
from chalicelib.errors import IdempotencyMismatch
from chalicelib.services import audit, members, program
from chalicelib.services.outreach import Candidate, deliver
from chalicelib.store import idempotency as idem_store
from chalicelib.store import marketing as store
from chalicelib.store import members as member_store
from chalicelib.store import tx
from chalicelib.store.base import Conflict, retrying

EVENT_TTL = timedelta(days=60)
IDEMPOTENCY_TTL = timedelta(days=60)
# event type → the trigger it may fire, and that trigger's delay parameter (name, default hours)
REMINDERS = {"cart_abandoned": ("cart_reminder", "cart_reminder_hours", 2),
             "product_viewed": ("browse_reminder", "hours", 24)}
DEFAULT_MAX_AGE_HOURS = 48


def _prior(key: str, op_id: str, req_hash: str, member_id: Optional[str] = None) -> Optional[dict]:
    prior = idem_store.get(key)
    if prior is None:
        return None
    if prior.request_hash != req_hash or (member_id is not None and prior.member_id != member_id):
        raise IdempotencyMismatch(key=op_id)
    return prior.response


# --- storefront events ------------------------------------------------------------------

def record_event(member_id: str, body) -> tuple[int, dict]:
    """Store a behaviour event (202; the same event_id again → 200). Favourite events set
    the member's state for the sku unless a later event already did."""
    key = idem_store.event_key(body.event_id)
    req_hash = canonical_hash({"member_id": member_id, **body.model_dump(mode="json")})
    stored = _prior(key, body.event_id, req_hash, member_id)
    if stored is not None:
        return 200, stored
    row = members.require(member_id)
    members.require_active(row)
    occurred = body.occurred_at or clock.now()
    at = clock.iso(occurred)
    response = {"event_id": body.event_id, "member_id": member_id, "type": body.type, "accepted": True}

    def attempt() -> tuple[int, dict]:
        event = store.event_record(member_id, body.event_id, body.type, occurred, body.sku,
                                   {"cart": body.cart} if body.cart is not None else None,
                                   pending=body.type in REMINDERS, ttl=EVENT_TTL)
        ops = [idem_store.answer_op(key, req_hash, 202, response, member_id=member_id, ttl=IDEMPOTENCY_TTL),
               tx.put(event)]
        if body.type in ("favorite_added", "favorite_removed"):
            read = store.get_favorite(body.sku, member_id)
            if read is None or read.at <= at:  # an older event arriving late changes nothing
                ops.append(store.favorite_op(body.sku, member_id, body.type.split("_")[1], at, read))
        try:
            tx.write(ops)
        except tx.TxCancelled as exc:
            if exc.failed(0):
                return 200, _prior(key, body.event_id, req_hash, member_id) or response
            raise Conflict()  # the favourite changed under us: read it again
        return 202, response

    return retrying()(attempt)


# --- run-triggers -----------------------------------------------------------------------

def reminder_due(event, as_of: datetime, cfg: dict) -> Optional[str]:
    """None while the reminder's delay has not passed, else 'due', 'disabled' or 'expired'."""
    trigger, param, default_hours = REMINDERS[event.type]
    c = cfg.get(trigger) or {}
    occurred = clock.parse_instant(event.occurred_at)
    if occurred + timedelta(hours=float(c.get(param, default_hours))) > as_of:
        return None
    if not c.get("enabled", True):
        return "disabled"
    if occurred + timedelta(hours=float(c.get("max_age_hours", DEFAULT_MAX_AGE_HOURS))) < as_of:
        return "expired"
    return "due"


def fire_reminders(events: list, as_of: datetime, cfg: dict, cap: int) -> dict:
    """Reminders for due events (one page of the pending index): suppressed when a
    purchase followed the event, else queued (once per member, trigger and day). An event
    the weekly cap held back stays pending and is tried again next hour, until it expires."""
    counts: dict = {}

    def bump(k: str) -> None:
        counts[f"trigger_{k}"] = counts.get(f"trigger_{k}", 0) + 1

    ids = list(dict.fromkeys(e.member_id for e in events))
    rows = member_store.batch_get(ids, consistent=False)
    cands, finished = [], []
    for e in events:
        row = rows.get(e.member_id)
        last = (row.orders.last_at if row else None) or ""
        if row is None or row.status != "active":
            bump("inactive")
            finished.append(e)
        elif last >= e.occurred_at:
            bump("suppressed")
            finished.append(e)
        else:
            trigger = REMINDERS[e.type][0]
            variables = {"sku": e.sku, **({"cart": e.data["cart"]} if (e.data or {}).get("cart") is not None else {})}
            cands.append((e, Candidate(row.member_id, row.profile, trigger, trigger, e.occurred_at[:10], variables,
                                       control_share=str((cfg.get(trigger) or {}).get("control_share", "0")))))
    outcomes: dict = {}
    deliver([c for _, c in cands], cap, outcomes=outcomes)
    for e, c in cands:
        outcome = outcomes.get(id(c), "capped")
        bump(outcome)
        if outcome != "capped":
            finished.append(e)
    for e in finished:
        store.clear_pending(e)
    return counts


# --- product signals --------------------------------------------------------------------

def product_signal(body, actor: str) -> tuple[int, dict]:
    """Back in stock, price drop or low stock: one message to each active member who has the
    sku in their favourites, queued during the request (consent and the cap apply)."""
    key = idem_store.signal_key(body.signal_id)
    req_hash = canonical_hash(body.model_dump(mode="json"))
    stored = _prior(key, body.signal_id, req_hash)
    if stored is not None:
        return 200, stored
    settings = program.settings()
    enabled = settings.automation(body.type).get("enabled", True)
    share = str(settings.automation(body.type).get("control_share", "0"))
    follower_ids = list(store.followers(body.sku))
    counts: dict = {}
    if enabled:
        cands = []
        for m in member_store.batch_get(follower_ids, consistent=False).values():
            if m.active:
                cands.append(Candidate(m.member_id, dict(m.profile), body.type, body.type,
                                       body.signal_id, {**(body.variables or {}), "sku": body.sku},
                                       control_share=share))
        counts = deliver(cands, settings.frequency_cap_per_week)
    response = {"signal_id": body.signal_id, "sku": body.sku, "type": body.type, "enabled": enabled,
                "followers": len(follower_ids),
                # an earlier attempt of this same signal may have queued some already
                "queued": int(counts.get("queued", 0)) + int(counts.get("duplicate", 0)),
                "capped": int(counts.get("capped", 0)), "no_consent": int(counts.get("no_consent", 0)),
                "control": int(counts.get("control", 0))}
    try:
        tx.write([idem_store.answer_op(key, req_hash, 202, response),
                  audit.entry_op(actor, "product_signal", target=body.sku, details=response)])
    except tx.TxCancelled:
        return 200, _prior(key, body.signal_id, req_hash)
    return 202, response
