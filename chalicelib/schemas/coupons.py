"""Request and response models of the coupon routes (SPEC 2.9, 4.4)."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from chalicelib.domain import codes
from chalicelib.schemas.common import ClientId, MemberId, NonNegInt, Out, Page, Strict, UtcDatetime

CAMPAIGN_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
CampaignId = Annotated[str, Field(pattern=CAMPAIGN_ID_PATTERN)]
Label = Annotated[str, Field(min_length=1, max_length=64)]
MAX_CODES_PER_CAMPAIGN = 1_000_000
MAX_AUDIENCE_MEMBER_IDS = 1_000
MAX_ISSUE_MEMBER_IDS = 10_000


class _In(Strict):
    # Validators are built on first use, not at `import app` (cold start, SPEC 3).
    model_config = ConfigDict(defer_build=True)


class _Out(Out):
    model_config = ConfigDict(defer_build=True)


def _campaign_instant(dt: datetime) -> datetime:
    """Campaign dates are stored in UTC; years 2000-2999 keep that conversion in range."""
    try:
        utc = dt.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise ValueError("the date is out of range")
    if not 2000 <= utc.year <= 2999:
        raise ValueError("campaign dates lie between the years 2000 and 2999")
    return utc


Instant = Annotated[UtcDatetime, AfterValidator(_campaign_instant)]


class Discount(_In):
    """percent: 1–100 (% of the eligible amount, floored); amount: minor units off the
    eligible amount; free_shipping: the order's `shipping` lines (value is ignored)."""

    type: Literal["percent", "amount", "free_shipping"]
    value: Annotated[int, Field(ge=0, le=10**12)] = 0

    @model_validator(mode="after")
    def _value_fits_type(self) -> "Discount":
        if self.type == "percent" and not 1 <= self.value <= 100:
            raise ValueError("a percent discount's value is 1-100")
        if self.type == "amount" and self.value < 1:
            raise ValueError("an amount discount's value is at least 1 (minor units)")
        if self.type == "free_shipping":
            self.value = 0
        return self


class CodePattern(_In):
    """Generated unique codes: `prefix` + `length` random Crockford characters (5 bits each)."""

    prefix: Annotated[str, Field(max_length=16)] = ""
    length: Annotated[int, Field(ge=4, le=32)] = 12

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        v = codes.normalize(v)
        if not re.fullmatch(r"[A-Z0-9]{0,16}", v):
            raise ValueError("prefix is up to 16 characters of A-Z and 0-9")
        return v


class Audience(_In):
    tiers: Optional[Annotated[list[Label], Field(max_length=50)]] = None
    segments: Optional[Annotated[list[Label], Field(max_length=50)]] = None
    member_ids: Optional[Annotated[list[MemberId], Field(max_length=MAX_AUDIENCE_MEMBER_IDS)]] = None


MaxRedemptions = Optional[Annotated[int, Field(ge=1, le=10**9)]]
BudgetAmount = Optional[Annotated[int, Field(ge=1, le=10**15)]]  # minor units of discount in all (SPEC 2.20)
MaxPerMember = Annotated[int, Field(ge=1, le=10**6)]
Status = Literal["draft", "active", "paused", "ended"]
Categories = Optional[Annotated[list[Label], Field(min_length=1, max_length=100)]]
Name = Annotated[str, Field(min_length=1, max_length=200)]


def _shared_code(v: Optional[str]) -> Optional[str]:
    if v is None:
        return None
    v = codes.normalize(v)
    if not codes.is_valid_shared_code(v):
        raise ValueError("a shared code is 4-32 characters of A-Z and 0-9")
    return v


class CampaignDefinition(_In):
    """A coupon campaign as created (and as every PATCH must leave it)."""

    campaign_id: CampaignId
    name: Name
    discount: Discount
    min_order_amount: NonNegInt = 0
    categories: Categories = None
    starts_at: Instant
    ends_at: Instant
    code_mode: Literal["unique", "shared"]
    shared_code: Optional[Annotated[str, Field(max_length=64)]] = None
    code_pattern: Optional[CodePattern] = None
    max_redemptions: MaxRedemptions = None
    max_per_member: MaxPerMember = 1
    audience: Optional[Audience] = None
    status: Status = "active"
    stackable: bool = False  # may join an order that redeemed other campaigns' coupons (SPEC 2.20)
    budget_amount: BudgetAmount = None

    _code = field_validator("shared_code")(classmethod(lambda cls, v: _shared_code(v)))

    @model_validator(mode="after")
    def _consistent(self) -> "CampaignDefinition":
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.code_mode == "shared":
            if not self.shared_code:
                raise ValueError("a shared campaign needs shared_code")
            if self.code_pattern is not None:
                raise ValueError("code_pattern is for unique codes")
        elif self.shared_code is not None:
            raise ValueError("shared_code is only for code_mode shared")
        return self


