from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Optional

from pydantic import Field, model_validator

from chalicelib.schemas.common import ClientId, MemberId, Out, Page, PastDatetime, Strict

Sku = Annotated[str, Field(min_length=1, max_length=128)]
FeedbackId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:@#/-]{1,100}$")]
MAX_CART_BYTES = 8192


class EventRequest(Strict):
    event_id: ClientId
    type: Literal["cart_abandoned", "product_viewed", "favorite_added", "favorite_removed"]
    occurred_at: Optional[PastDatetime] = None
    sku: Optional[Sku] = None
    cart: Optional[dict[str, Any]] = None

    @model_validator(mode="after")
    def _sku_and_cart(self) -> "EventRequest":
        if self.type.startswith("favorite") and not self.sku:
            raise ValueError(f"a {self.type} event needs a sku")
        if self.cart is not None and len(json.dumps(self.cart, default=str)) > MAX_CART_BYTES:
            raise ValueError(f"cart is larger than {MAX_CART_BYTES} bytes")
        return self


class EventAccepted(Out):
    event_id: str
    member_id: str
    type: str
    accepted: bool


class FeedbackRequest(Strict):
    feedback_id: FeedbackId
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

    @model_validator(mode="after")
    def _small_variables(self) -> "ProductSignalRequest":
        _small(self.variables)
        return self


class ProductSignalResult(Out):
    signal_id: str
    sku: str
    type: str
    enabled: bool
    followers: int
    queued: int
    capped: int
    no_consent: int
    control: int = 0  # followers held out (SPEC 2.18)


SegmentLabel = Literal["champions", "loyal", "potential_loyalist", "new", "promising", "need_attention", "at_risk",
                       "cant_lose", "hibernating", "lost"]  # domain.rfm.LABELS
MAX_VARIABLES_BYTES = 4096


def _small(variables: Optional[dict]) -> Optional[dict]:
    if variables is not None and len(json.dumps(variables, default=str)) > MAX_VARIABLES_BYTES:
        raise ValueError(f"variables are larger than {MAX_VARIABLES_BYTES} bytes")
    return variables


class Audience(Strict):
    tiers: Optional[list[Annotated[str, Field(min_length=1, max_length=32)]]] = None
    segments: Optional[list[SegmentLabel]] = None
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
    # SPEC 2.18: a decimal string 0 <= x < 1, the share of would-be recipients held out
    control_share: Annotated[str, Field(pattern=r"^0(\.[0-9]{1,6})?$")] = "0"

    @model_validator(mode="after")
    def _small_variables(self) -> "MessageCampaignRequest":
        _small(self.variables)
        return self


class MessageCampaign(Out):
    campaign_id: str
    name: str
    template: str
    channel: str
    audience: dict
    coupon_campaign_id: Optional[str] = None
    variables: Optional[dict] = None
    dry_run: bool
    status: Literal["queued", "sending", "sent", "dry_run"]
    audience_size: int
    eligible: int
    queued: int
    capped: int
    no_consent: int
    no_code: int
    control_share: str = "0"
    control: int = 0  # members held out as the control group (no message, no cap used)
    job_id: Optional[str] = None
    created_at: str
    created_by: str
    finished_at: Optional[str] = None


MessageCampaignPage = Page[MessageCampaign]


class SegmentsReport(Out):
    as_of: Optional[str]
    scored: int
    segments: dict[str, int]
    touch: dict[str, int]
    f2_rate: float
    ltv_12m_total: int
    nps: Optional[float]
    nps_responses: dict[str, int]
