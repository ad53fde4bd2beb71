"""measure-campaigns (SPEC 2.18): attribution of orders to messages and hold-outs, and the
per-source counts the results routes read (docs/UPLIFT.md)."""
from __future__ import annotations

from chalicelib.jobs.framework import JobContext, register
from chalicelib.services import attribution


@register("measure-campaigns")
def measure_campaigns(ctx: JobContext) -> None:
    """Daily and on demand: index the new treatment/control records, attribute orders
    within `attribution_days`, count treatment and control per source and day, and sum
    coupon campaigns' revenue.

    Four checkpointed parallel scans, in order (each resumes from its per-segment
    checkpoints; a run started again with the same job_id skips the phases done):
    1. `index`: the exposure batches the deliveries wrote → one record per member,
       source and period (only those whose claim committed, with the log's time);
    2. `match`: the orders of the measured period → each one inside a window of a
       record of its member (at ≤ occurred_at < at + attribution_days, occurred_at ≤
       as_of) is stored with its net amount (total − refunded; rewritten every run);
    3. `tally`: every record of the measured period → members, converters (a member
       with an attributed order whose net is above 0) and revenue per source, day and
       group; the counts ride on the checkpoints (a page counts once), and are then
       written as the results of each (source, day);
    4. `coupons`: the redemptions in force → each coupon campaign's revenue (the net
       total of the orders that redeemed its codes), shown in its stats.
    Fanned out in AWS (one worker invocation per segment): a segment goes on to the next
    phase once that phase is done in every segment, and the segment that finishes a phase
    last sends the others on (services/attribution.py, docs/UPLIFT.md)."""
    attribution.measure(ctx)
