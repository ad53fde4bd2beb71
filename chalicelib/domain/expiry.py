"""Points expiry under the program's policy (SPEC 2.6, 2.20): pure functions, no AWS.

- `earned_month` (the default): points earned in month M expire at the end of month
  M + points_expiry_months.
- `last_activity`: all of a member's points expire together at the end of month
  L + points_expiry_months, L being the month of the member's last earning or spending
  (`Member.last_activity_month`, stamped by every write that earns or spends). A member
  written before the stamp existed falls back to the newest lot's month.

`expiring_by_month` is the one schedule every reader uses: the `expire-points` job,
`expiring_soon` in member reads and the liability report.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Optional

from chalicelib.clock import iso
from chalicelib.domain.months import add_months, month_end, month_start

EARNED_MONTH = "earned_month"
LAST_ACTIVITY = "last_activity"


def _positive(lots: Optional[dict]) -> dict[str, int]:
    return {m: int(n) for m, n in (lots or {}).items() if int(n) > 0}


def _lots(state: dict) -> dict[str, int]:
    return _positive(((state or {}).get("wallet") or {}).get("lots"))


def last_activity_month(state: dict) -> Optional[str]:
    return _last_month(_lots(state), (state or {}).get("last_activity_month"))


def _last_month(lots: dict, stamped: Optional[str]) -> Optional[str]:
    candidates = [m for m in [stamped, max(lots) if lots else None] if m]
    return max(candidates) if candidates else None


def expiring_by_month(state: dict, policy: str, expiry_months: Optional[int]) -> dict[str, int]:
    """`schedule` of a stored member state (its `wallet.lots` and `last_activity_month`): the
    liability report reads scanned items in this shape."""
    return schedule((state or {}).get("wallet", {}).get("lots") if state else None,
                    (state or {}).get("last_activity_month"), policy, expiry_months)


def schedule(lots: Optional[dict], last_activity: Optional[str], policy: str,
             expiry_months: Optional[int]) -> dict[str, int]:
    """A member's available points by the month at whose end (UTC) they expire:
    `{"2027-05": 1200, ...}`, sorted by month; {} when expiry is disabled.

    `lots`: the wallet's available lots (month -> points); `last_activity`: the month of
    its last earning or spending. Pending and held points are not in it: they expire only
    once available again."""
    lots = _positive(lots)
    if expiry_months is None or not lots:
        return {}
    if policy == LAST_ACTIVITY:
        return {add_months(_last_month(lots, last_activity), expiry_months): sum(lots.values())}
    out: dict[str, int] = {}
    for month in sorted(lots):
        at = add_months(month, expiry_months)
        out[at] = out.get(at, 0) + lots[month]
    return dict(sorted(out.items()))


def expire(wallet, last_activity: Optional[str], policy: str, expiry_months: Optional[int],
           as_of: datetime) -> int:
    """Remove from `wallet` (a domain.wallet.Wallet) the lots past their expiry at `as_of`;
    returns the points expired. `last_activity`: the member's last activity month."""
    if expiry_months is None:
        return 0
    if policy != LAST_ACTIVITY:
        return wallet.expire(as_of, expiry_months)
    due = schedule(wallet.lots, last_activity, policy, expiry_months)
    if not due or as_of < month_start(add_months(next(iter(due)), 1)):
        return 0
    expired = sum(wallet.lots.values())
    wallet.lots.clear()
    wallet.available -= expired
    return expired


def expiring_soon(wallet, last_activity: Optional[str], policy: str, expiry_months: Optional[int],
                  now: datetime, warning_days: int) -> list[dict]:
    """`[{"points", "expires_at"}]` for the points of `wallet` that expire within
    `warning_days` of `now`."""
    horizon = now + timedelta(days=warning_days)
    out = []
    for month, points in schedule(wallet.lots, last_activity, policy, expiry_months).items():
        expires = month_end(month)
        if expires <= horizon:
            out.append({"points": points, "expires_at": iso(expires)})
    return out
