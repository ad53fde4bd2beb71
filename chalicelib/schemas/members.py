from __future__ import annotations

import calendar
from datetime import timezone
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, Field, field_validator, model_validator

from chalicelib.schemas.common import ClientId, MemberId, NonNegInt, Out, Page, PastDatetime, PosInt, Strict

Email = Annotated[str, Field(pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$", max_length=254)]
Locale = Annotated[str, Field(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
# An instant given with any offset is kept in UTC: earning months, expiry lots, qualifying-spend
# months and activity days are UTC calendar units (SPEC 2.6), whatever offset the client sent.
# When it happened: 2000-01-01 at the earliest, at most 5 minutes after the request's now.
UtcInstant = Annotated[PastDatetime, AfterValidator(lambda dt: dt.astimezone(timezone.utc))]


def _birthday(v: Optional[str]) -> Optional[str]:
    if v is None:
        return v
    if len(v) != 5 or v[2] != "-" or not (v[:2] + v[3:]).isdigit():
        raise ValueError("birthday must be MM-DD")
    month, day = int(v[:2]), int(v[3:])
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(2024, month)[1]:
        raise ValueError("birthday is not a calendar day")
    return v


class Consents(Strict):
    email: bool = False
    push: bool = False
    sms: bool = False


class ConsentsPatch(Strict):
    email: Optional[bool] = None
    push: Optional[bool] = None
    sms: Optional[bool] = None


class EnrolRequest(Strict):
    member_id: MemberId
    name: Optional[Name] = None
    email: Optional[Email] = None
    birthday: Optional[str] = None
    locale: Optional[Locale] = None
    consents: Optional[Consents] = None
    referral_code: Optional[Annotated[str, Field(min_length=4, max_length=40)]] = None

    _bd = field_validator("birthday")(classmethod(lambda cls, v: _birthday(v)))


class PatchMemberRequest(Strict):
    name: Optional[Name] = None
    email: Optional[Email] = None
    birthday: Optional[str] = None
    locale: Optional[Locale] = None
    consents: Optional[ConsentsPatch] = None
    status: Optional[Literal["active", "suspended"]] = None

    _bd = field_validator("birthday")(classmethod(lambda cls, v: _birthday(v)))


class OrderItem(Strict):
    sku: Annotated[str, Field(min_length=1, max_length=128)]
    category: Optional[Annotated[str, Field(min_length=1, max_length=64)]] = None
    brand: Optional[Annotated[str, Field(min_length=1, max_length=128)]] = None  # promotions' `brands` (SPEC 2.20)
    amount: NonNegInt
    quantity: Annotated[int, Field(ge=1, le=100000)] = 1


class PointsPayment(Strict):
    hold_id: ClientId


class AccrualRequest(Strict):
    order_id: ClientId
    total_amount: NonNegInt
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    occurred_at: Optional[UtcInstant] = None
    items: Optional[Annotated[list[OrderItem], Field(max_length=500)]] = None
    channel: Optional[Annotated[str, Field(max_length=32)]] = None
    store_id: Optional[Annotated[str, Field(pattern=r"^[A-Za-z0-9._:@#/-]{1,128}$")]] = None  # promotions' `stores`
    points_payment: Optional[PointsPayment] = None

    @model_validator(mode="after")
    def _items_within_total(self) -> "AccrualRequest":
        # Lines earn on their own amounts: lines worth more than the order would earn more.
        if self.items and sum(i.amount for i in self.items) > self.total_amount:
            raise ValueError("the items' amounts add up to more than total_amount")
        return self


class RefundRequest(Strict):
    refund_id: ClientId
    order_id: ClientId
    amount: PosInt


class ActivityRequest(Strict):
    activity_id: ClientId
    type: Annotated[str, Field(min_length=1, max_length=64)]
    occurred_at: Optional[UtcInstant] = None


class AdjustmentRequest(Strict):
    adjustment_id: ClientId
    points: Annotated[int, Field(ge=-10**12, le=10**12)]
    reason: Annotated[str, Field(min_length=1, max_length=500)]

    @field_validator("points")
    @classmethod
    def _non_zero(cls, v: int) -> int:
        if v == 0:
            raise ValueError("points must not be 0")
        return v


class PointsView(Out):
    available: int
    pending: int
    held: int = 0
    lifetime_earned: int
    lifetime_spent: int
    expiring_soon: list[dict]


class TierView(Out):
    tier_id: str
    name: str
    multiplier: str
    qualifying_spend: int
    next_tier: Optional[str]
    spend_to_next_tier: Optional[int]
    retained_until: Optional[str]


class Member(Out):
    member_id: str
    name: Optional[str]
    email: Optional[str]
    birthday: Optional[str]
    locale: str
    consents: dict
    status: str
    enrolled_at: Optional[str]
    referral_code: Optional[str]
    referred_by: Optional[str]
    points: PointsView
    tier: TierView
    segment: Optional[dict]


class LedgerEntry(Out):
    entry_id: str
    member_id: str
    type: str
    points: int
    balance_after: int
    occurred_at: str
    recorded_at: str
    reference: dict
    actor: str
    note: Optional[str] = None


class BreakdownLine(Out):
    rule: str
    points: int


class Balance(Out):
    available: int
    pending: int
    held: int = 0


class Accrual(Out):
    order_id: str
    points_earned: int
    pending: int
    breakdown: list[BreakdownLine]
    balance: Balance
    tier_change: Optional[dict]
    points_paid: int = 0


class AccrualPreview(Out):
    points_earned: int
    pending: int
    breakdown: list[BreakdownLine]
    tier_after: str


class RefundResult(Out):
    refund_id: str
    order_id: str
    points_reversed: int
    points_returned: int = 0
    balance: Balance


class ActivityResult(Out):
    activity_id: str
    points_earned: int
    balance: Balance


LedgerPage = Page[LedgerEntry]


class SegmentMember(Out):
    member_id: str
    name: Optional[str]
    status: str
    tier: str
    points: int
    segment: Optional[dict]


SegmentMemberPage = Page[SegmentMember]


