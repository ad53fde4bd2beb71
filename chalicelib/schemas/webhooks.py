"""Webhooks and their deliveries (SPEC 2.16, 4.5)."""
from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from chalicelib.domain.events import TYPES
from chalicelib.schemas.common import Page, Strict

WebhookId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:@-]{1,64}$")]
Url = Annotated[str, Field(min_length=8, max_length=2048)]


def _known_types(events: list[str]) -> list[str]:
    if "*" in events and len(events) > 1:
        raise ValueError('"*" subscribes to every type: give it alone')
    unknown = sorted(set(events) - set(TYPES) - {"*"})
    if unknown:
        raise ValueError(f"unknown event types: {', '.join(unknown[:10])}")
    return sorted(set(events), key=events.index)


EventTypes = Annotated[list[Annotated[str, Field(max_length=64)]], Field(min_length=1, max_length=50),
                       AfterValidator(_known_types)]


class WebhookCreate(Strict):
    webhook_id: Optional[WebhookId] = None
    url: Url
    events: EventTypes
    active: bool = True


class WebhookPatch(Strict):
    url: Optional[Url] = None
    events: Optional[EventTypes] = None
    active: Optional[bool] = None


class Webhook(BaseModel):
    model_config = ConfigDict(defer_build=True)

    webhook_id: str
    url: str
    events: list[str]
    active: bool
    created_at: str
    updated_at: str


class WebhookCreated(Webhook):
    secret: str = Field(description="the signing secret; shown only in this answer")


WebhookPage = Page[Webhook]


class Delivery(BaseModel):
    model_config = ConfigDict(defer_build=True)

    event_id: str
    type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status_code: Optional[int] = None
    last_attempt_at: Optional[str] = None
    next_attempt_at: Optional[str] = None


DeliveryPage = Page[Delivery]


class RedeliveryAccepted(BaseModel):
    model_config = ConfigDict(defer_build=True)

    webhook_id: str
    event_id: str
    status: Literal["pending"]
