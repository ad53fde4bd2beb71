"""Every table and queue the stack defines: the one list `bootstrap` and `infra/` read."""
from __future__ import annotations

from chalicelib.store.models import CORE_MODELS


def all_models() -> list:
    from chalicelib.store import coupons, marketing, rewards

    return [*CORE_MODELS, *rewards.MODELS, *coupons.MODELS, *marketing.MODELS]


# Queues: resource suffix -> attributes. Each gets a `-dlq` dead-letter queue with redrive.
QUEUES = {
    "campaign-messages": {"VisibilityTimeout": "60", "maxReceiveCount": 5},
    "jobs": {"VisibilityTimeout": "900", "maxReceiveCount": 3},
}
