"""The points liability report (SPEC 2.17): daily, on demand, fanned out over segments.

Each segment scans its share of the members table; per member it adds the outstanding
points (from the member item) and the 12-month flows (from the member's newest ledger
entries) to the page's partial sums. The partial sums are kept in the segment's
checkpoint with the page they belong to, so a page scanned again after a crash is never
counted twice. The segment that finds every segment done sums their checkpoints and
stores the report (docs/FINANCE.md).
"""
from __future__ import annotations

from collections import Counter

from chalicelib.jobs.framework import JobContext, register
from chalicelib.store import jobs as job_store
from chalicelib.store import members as store
from chalicelib.store.models import MemberRecord

PHASE = "main"


@register("report-liability")
def report_liability(ctx: JobContext) -> None:
    """Outstanding points, their value, expiry by month, 12-month flows, breakage, estimated liability."""
    from chalicelib.services import finance
    from chalicelib.store.base import Conflict, is_transient
    from chalicelib.errors import RetryLater

    policy = finance.expiry_policy()
    page: Counter = Counter()

    def handle(rec):
        try:
            page.update(finance.member_partials(store.MemberRow.from_record(rec), ctx.as_of, policy))
        except Exception as exc:  # noqa: BLE001 - one bad member never stops the report
            if isinstance(exc, (RetryLater, Conflict)) or is_transient(exc):
                raise  # the page is scanned again on resume; its partial sums were not kept
            ctx.record_failed(rec, exc)
            page["failed"] += 1
        return None

    def page_end() -> dict:
        done = dict(page)
        page.clear()
        return done

    ctx.scan(MemberRecord, handle, phase=PHASE, on_page_end=page_end)
    totals = finance.segment_totals(ctx.job_id, ctx.segments, job_store.load_checkpoint, PHASE)
    if totals is not None:  # this was the last segment to finish (or the in-process run)
        job = job_store.get(ctx.job_id) or {}
        finance.finish_liability(ctx.job_id, ctx.as_of, job.get("started_at") or "", totals)
