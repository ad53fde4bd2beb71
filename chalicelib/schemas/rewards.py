from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field, model_validator

from chalicelib.schemas.common import MemberId, NonNegInt, Out, Page, PosInt, Strict, UtcDatetime


class Reward(Strict):
    reward_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Optional[Annotated[str, Field(max_length=2000)]] = None
    cost_points: PosInt
    kind: Literal["voucher", "product"] = "voucher"
    stock: Optional[NonNegInt] = None
    per_member_limit: Optional[PosInt] = None
    min_tier: Optional[Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,32}$")]] = None
    starts_at: Optional[UtcDatetime] = None
    ends_at: Optional[UtcDatetime] = None
    voucher_valid_days: Annotated[int, Field(ge=1, le=3650)] = 30
    active: bool = True

    @model_validator(mode="after")
    def _window(self) -> "Reward":
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class RewardUpdate(Reward):
    """PUT body: the whole reward; `reward_id` may be omitted (the path names it)."""

    reward_id: Optional[Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]] = None  # type: ignore[assignment]


class RedeemRequest(Strict):
    reward_id: Annotated[str, Field(min_length=1, max_length=64)]


class GiftRequest(Strict):
    to_member_id: MemberId


class UseVoucherRequest(Strict):
    order_id: Optional[Annotated[str, Field(min_length=1, max_length=128)]] = None


class RewardOut(Out):
    reward_id: str
    name: str
    cost_points: int
    kind: str
    stock: Optional[int]
    remaining: Optional[int] = None  # stock − units redeemed (net of cancellations); null = unlimited
    active: bool


class Redemption(Out):
    redemption_id: str
    member_id: str
    reward_id: str
    code: str
    status: Literal["issued", "used", "cancelled", "expired"]
    points_spent: int
    issued_at: str
    expires_at: str
    used_at: Optional[str] = None
    gifted_from: Optional[str] = None


RewardPage = Page[RewardOut]
RedemptionPage = Page[Redemption]


class AuditEntry(Out):
    audit_id: str
    actor: str
    action: str
    target: Optional[str]
    at: str
    details: dict


AuditPage = Page[AuditEntry]
