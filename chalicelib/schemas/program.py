"""Program settings and tiers (SPEC 2.3–2.7, 2.12). GET bodies are valid PUT bodies."""
from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chalicelib.schemas.common import ClientId, NonNegInt, PosInt, Strict, UtcDatetime

Multiplier = Annotated[Decimal, Field(ge=0, le=1000, max_digits=12, decimal_places=6)]


class BaseRate(Strict):
    points: NonNegInt = 1
    per_amount: PosInt = 100


# A promotion's condition list: given, it names 1-500 values (an empty list would match nothing).
_Label = Annotated[str, Field(min_length=1, max_length=128)]
Conditions = Optional[Annotated[list[_Label], Field(min_length=1, max_length=500)]]


class Promotion(Strict):
    """SPEC 2.3, 2.20: item conditions (categories, skus, brands) choose the lines a multiplier
    applies to; order conditions (channels, stores, min_order_amount, tiers, first_purchase_only,
    birthday_month_only) decide whether the promotion is active. docs/RULES.md."""

    promotion_id: ClientId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    multiplier: Optional[Multiplier] = None
    bonus_points: Optional[NonNegInt] = None
    categories: Conditions = None
    skus: Conditions = None
    brands: Conditions = None
    tiers: Conditions = None
    channels: Conditions = None
    stores: Conditions = None
    min_order_amount: Optional[NonNegInt] = None
    first_purchase_only: bool = False
    birthday_month_only: bool = False

    @model_validator(mode="after")
    def _window(self) -> "Promotion":
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.multiplier is None and self.bonus_points is None:
            raise ValueError("a promotion needs a multiplier or bonus_points")
        return self


class EarningCaps(Strict):
    """Points a member may earn from accruals and activities per UTC day / month (null = no cap)."""

    per_member_per_day: Optional[PosInt] = None
    per_member_per_month: Optional[PosInt] = None

    @model_validator(mode="after")
    def _consistent(self) -> "EarningCaps":
        d, m = self.per_member_per_day, self.per_member_per_month
        if d is not None and m is not None and d > m:
            raise ValueError("per_member_per_day cannot be above per_member_per_month "
                             "(the daily cap could never be reached)")
        return self


class ActivityRule(Strict):
    points: NonNegInt
    max_per_day: Optional[PosInt] = None
    max_total: Optional[PosInt] = None


class Automation(BaseModel):
    """One automation or trigger: on/off plus its own parameters (extra keys allowed)."""

    model_config = ConfigDict(extra="allow")
    enabled: bool = True
    # SPEC 2.18: the share of would-be recipients held out as a control group (docs/UPLIFT.md)
    control_share: Annotated[str, Field(max_length=12)] = "0"

    @field_validator("control_share")
    @classmethod
    def _share(cls, v: str) -> str:
        from chalicelib.domain.uplift import parse_share

        parse_share(v)
        return v


DEFAULT_AUTOMATIONS: dict[str, dict[str, Any]] = {
    # lifecycle (run-automations, daily); docs/MESSAGING.md
    "welcome": {"enabled": True, "days_after_enrolment": 0},
    "onboarding_step": {"enabled": True, "days": [7, 30]},
    "f2_nudge": {"enabled": True, "days_after_first_order": 14, "catch_up_days": 30},
    "dormant": {"enabled": True, "days_without_order": 90, "catch_up_days": 30},
    "birthday": {"enabled": True},
    "points_expiring": {"enabled": True, "within_days": 30},
    "near_next_tier": {"enabled": True, "within_percent": 10},
    "churn_risk": {"enabled": True, "segments": ["at_risk", "cant_lose"], "within_days": 7},
    # behaviour triggers (run-triggers, hourly; product signals during the request)
    "cart_reminder": {"enabled": True, "cart_reminder_hours": 2, "max_age_hours": 48},
    "browse_reminder": {"enabled": True, "hours": 24, "max_age_hours": 48},
    "back_in_stock": {"enabled": True},
    "price_drop": {"enabled": True},
    "low_stock": {"enabled": True},
}

DEFAULT_ACTIVITY_RULES: dict[str, dict[str, Any]] = {
    "review": {"points": 50, "max_per_day": 3},
    "survey": {"points": 20, "max_per_day": 1},
    "app_install": {"points": 100, "max_total": 1},
    "referral": {"points": 500},
}


class TransferSettings(Strict):
    """Points transfers between members (SPEC 2.15): per sender and UTC calendar month."""

    enabled: bool = True
    min_points: PosInt = 1
    max_points_per_month: Optional[PosInt] = None

    @model_validator(mode="after")
    def _limits(self) -> "TransferSettings":
        if self.max_points_per_month is not None and self.max_points_per_month < self.min_points:
            raise ValueError("transfers.max_points_per_month is below transfers.min_points")
        return self


