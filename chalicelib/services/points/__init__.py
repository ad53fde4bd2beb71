"""Points mutations: accruals, refunds, activities, adjustments (SPEC 2.3–2.5).

Each is: read the member (one GetItem) → pure rules compute the new state, the
ledger entries and the response → one TransactWriteItems (the unit of work),
conditional on the member's version and on the operation's id being new → bounded
jittered retry on a version conflict. A failed id condition means a replay: the
stored response comes back with status 200, or IDEMPOTENCY_MISMATCH when the
payload differs.

- `change.py`: the mutation frame (`Change`), tier changes and their messages;
- `accruals.py`: accrue, preview, the referral bonus;
- `refunds.py`: refund;
- `activities.py`: record_activity, adjust, the ledger page.
"""
from chalicelib.services.points.accruals import _hashed_body, accrue, earn_for, order_context, preview
from chalicelib.services.points.activities import adjust, ledger, record_activity
from chalicelib.services.points.change import Change, balance, record_tier_change, tier_change_message
from chalicelib.services.points.refunds import refund

__all__ = ["Change", "_hashed_body", "accrue", "adjust", "balance", "earn_for", "ledger", "order_context", "preview",
           "record_activity", "record_tier_change", "refund", "tier_change_message"]
