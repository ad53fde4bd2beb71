"""Coupon jobs: bulk generation of unique codes (SPEC 2.9: large counts run in the background)."""
from __future__ import annotations

from chalicelib.jobs.framework import JobContext, register
from chalicelib.services import coupons


@register("generate-coupon-codes", fanout=False)
def generate_coupon_codes(ctx: JobContext) -> None:
    """Generate `params.count` codes for `params.campaign_id`; a re-run resumes exactly."""
    params = ctx.params
    done = coupons.generate(params["campaign_id"], int(params["count"]), params["gen_id"], progress=ctx.progress)
    ctx.counts["codes_generated"] = done
