"""Control groups and uplift (SPEC 2.18): pure rules, no I/O (docs/UPLIFT.md).

- `in_control(key, share)`: the deterministic hold-out: the first 8 hex digits of the
  SHA-256 of the UTF-8 key, read as an integer, below `share × 2^32`.
- `report(...)`: conversion per group, the difference with its 95% interval (unpooled
  standard error), the two-sided pooled two-proportion z-test, the incremental revenue,
  and guidance (minimum detectable effect, conclusive or not).

Only the standard library: the normal distribution's tail is `math.erfc`, so importing
this costs nothing (the tests check it against scipy).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from typing import Optional, Union

TWO_32 = 2 ** 32
Z_95 = 1.959963984540054  # the two-sided 95% normal quantile (the minimum detectable effect)
Z_CI = 1.96  # SPEC 2.18's interval uses 1.96 exactly
Z_POWER_80 = 0.8416212335729143  # one-sided 80% power
ALPHA = 0.05
MIN_GROUP = 30  # below this a group is too small to conclude anything (docs/UPLIFT.md)
FOUR = Decimal("0.0001")

Share = Union[str, Decimal]


def control_key_broadcast(campaign_id: str, member_id: str) -> str:
    return f"{campaign_id}:{member_id}"


def control_key_automation(automation: str, day: str, member_id: str) -> str:
    """`day`: YYYY-MM-DD of the run's as_of."""
    return f"{automation}:{day}:{member_id}"


def in_control(key: str, share: Share) -> bool:
    """True when the member is held out: int(sha256(key)[:8], 16) < share × 2^32."""
    with localcontext() as ctx:
        ctx.prec = 100  # exact for any share string the schemas accept
        share = Decimal(share)
        if share <= 0:
            return False
        value = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16)
        return Decimal(value) < share * TWO_32


def parse_share(value) -> Decimal:
    """A control share: a decimal string 0 ≤ x < 1 (ValueError otherwise)."""
    if not isinstance(value, str):
        raise ValueError("control_share must be a decimal string such as \"0.1\"")
    try:
        share = Decimal(value)
    except Exception:  # noqa: BLE001 - decimal.InvalidOperation
        raise ValueError("control_share must be a decimal string such as \"0.1\"") from None
    if not share.is_finite() or share < 0 or share >= 1:
        raise ValueError("control_share must be at least 0 and less than 1")
    return share


# --- statistics --------------------------------------------------------------------------

def round4(x: Optional[Union[float, Fraction, Decimal]]) -> Optional[float]:
    """To 4 decimals (half to even, on the exact value when given a Fraction)."""
    if x is None:
        return None
    if isinstance(x, Fraction):
        d = Decimal(x.numerator) / Decimal(x.denominator)
    else:
        d = Decimal(repr(x)) if isinstance(x, float) else Decimal(x)
    return float(d.quantize(FOUR, rounding=ROUND_HALF_EVEN))


def normal_two_sided_p(z: float) -> float:
    """P(|Z| ≥ |z|) for a standard normal Z."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def pooled_z_test(k_t: int, n_t: int, k_c: int, n_c: int) -> Optional[tuple[float, float]]:
    """(z, two-sided p) of the pooled two-proportion z-test; None when a group is empty.
    When the pooled rate is 0 or 1 (both groups all-or-nothing alike) the difference is
    exactly 0 and there is no evidence of any: z = 0, p = 1."""
    if n_t <= 0 or n_c <= 0:
        return None
    pooled = (k_t + k_c) / (n_t + n_c)
    var = pooled * (1 - pooled) * (1 / n_t + 1 / n_c)
    if var <= 0:
        return 0.0, 1.0
    z = (k_t / n_t - k_c / n_c) / math.sqrt(var)
    return z, normal_two_sided_p(z)


def diff_ci95(k_t: int, n_t: int, k_c: int, n_c: int) -> Optional[tuple[float, float]]:
    """diff ± 1.96 × sqrt(p_t(1−p_t)/n_t + p_c(1−p_c)/n_c); None when a group is empty."""
    if n_t <= 0 or n_c <= 0:
        return None
    p_t, p_c = k_t / n_t, k_c / n_c
    se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    diff = p_t - p_c
    half = Z_CI * se
    return diff - half, diff + half


def minimum_detectable_effect(n_t: int, n_c: int, base_rate: float) -> Optional[float]:
    """The smallest absolute difference in conversion rate these group sizes detect with 80%
    power in a two-sided test at 5%: (z_0.975 + z_0.8) × sqrt(p(1−p)(1/n_t + 1/n_c)), with p
    the control's rate (or 0.5 — the worst case — when it is 0 or 1 or unknown)."""
    if n_t <= 0 or n_c <= 0:
        return None
    p = base_rate if 0 < base_rate < 1 else 0.5
    return (Z_95 + Z_POWER_80) * math.sqrt(p * (1 - p) * (1 / n_t + 1 / n_c))


