"""Voucher jobs (expire-vouchers)."""
from __future__ import annotations

from chalicelib.jobs.framework import JobContext, register
from chalicelib.services import rewards
from chalicelib.store import scans


@register("expire-vouchers")
def expire_vouchers(ctx: JobContext) -> None:
    """Issued vouchers past their expiry become `expired`."""

    def handle(rec):
        return {"vouchers_expired": 1} if rewards.expire_voucher(rec, ctx.as_of) else None

    ctx.scan(scans.issued_vouchers(), handle)
