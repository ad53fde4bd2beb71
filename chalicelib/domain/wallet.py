"""A member's points: available (FIFO lots by earning month), pending, lifetime totals.

Invariants kept by every function here:
- `sum(lots.values()) == max(available, 0)`; a negative `available` is a deficit
  that later credits cover first.
- `pending == sum(lot.points for lot in pending_lots)`.
- `held == sum(hold["points"] for hold in holds.values())`; each open hold keeps the
  lots it took (month → points), so a release puts them back where they came from.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Optional

from chalicelib.clock import iso, parse_instant
from chalicelib.domain.months import add_months, month_end, month_start


MAX_PENDING_LOTS = 12  # pending lots kept one per order; beyond, the closest two merge (`_coalesce`)


@dataclass
class PendingLot:
    order_id: str
    points: int
    month: str
    release_at: str  # ISO instant

    def stored(self) -> list:
        """As the member item keeps it: `[order_id, points, month, release_at]`, 45 bytes less
        than the keyed form (a busy member holds 12 of them in an item rewritten by every write)."""
        return [self.order_id, self.points, self.month, self.release_at]

    @classmethod
    def read(cls, v) -> "PendingLot":
        """A stored lot, in the list form or the keyed form older items hold."""
        return cls(*v) if isinstance(v, list) else cls(**v)


@dataclass
class Wallet:
    available: int = 0
    pending: int = 0
    lifetime_earned: int = 0
    lifetime_spent: int = 0
    lots: dict = field(default_factory=dict)  # month -> points
    pending_lots: list = field(default_factory=list)  # [PendingLot]
    held: int = 0
    holds: dict = field(default_factory=dict)  # hold_id -> {"points", "lots", "expires_at", ...}

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "Wallet":
        d = d or {}
        return cls(
            available=int(d.get("available", 0)),
            pending=int(d.get("pending", 0)),
            lifetime_earned=int(d.get("lifetime_earned", 0)),
            lifetime_spent=int(d.get("lifetime_spent", 0)),
            lots={k: int(v) for k, v in (d.get("lots") or {}).items()},
            pending_lots=[PendingLot.read(p) for p in d.get("pending_lots") or []],
            held=int(d.get("held", 0)),
            holds={k: dict(v) for k, v in (d.get("holds") or {}).items()},
        )

    def to_dict(self) -> dict:
        return {
            "available": self.available,
            "pending": self.pending,
            "lifetime_earned": self.lifetime_earned,
            "lifetime_spent": self.lifetime_spent,
            "lots": dict(sorted(self.lots.items())),
            "pending_lots": [p.stored() for p in self.pending_lots],
            "held": self.held,
            "holds": self.holds,
        }

    def copy(self) -> "Wallet":
        return Wallet.from_dict(self.to_dict())

    @property
    def balance(self) -> int:
        """What the ledger sums to."""
        return self.available + self.pending + self.held

    # --- credits -----------------------------------------------------------
    def _credit_available(self, points: int, month: str) -> None:
        before = max(self.available, 0)
        self.available += points
        gained = max(self.available, 0) - before
        if gained:
            self.lots[month] = self.lots.get(month, 0) + gained

    def earn(self, points: int, month: str, *, order_id: Optional[str] = None,
             release_at: Optional[datetime] = None, now: Optional[datetime] = None) -> bool:
        """Credit earned points; pending until `release_at` when that is after `now`.

        Returns True when the points went to pending.
        """
        if points <= 0:
            return False
        self.lifetime_earned += points
        if release_at is not None and now is not None and release_at > now:
            self.pending_lots.append(PendingLot(order_id or "", points, month, iso(release_at)))
            self.pending += points
            self._coalesce()
            return True
        self._credit_available(points, month)
        return False

    def _coalesce(self) -> None:
        """Keep at most MAX_PENDING_LOTS pending lots, so the member item stays bounded however
        many orders fall in the return window. While there are more, two neighbouring lots of
        the same earning month (neighbours in release order) merge into one released at the
        later of their instants: points never become available early. The pair chosen is the
        one whose merge delays the fewest point-hours (the earlier lot's points × the gap), so
        small, close lots merge first. With more orders in the window than lots some points
        wait longer than their own window (a member with six orders a day in a 14-day window:
        up to about two days for some; see docs/ARCHITECTURE.md). The merged lot belongs to no
        single order: a refund of one of its orders reverses from available points, as for an
        order whose points have matured."""
        while len(self.pending_lots) > MAX_PENDING_LOTS:
            lots = sorted(self.pending_lots, key=lambda p: (p.month, p.release_at))
            pairs = [(a.month == b.month, i) for i, (a, b) in enumerate(zip(lots, lots[1:]))]
            if not any(same for same, _ in pairs):  # every lot in another month (a window spans at most 13)
                lots.sort(key=lambda p: p.release_at)
                pairs = [(True, i) for i in range(len(lots) - 1)]

            def delay(i: int) -> float:
                a, b = lots[i], lots[i + 1]
                return (parse_instant(b.release_at) - parse_instant(a.release_at)).total_seconds() * a.points

            i = min((i for same, i in pairs if same), key=delay)
            a, b = lots[i], lots[i + 1]
            merged = PendingLot(a.order_id if a.order_id == b.order_id else "", a.points + b.points,
                                max(a.month, b.month), max(a.release_at, b.release_at))
            self.pending_lots = [p for p in self.pending_lots if p is not a and p is not b] + [merged]

    def mature(self, now: datetime) -> int:
        """Move pending lots whose return window has closed to available."""
        matured = 0
        keep = []
        for lot in self.pending_lots:
            if parse_instant(lot.release_at) <= now:
                self.pending -= lot.points
                self._credit_available(lot.points, lot.month)
                matured += lot.points
            else:
                keep.append(lot)
        self.pending_lots = keep
        return matured

    # --- debits ------------------------------------------------------------
    def _take_lots(self, points: int) -> dict[str, int]:
        """Consume up to `points` from the oldest lots (FIFO); returns month → points taken."""
        remaining = points
        taken: dict[str, int] = {}
        for month in sorted(self.lots):
            if remaining <= 0:
                break
            take = min(self.lots[month], remaining)
            self.lots[month] -= take
            taken[month] = take
            remaining -= take
            if self.lots[month] == 0:
                del self.lots[month]
        return taken

    def spend(self, points: int) -> dict[str, int]:
        """Redeem: only from available, never below zero (caller checks `can_spend`).
        Returns the lots it took (month → points), for `give_back`."""
        if not self.can_spend(points):
            raise ValueError("insufficient available points")
        taken = self._take_lots(points)
        self.available -= points
        self.lifetime_spent += points
        return taken

    def can_spend(self, points: int) -> bool:
        return points >= 0 and self.available >= points

    def give_back(self, lots: dict[str, int]) -> None:
        """Undo a spend (a cancelled redemption): the points return to the months they were
        taken from, so cancelling does not extend their life (a lot whose month has expired
        since goes at the next expiry run)."""
        self.lifetime_spent -= sum(lots.values())
        for month in sorted(lots):
            self._credit_available(lots[month], month)

    def debit(self, points: int) -> None:
        """Take points even past zero (reversals, negative adjustments)."""
        self._take_lots(min(points, max(self.available, 0)))
        self.available -= points

    def reverse(self, points: int, order_id: str) -> None:
        """Reverse an order's points: from its pending lot first, then from available."""
        remaining = points
        for lot in list(self.pending_lots):
            if lot.order_id == order_id and remaining > 0:
                take = min(lot.points, remaining)
                lot.points -= take
                self.pending -= take
                remaining -= take
                if lot.points == 0:
                    self.pending_lots.remove(lot)
        if remaining:
            self.debit(remaining)
        self.lifetime_earned -= points

    # --- holds (SPEC 2.14) ---------------------------------------------------
    def hold(self, hold_id: str, points: int, **meta) -> dict[str, int]:
        """Reserve available points, oldest lots first; returns the lots taken."""
        if points <= 0 or not self.can_spend(points):
            raise ValueError("insufficient available points")
        taken = self._take_lots(points)
        self.available -= points
        self.held += points
        self.holds[hold_id] = {**meta, "points": points, "lots": taken}
        return taken

    def release(self, hold_id: str) -> dict:
        """Give a hold's points back to the lots they came from (their expiry does not move)."""
        h = self.holds.pop(hold_id)
        self.held -= h["points"]
        for month in sorted(h["lots"]):
            self._credit_available(int(h["lots"][month]), month)
        return h

    def capture(self, hold_id: str, points: int) -> dict[str, int]:
        """Spend `points` (≤ held) of a hold: the oldest of its lots are spent, the rest go
        back to available. Returns the lots spent (for a later `give_back`)."""
        h = self.holds[hold_id]
        if not 0 <= points <= h["points"]:
            raise ValueError("capture exceeds the held points")
        spent, rest = split_lots(h["lots"], points)
        self.holds.pop(hold_id)
        self.held -= h["points"]
        for month in sorted(rest):
            self._credit_available(rest[month], month)
        self.lifetime_spent += points
        return spent

    def expired_holds(self, now: datetime) -> list[str]:
        return sorted(k for k, h in self.holds.items() if parse_instant(h["expires_at"]) <= now)

    def release_expired(self, now: datetime) -> list[dict]:
        """Release every hold past its `expires_at`; returns them (with their hold_id)."""
        return [{**self.release(k), "hold_id": k} for k in self.expired_holds(now)]

    # --- expiry ------------------------------------------------------------
    def expire(self, as_of: datetime, expiry_months: Optional[int]) -> int:
        """Remove lots past their expiry; returns the points expired."""
        if expiry_months is None:
            return 0
        expired = 0
        for month in sorted(self.lots):
            if as_of >= month_start(add_months(month, expiry_months + 1)):
                expired += self.lots.pop(month)
        self.available -= expired
        return expired

    def expiring_soon(self, now: datetime, expiry_months: Optional[int], warning_days: int) -> list[dict]:
        if expiry_months is None:
            return []
        horizon = now + timedelta(days=warning_days)
        out = []
        for month in sorted(self.lots):
            expires = month_end(add_months(month, expiry_months))
            if expires <= horizon and self.lots[month] > 0:
                out.append({"points": self.lots[month], "expires_at": iso(expires)})
        return out


def split_lots(lots: dict, points: int) -> tuple[dict[str, int], dict[str, int]]:
    """Split lots (month → points) into the oldest `points` and the rest."""
    first: dict[str, int] = {}
    rest: dict[str, int] = {}
    remaining = points
    for month in sorted(lots):
        n = int(lots[month])
        take = min(n, max(remaining, 0))
        remaining -= take
        if take:
            first[month] = take
        if n - take:
            rest[month] = n - take
    return first, rest


def slice_lots(lots: dict, start: int, end: int) -> dict[str, int]:
    """The points at positions [start, end) of lots laid out oldest first."""
    upto_end, _ = split_lots(lots, end)
    upto_start, _ = split_lots(lots, start)
    out = {m: upto_end[m] - upto_start.get(m, 0) for m in upto_end}
    return {m: n for m, n in out.items() if n}


# --- moves between members (SPEC 2.15) ------------------------------------------

def give_lots(wallet: Wallet, points: int) -> dict[str, int]:
    """A transfer's sending side: `points` leave `available`, oldest lots first (only
    available points move: pending, held and a deficit stay). Lifetime counters do not
    change (the points were neither earned nor spent here). Returns the lots taken
    (month → points), which keep their month, and so their expiry, at the recipient."""
    if points <= 0 or not wallet.can_spend(points):
        raise ValueError("insufficient available points")
    taken = wallet._take_lots(points)
    wallet.available -= points
    return taken


def receive_lots(wallet: Wallet, lots: dict) -> int:
    """A transfer's receiving side: each lot is credited to its own month (a deficit is
    covered first, as with any credit). Returns the points received."""
    total = 0
    for month in sorted(lots):
        n = int(lots[month])
        if n > 0:
            wallet._credit_available(n, month)
            total += n
    return total


def absorb(survivor: Wallet, source: Wallet) -> int:
    """A merge: everything `source` holds moves into `survivor` — available lots with their
    months, a deficit, pending lots, open holds with the lots they took, lifetime counters.
    `source` is left empty. Returns the points moved (source's available + pending + held,
    what its `merge_out` entry takes and the survivor's `merge_in` entry adds)."""
    moved = source.balance
    receive_lots(survivor, source.lots)
    if source.available < 0:  # a deficit moves too: it comes out of the survivor's points
        survivor.debit(-source.available)
    survivor.pending_lots.extend(PendingLot(p.order_id, p.points, p.month, p.release_at) for p in source.pending_lots)
    survivor.pending += source.pending
    for hold_id, h in source.holds.items():
        survivor.holds[hold_id] = {**h, "lots": dict(h["lots"])}
    survivor.held += source.held
    survivor.lifetime_earned += source.lifetime_earned
    survivor.lifetime_spent += source.lifetime_spent
    source.available = source.pending = source.held = 0
    source.lots, source.pending_lots, source.holds = {}, [], {}
    return moved
