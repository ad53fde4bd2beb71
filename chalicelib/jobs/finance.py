"""The points liability report (SPEC 2.17): daily, on demand, fanned out over segments.

Each segment scans its share of the members table. A page's members are summed at the
page's end: per member the outstanding points (from the member item) and the 12-month
flows (from the member's newest ledger entries, read for several members at once). The
page's partial sums are kept in the segment's checkpoint with the page they belong to, so
a page scanned again after a crash is never counted twice. The segment that finds every
segment done sums their checkpoints and stores the report (docs/FINANCE.md).
"""
from __future__ import annotations

import contextvars
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from chalicelib.errors import RetryLater
from chalicelib.jobs.framework import JobContext, register
from chalicelib.services import finance
from chalicelib.store import jobs as job_store
from chalicelib.store import members as store
from chalicelib.store import scans
from chalicelib.store.base import Conflict, is_transient

PHASE = "main"


def ledger_workers() -> int:
    """Members whose ledgers a segment reads at once (LOYALTY_REPORT_WORKERS, default 8):
    the reads are independent queries, so a segment's time divides by about this much."""
    raw = os.environ.get("LOYALTY_REPORT_WORKERS", "8")
    return max(1, min(int(raw), 32)) if raw.isdigit() else 8


@register("report-liability")
def report_liability(ctx: JobContext) -> None:
    """Outstanding points, their value, expiry by month, 12-month flows, breakage, estimated liability."""
    policy = finance.expiry_policy()
    page: list = []  # the scanned page's member records, summed at its end

    def partials(rec):
        try:
            return finance.member_partials(store.from_record(rec), ctx.as_of, policy)
        except Exception as exc:  # noqa: BLE001 - sorted out below, on the page's thread
            return exc

    def handle(rec):
        page.append(rec)
        return None

    def page_end() -> dict:
        records = list(page)
        page.clear()
        workers = min(ledger_workers(), len(records))
        if workers > 1:
            context = contextvars.copy_context()  # the job's pinned clock, in every thread
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = list(pool.map(lambda r: context.copy().run(partials, r), records))
        else:
            results = [partials(r) for r in records]
        sums: Counter = Counter()
        for rec, result in zip(records, results):
            if isinstance(result, Exception):
                if isinstance(result, (RetryLater, Conflict)) or is_transient(result):
                    raise result  # the page is scanned again on resume; none of its sums were kept
                ctx.record_failed(rec, result)  # one bad member never stops the report
                sums["failed"] += 1
            else:
                sums.update(result)
        return dict(sums)

    ctx.scan(scans.members(), handle, phase=PHASE, on_page_end=page_end)
    totals = finance.segment_totals(ctx.job_id, ctx.segments, job_store.load_checkpoint, PHASE)
    if totals is not None:  # this was the last segment to finish (or the in-process run)
        job = job_store.get(ctx.job_id) or {}
        finance.finish_liability(ctx.job_id, ctx.as_of, job.get("started_at") or "", totals)


@register("index-member-emails")
def index_member_emails(ctx: JobContext) -> None:
    """Backfill of the `by-email` index: members written before it existed get their
    `email_key` (CLI and worker only; run once after deploying the index, see docs/FINANCE.md)."""
    def handle(rec):
        if not finance.email_index_stale(rec.email_key, store.from_record(rec)):
            return None
        return {"reindexed": 1} if finance.reindex_email(rec.member_id) else None

    ctx.scan(scans.members(), handle)
