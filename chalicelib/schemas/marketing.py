from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import Field, model_validator

from chalicelib.schemas.common import ClientId, MemberId, Out, Strict, UtcDatetime

Sku = Annotated[str, Field(min_length=1, max_length=128)]


class EventRequest(Strict):
    event_id: ClientId
    type: Literal["cart_abandoned", "product_viewed", "favorite_added", "favorite_removed"]
    occurred_at: Optional[UtcDatetime] = None
    sku: Optional[Sku] = None
    cart: Optional[dict[str, Any]] = None


class EventAccepted(Out):
    event_id: str
    member_id: str
    type: str
    accepted: bool


class FeedbackRequest(Strict):
    feedback_id: ClientId
    score: Annotated[int, Field(ge=0, le=10)]
    comment: Optional[Annotated[str, Field(max_length=2000)]] = None


class FeedbackResult(Out):
    feedback_id: str
    points_earned: int


class ProductSignalRequest(Strict):
    signal_id: ClientId
    sku: Sku
    type: Literal["back_in_stock", "price_drop", "low_stock"]
    variables: Optional[dict[str, Any]] = None


class ProductSignalResult(Out):
    signal_id: str
    sku: str
    type: str
    followers: int
    queued: int


class Audience(Strict):
    tiers: Optional[list[str]] = None
    segments: Optional[list[str]] = None
    touch: Optional[list[Literal["high_touch", "low_touch", "tech_touch"]]] = None
    member_ids: Optional[Annotated[list[MemberId], Field(max_length=10000)]] = None

    @model_validator(mode="after")
    def _something(self) -> "Audience":
        if not (self.tiers or self.segments or self.touch or self.member_ids):
            raise ValueError("the audience needs tiers, segments, touch or member_ids")
        return self


class MessageCampaignRequest(Strict):
    campaign_id: Optional[ClientId] = None
    name: Annotated[str, Field(min_length=1, max_length=200)]
    template: Annotated[str, Field(pattern=r"^[a-z0-9_.-]{1,64}$")]
    channel: Literal["email", "push", "sms"]
    audience: Audience
    coupon_campaign_id: Optional[ClientId] = None
    variables: Optional[dict[str, Any]] = None
    dry_run: bool = False


class MessageCampaign(Out):
    campaign_id: str
    name: str
    template: str
    channel: str
    status: str
    audience_size: int
    eligible: int
    queued: int


class SegmentsReport(Out):
    as_of: Optional[str]
    segments: dict
    touch: dict
    f2_rate: float
    nps: Optional[float]