class ProgramSettings(Strict):
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "JPY"
    base_rate: BaseRate = Field(default_factory=BaseRate)
    category_multipliers: dict[Annotated[str, Field(min_length=1, max_length=64)], Multiplier] = {}
    promotions: Annotated[list[Promotion], Field(max_length=200)] = []
    activity_rules: dict[Annotated[str, Field(pattern=r"^[a-z0-9_]{1,64}$")], ActivityRule] = Field(
        default_factory=lambda: {k: ActivityRule(**v) for k, v in DEFAULT_ACTIVITY_RULES.items()})
    max_points_per_order: Optional[PosInt] = None
    pending_days: Annotated[int, Field(ge=0, le=365)] = 0
    points_expiry_months: Optional[Annotated[int, Field(ge=1, le=120)]] = 12
    expiry_warning_days: Annotated[int, Field(ge=0, le=365)] = 30
    tier_window_months: Annotated[int, Field(ge=1, le=60)] = 12
    tier_retention_months: Annotated[int, Field(ge=0, le=60)] = 12
    tier_soft_landing: bool = True
    # Richer rules and abuse limits (SPEC 2.20, docs/RULES.md)
    earning_caps: EarningCaps = Field(default_factory=EarningCaps)
    points_expiry_policy: Literal["earned_month", "last_activity"] = "earned_month"
    frequency_cap_per_week: Annotated[int, Field(ge=0, le=100)] = 3
    # Webhook retries (SPEC 2.16): base × 4^(n-1) seconds with jitter, capped at 8 h
    webhook_retry_base_seconds: Annotated[int, Field(ge=1, le=86400)] = 30
    automations: dict[str, Automation] = Field(
        default_factory=lambda: {k: Automation(**v) for k, v in DEFAULT_AUTOMATIONS.items()})
    # Paying with points (SPEC 2.14)
    point_value: PosInt = 1
    min_points_per_use: PosInt = 1
    max_points_share: Annotated[Decimal, Field(ge=0, le=1, max_digits=7, decimal_places=6)] = Decimal("1.0")
    hold_ttl_minutes: Annotated[int, Field(ge=1, le=10080)] = 30
    earn_on_points_paid: bool = False
    # Attribution (SPEC 2.18): an order within this many days after a message or hold-out converts
    attribution_days: Annotated[int, Field(ge=1, le=28)] = 7
    # Transfers between members (SPEC 2.15)
    transfers: TransferSettings = Field(default_factory=TransferSettings)

    @field_validator("promotions")
    @classmethod
    def _unique_promotions(cls, v: list[Promotion]) -> list[Promotion]:
        ids = [p.promotion_id for p in v]
        if len(ids) != len(set(ids)):
            raise ValueError("promotion_id values must be unique")
        return v

    @model_validator(mode="after")
    def _expiry_policy_needs_months(self) -> "ProgramSettings":
        if self.points_expiry_policy == "last_activity" and self.points_expiry_months is None:
            raise ValueError("points_expiry_policy last_activity needs points_expiry_months "
                             "(null disables expiry)")
        return self

    @field_validator("automations")
    @classmethod
    def _known_automations(cls, v: dict[str, Automation]) -> dict[str, Automation]:
        unknown = sorted(set(v) - set(DEFAULT_AUTOMATIONS))
        if unknown:
            raise ValueError(f"unknown automations: {', '.join(unknown)}")
        # Omitted automations keep their defaults (on), as SPEC 2.12 says.
        merged = {k: Automation(**d) for k, d in DEFAULT_AUTOMATIONS.items()}
        for name, auto in v.items():
            merged[name] = Automation(**{**DEFAULT_AUTOMATIONS[name], **auto.model_dump()})
        return merged

    def automation(self, name: str) -> dict[str, Any]:
        auto = self.automations.get(name)
        return auto.model_dump() if auto else {"enabled": False}


class Tier(Strict):
    tier_id: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,32}$")]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    threshold: NonNegInt
    multiplier: Multiplier = Decimal("1.0")
    benefits: list[Annotated[str, Field(max_length=200)]] = []


class TierList(Strict):
    items: Annotated[list[Tier], Field(min_length=1, max_length=20)]

    # A PUT may send the bare list; the edge wraps it as {"items": [...]} before validating
    # (a "before" validator here would make pydantic validate the JSON in lax Python mode).
    bare_list_field: ClassVar[str] = "items"

    @model_validator(mode="after")
    def _ordered(self) -> "TierList":
        ids = [t.tier_id for t in self.items]
        if len(ids) != len(set(ids)):
            raise ValueError("tier_id values must be unique")
        if self.items[0].threshold != 0:
            raise ValueError("the first tier's threshold must be 0")
        for a, b in zip(self.items, self.items[1:]):
            if b.threshold <= a.threshold:
                raise ValueError("thresholds must increase strictly in list order")
        return self


DEFAULT_TIERS = [
    {"tier_id": "bronze", "name": "Bronze", "threshold": 0, "multiplier": "1.0", "benefits": []},
    {"tier_id": "silver", "name": "Silver", "threshold": 50000, "multiplier": "1.25", "benefits": ["free shipping"]},
    {"tier_id": "gold", "name": "Gold", "threshold": 200000, "multiplier": "1.5", "benefits": ["birthday gift"]},
    {"tier_id": "platinum", "name": "Platinum", "threshold": 500000, "multiplier": "2.0", "benefits": ["concierge"]},
]