class CreateCampaignRequest(CampaignDefinition):
    pass


class PatchCampaignRequest(_In):
    """Any field but the identity and the code set-up; `status` pauses, resumes or ends."""

    name: Optional[Name] = None
    discount: Optional[Discount] = None
    min_order_amount: Optional[NonNegInt] = None
    categories: Categories = None
    starts_at: Optional[Instant] = None
    ends_at: Optional[Instant] = None
    max_redemptions: MaxRedemptions = None
    max_per_member: Optional[MaxPerMember] = None
    audience: Optional[Audience] = None
    status: Optional[Status] = None
    stackable: Optional[bool] = None
    budget_amount: BudgetAmount = None
    # Fixed at creation; accepted when unchanged so a GET body can be sent back.
    campaign_id: Optional[CampaignId] = None
    code_mode: Optional[Literal["unique", "shared"]] = None
    shared_code: Optional[Annotated[str, Field(max_length=64)]] = None
    code_pattern: Optional[CodePattern] = None
    # Read-only fields of a GET body: accepted and ignored.
    created_at: Optional[Annotated[str, Field(max_length=64)]] = None
    updated_at: Optional[Annotated[str, Field(max_length=64)]] = None
    stats: Optional[dict] = None

    _code = field_validator("shared_code")(classmethod(lambda cls, v: _shared_code(v)))


READ_ONLY_FIELDS = ("created_at", "updated_at", "stats")


class Stats(_Out):
    codes: int
    issued: int
    redeemed: int
    redemption_rate: float
    discount_total: int = 0
    revenue: Optional[int] = None  # SPEC 2.18: net total of the redeemed orders, once measured (docs/UPLIFT.md)


class Campaign(_Out):
    campaign_id: str
    name: str
    discount: dict
    min_order_amount: int
    categories: Optional[list[str]] = None
    starts_at: str
    ends_at: str
    code_mode: Literal["unique", "shared"]
    shared_code: Optional[str] = None
    code_pattern: Optional[dict] = None
    max_redemptions: Optional[int] = None
    max_per_member: int
    audience: Optional[dict] = None
    status: Status
    stackable: bool = False
    budget_amount: Optional[int] = None
    created_at: Optional[str] = None
    updated_at: Optional[str] = None
    stats: Stats


CampaignList = Page[Campaign]


class GenerateCodesRequest(_In):
    count: Annotated[int, Field(ge=1, le=MAX_CODES_PER_CAMPAIGN)]


class CodesResult(_Out):
    """201: generated in the request; 202: `job_id` of the background generation."""

    campaign_id: str
    generated: Optional[int] = None
    codes_total: Optional[int] = None
    job_id: Optional[str] = None
    status: Optional[str] = None
    count: Optional[int] = None


class IssueRequest(_In):
    member_ids: Optional[Annotated[list[MemberId], Field(max_length=MAX_ISSUE_MEMBER_IDS)]] = None
    audience: Optional[Audience] = None
    notify: bool = False

    @model_validator(mode="after")
    def _someone(self) -> "IssueRequest":
        if self.member_ids is None and self.audience is None:
            raise ValueError("give member_ids, an audience, or both")
        return self


class IssueResult(_Out):
    issued: int
    already_issued: int = 0
    not_found: int = 0
    inactive: int = 0
    ineligible: int = 0
    out_of_codes: int = 0
    notified: int = 0


class OrderLine(_In):
    sku: Optional[Annotated[str, Field(min_length=1, max_length=128)]] = None
    category: Optional[Label] = None
    amount: NonNegInt
    quantity: Annotated[int, Field(ge=1, le=100000)] = 1


class Order(_In):
    total_amount: NonNegInt
    currency: Optional[Annotated[str, Field(pattern=r"^[A-Z]{3}$")]] = None
    items: Optional[Annotated[list[OrderLine], Field(max_length=500)]] = None


CodeInput = Annotated[str, Field(min_length=1, max_length=64)]


class ValidateRequest(_In):
    code: CodeInput
    member_id: MemberId
    order: Order


class ValidateResult(_Out):
    valid: bool
    discount_amount: int
    reason: Optional[str] = None


class RedeemRequest(_In):
    code: CodeInput
    member_id: MemberId
    order_id: ClientId
    order: Order


class RedeemResult(_Out):
    coupon_redemption_id: str
    status: Literal["redeemed", "rolled_back"]  # a replay after a rollback: rolled_back, discount 0
    discount_amount: int


class RollbackResult(_Out):
    coupon_redemption_id: str
    status: Literal["rolled_back"]
    discount_amount: int


class WalletCoupon(_Out):
    code: str
    campaign_id: str
    name: str
    discount: dict
    status: Literal["issued", "redeemed", "expired"]
    issued_at: str
    ends_at: str


WalletPage = Page[WalletCoupon]

