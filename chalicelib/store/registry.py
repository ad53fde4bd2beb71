"""Every table and queue the stack defines: the one list `bootstrap` and `infra/` read."""
from __future__ import annotations

from chalicelib.store.models import CORE_MODELS


def all_models() -> list:
    from chalicelib.store import coupons, holds, marketing, rewards, webhooks
    from chalicelib.store import transfers
    from chalicelib.store import reports  # finance reports (SPEC 2.17)
    from chalicelib.store import attribution  # control groups and attribution (SPEC 2.18)

    return [*CORE_MODELS, *rewards.MODELS, *coupons.MODELS, *marketing.MODELS, *holds.MODELS, *webhooks.MODELS,
            *transfers.MODELS, *reports.MODELS, *attribution.MODELS]


# Queues: resource suffix -> attributes. Each gets a `-dlq` dead-letter queue with redrive.
QUEUES = {
    "campaign-messages": {"VisibilityTimeout": "60", "maxReceiveCount": 5},
    # Visibility well above the worker's 15 minutes (a message is never redelivered while its
    # segment still runs); a segment that needs more than one invocation re-enqueues itself
    # as a new message, so maxReceiveCount counts real failures only.
    "jobs": {"VisibilityTimeout": "5400", "maxReceiveCount": 3},
    # One message per webhook delivery (services/webhooks.py). A retry comes back by its own
    # visibility delay, so a message is received once per attempt (at most 10) plus a few
    # early arrivals; only a message that keeps crashing the function reaches the DLQ.
    "webhook-deliveries": {"VisibilityTimeout": "120", "maxReceiveCount": 20},
}