@dataclass(frozen=True)
class Group:
    members: int = 0
    converters: int = 0
    revenue: int = 0

    def rate(self) -> Optional[Fraction]:
        return Fraction(self.converters, self.members) if self.members else None

    def revenue_per_member(self) -> Optional[Fraction]:
        return Fraction(self.revenue, self.members) if self.members else None

    def view(self) -> dict:
        return {"members": self.members, "converters": self.converters,
                "conversion_rate": round4(self.rate()), "revenue": self.revenue,
                "revenue_per_member": round4(self.revenue_per_member())}


def uplift(t: Group, c: Group) -> dict:
    """SPEC 2.18's uplift block: every value null when either group is empty."""
    if not t.members or not c.members:
        return {"conversion_rate_diff": None, "ci95": None, "p_value": None, "incremental_revenue": None}
    diff = t.rate() - c.rate()
    low, high = diff_ci95(t.converters, t.members, c.converters, c.members)
    _, p = pooled_z_test(t.converters, t.members, c.converters, c.members)
    incremental = math.floor((t.revenue_per_member() - c.revenue_per_member()) * t.members)
    return {"conversion_rate_diff": round4(diff), "ci95": [round4(low), round4(high)], "p_value": round4(p),
            "incremental_revenue": incremental}


def guidance(t: Group, c: Group, p_value: Optional[float]) -> dict:
    """What a marketer can act on (docs/UPLIFT.md):
    - `minimum_detectable_effect`: the smallest conversion-rate difference these group sizes
      can show (80% power, 5% two-sided), to 4 decimals; null when a group is empty;
    - `conclusive`: both groups have at least MIN_GROUP members and p_value < 0.05;
    - `verdict`: `no_control` (nobody held out), `no_treatment`, `too_small` (a group under
      MIN_GROUP members), `positive` / `negative` (conclusive, by the sign of the
      difference), else `inconclusive` (no difference shown at this size)."""
    mde = minimum_detectable_effect(t.members, c.members, float(c.rate()) if c.members else 0.0)
    conclusive = bool(min(t.members, c.members) >= MIN_GROUP and p_value is not None and p_value < ALPHA)
    if not c.members:
        verdict = "no_control"
    elif not t.members:
        verdict = "no_treatment"
    elif min(t.members, c.members) < MIN_GROUP:
        verdict = "too_small"
    elif conclusive:
        verdict = "positive" if t.rate() > c.rate() else "negative"
    else:
        verdict = "inconclusive"
    return {"conclusive": conclusive, "minimum_detectable_effect": round4(mde), "min_group_size": MIN_GROUP,
            "verdict": verdict}


def report(t: Group, c: Group, attribution_days: int, as_of: Optional[str]) -> dict:
    """The results body of SPEC 2.18, plus `guidance`."""
    up = uplift(t, c)
    return {"attribution_days": attribution_days, "as_of": as_of, "treatment": t.view(), "control": c.view(),
            "uplift": up, "guidance": guidance(t, c, up["p_value"])}
