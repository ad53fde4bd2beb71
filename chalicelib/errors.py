"""Domain errors. Each carries its spec error code and HTTP status (SPEC 4.2)."""
from __future__ import annotations

from typing import Any, Optional


class LoyaltyError(Exception):
    status = 400
    code = "VALIDATION_ERROR"
    default_message = "the request is not valid"

    def __init__(self, message: Optional[str] = None, **details: Any) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.details = details

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def _error(name: str, status: int, code: str, message: str) -> type[LoyaltyError]:
    return type(name, (LoyaltyError,), {"status": status, "code": code, "default_message": message})


ValidationFailed = _error("ValidationFailed", 400, "VALIDATION_ERROR", "the request is not valid")
Unauthenticated = _error("Unauthenticated", 401, "UNAUTHENTICATED", "a valid bearer token is required")
Forbidden = _error("Forbidden", 403, "FORBIDDEN", "this token may not do that")
NotFound = _error("NotFound", 404, "NOT_FOUND", "not found")
MethodNotAllowed = _error("MethodNotAllowed", 405, "METHOD_NOT_ALLOWED", "this route does not take that method")
MemberNotFound = _error("MemberNotFound", 404, "MEMBER_NOT_FOUND", "no such member")
OrderNotFound = _error("OrderNotFound", 404, "ORDER_NOT_FOUND", "no such order for this member")
RewardNotFound = _error("RewardNotFound", 404, "REWARD_NOT_FOUND", "no such reward")
CouponNotFound = _error("CouponNotFound", 404, "COUPON_NOT_FOUND", "no such coupon")
WebhookNotFound = _error("WebhookNotFound", 404, "WEBHOOK_NOT_FOUND", "no such webhook")
AlreadyExists = _error("AlreadyExists", 409, "ALREADY_EXISTS", "it already exists")
IdempotencyMismatch = _error(
    "IdempotencyMismatch", 409, "IDEMPOTENCY_MISMATCH", "this key was used before with a different payload"
)
RequestInProgress = _error("RequestInProgress", 409, "REQUEST_IN_PROGRESS",
                           "a request with this key is still running; retry shortly")
InsufficientPoints = _error("InsufficientPoints", 422, "INSUFFICIENT_POINTS", "not enough available points")
OutOfStock = _error("OutOfStock", 422, "OUT_OF_STOCK", "the reward is out of stock")
RewardLimitReached = _error("RewardLimitReached", 422, "REWARD_LIMIT_REACHED", "the member reached this reward's limit")
TierRequired = _error("TierRequired", 422, "TIER_REQUIRED", "the member's tier is too low for this reward")
MemberInactive = _error("MemberInactive", 422, "MEMBER_INACTIVE", "the member is suspended or closed")
CurrencyMismatch = _error("CurrencyMismatch", 422, "CURRENCY_MISMATCH", "the currency is not the program's")
RefundExceedsOrder = _error("RefundExceedsOrder", 422, "REFUND_EXCEEDS_ORDER", "refunds would exceed the order total")
UnknownActivity = _error("UnknownActivity", 422, "UNKNOWN_ACTIVITY", "no rule for this activity type")
ActivityLimitReached = _error("ActivityLimitReached", 422, "ACTIVITY_LIMIT_REACHED", "the activity limit is reached")
VoucherNotIssued = _error("VoucherNotIssued", 422, "VOUCHER_NOT_ISSUED", "the voucher is not in the issued state")
HoldNotFound = _error("HoldNotFound", 404, "HOLD_NOT_FOUND", "no such hold for this member")
PointsBelowMinimum = _error("PointsBelowMinimum", 422, "POINTS_BELOW_MINIMUM", "fewer points than one use needs")
PointsExceedOrder = _error("PointsExceedOrder", 422, "POINTS_EXCEED_ORDER",
                           "points may not pay that much of this order")
HoldNotActive = _error("HoldNotActive", 422, "HOLD_NOT_ACTIVE", "the hold is no longer held")
TransferLimitReached = _error("TransferLimitReached", 422, "TRANSFER_LIMIT_REACHED",
                              "the transfer is below the minimum or beyond the month's limit")
TransfersDisabled = _error("TransfersDisabled", 422, "TRANSFERS_DISABLED", "transfers are switched off")
RetryLater = _error("RetryLater", 503, "RETRY_LATER", "the service is busy; retry the same request")


class CouponRejected(LoyaltyError):
    """A coupon rule said no; `code` is one of SPEC 2.9's coupon codes."""

    status = 422

    def __init__(self, code: str, message: Optional[str] = None, **details: Any) -> None:
        self.code = code
        if code == "COUPON_NOT_FOUND":
            self.status = 404
        super().__init__(message or code.replace("_", " ").lower(), **details)
