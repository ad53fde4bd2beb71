"""Coupon campaigns (SPEC 2.9, 2.10): one module per use case, re-exported here so callers
keep `from chalicelib.services import coupons`. The design (sharded limits, revision checks,
caches) is explained in docs/COUPONS.md.

- `campaigns.py`: the `Campaign` as the services see it, the per-process caches, create, get,
  list, patch;
- `codes.py`: unique-code generation (inline or the `generate-coupon-codes` job, resumable);
- `issuing.py`: issuing to listed members or an audience, the member's wallet;
- `redeeming.py`: validate, redeem, replays, stacking, the sharded limit and money budget;
- `rollbacks.py`: rolling a redemption back.

Every key, item and condition is built by `chalicelib/store/coupons.py`; the audience rule is
`chalicelib/domain/audience.py`. (Module constants are read where they are defined: patch
`coupons.codes.GENERATION_CHUNK`, not the name re-exported here.)

Redeem, the hot path, costs one TransactGetItems (the order's redemption record, the
member and, unless the shared code is already known to this process, the code) and one
TransactWriteItems:

    0 redemption record   put, condition: no redemption for this order yet (idempotency)
    1 member's wallet     ADD uses 1, condition: uses < max_per_member
    2 one counter shard   ADD used 1, condition: rev = the definition we judged by
                          (and used < cap when the campaign is limited)
    3 unique code         SET redeemed, condition: still in the state we read

The campaign definition comes from a short per-process cache; condition 2 makes a stale
copy harmless: every change of the definition rewrites `rev` on every shard in the same
transaction, so a redemption judged by an old definition fails and is judged again.

SPEC 2.20 adds two more conditions to the same transaction (docs/RULES.md):
- stacking: the order's coupon record (`store.order_key`) counts its redemptions in force
  and the non-stackable ones among them; a non-stackable coupon needs `active = 0`, any
  coupon needs `exclusive = 0`; a rollback decrements them in its own transaction.
- the money budget: `budget_amount` is sliced over the shards like the count limit; a
  redemption takes its discount from one or more slices (`spent <= budget - part` on each),
  so the slices never sum past the budget, and COUPON_BUDGET_EXHAUSTED comes only after a
  fresh read shows all slices together lack the room.
"""
from __future__ import annotations

from chalicelib.services.coupons.campaigns import (
    CAMPAIGN_CACHE_SECONDS,
    Campaign,
    _c,
    _cached,
    _fresh,
    _remember,
    create,
    forget,
    get,
    list_campaigns,
    patch,
    require,
    view,
)
from chalicelib.services.coupons.codes import (
    GENERATION_CHUNK,
    LONG_CODE_LENGTH,
    SYNC_GENERATION_LIMIT,
    code_capacity,
    generate,
    generate_codes,
    request_codes,
)
from chalicelib.services.coupons.issuing import ISSUE_GROUP, issue, issue_codes, wallet
from chalicelib.services.coupons.redeeming import REDEEM_ATTEMPTS, redeem, validate
from chalicelib.services.coupons.rollbacks import rollback

__all__ = [
    "CAMPAIGN_CACHE_SECONDS", "GENERATION_CHUNK", "ISSUE_GROUP", "LONG_CODE_LENGTH", "REDEEM_ATTEMPTS",
    "SYNC_GENERATION_LIMIT", "Campaign", "code_capacity", "create", "forget", "generate", "generate_codes", "get",
    "issue", "issue_codes", "list_campaigns", "patch", "redeem", "request_codes", "require", "rollback", "validate",
    "view", "wallet",
]
