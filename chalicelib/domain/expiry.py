"""Points expiry under the program's policy (SPEC 2.6, 2.20): pure functions, no AWS.

- `earned_month` (the default): points earned in month M expire at the end of month
  M + points_expiry_months.
- `last_activity`: all of a member's points expire together at the end of month
  L + points_expiry_months, L being the month of the member's last earning or spending
  (`state["last_activity_month"]`, stamped by every write that earns or spends). A member
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


def _lots(state: dict) -> dict[str, int]:
    lots = ((state or {}).get("wallet") or {}).get("lots") or {}
    return {m: int(n) for m, n in lots.items() if int(n) > 0}


def last_activity_month(state: dict) -> Optional[str]:
    lots = _lots(state)
    candidates = [m for m in [(state or {}).get("last_activity_month"), max(lots) if lots else None] if m]
    return max(candidates) if candidates else None


def expiring_by_month(state: dict, policy: str, expiry_months: Optional[int]) -> dict[str, int]:
    """A member's available points by the month at whose end (UTC) they expire:
    `{"2027-05": 1200, ...}`, sorted by month; {} when expiry is disabled.

    `state`: the member record's `state` (its `wallet.lots` and `last_activity_month`).
    Pending and held points are not in it: they expire only once available again."""
    lots = _lots(state)
    if expiry_months is None or not lots:
        return {}
    if policy == LAST_ACTIVITY:
        last = last_activity_month(state)
        return {add_months(last, expiry_months): sum(lots.values())}
    out: dict[str, int] = {}
    for month in sorted(lots):
        at = add_months(month, expiry_months)
        out[at] = out.get(at, 0) + lots[month]
    return dict(sorted(out.items()))


def expire(wallet, state: dict, policy: str, expiry_months: Optional[int], as_of: datetime) -> int:
    """Remove from `wallet` (a domain.wallet.Wallet) the lots past their expiry at `as_of`;
    returns the points expired. `state` gives the last activity month."""
    if expiry_months is None:
        return 0
    if policy != LAST_ACTIVITY:
        return wallet.expire(as_of, expiry_months)
    view = {**(state or {}), "wallet": {"lots": wallet.lots}}
    schedule = expiring_by_month(view, policy, expiry_months)
    if not schedule or as_of < month_start(add_months(next(iter(schedule)), 1)):
        return 0
    expired = sum(wallet.lots.values())
    wallet.lots.clear()
    wallet.available -= expired
    return expired


def expiring_soon(state: dict, policy: str, expiry_months: Optional[int], now: datetime,
                  warning_days: int) -> list[dict]:
    """`[{"points", "expires_at"}]` for the points that expire within `warning_days` of `now`."""
    horizon = now + timedelta(days=warning_days)
    out = []
    for month, points in expiring_by_month(state, policy, expiry_months).items():
        expires = month_end(month)
        if expires <= horizon:
            out.append({"points": points, "expires_at": iso(expires)})
    return out
