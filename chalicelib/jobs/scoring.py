"""score-rfm: RFM quintiles, labels, predicted value and touch model, fanned out over scan
segments (SPEC 2.11, 2.19; docs/SEGMENTS.md, "Running at scale")."""
from __future__ import annotations

import dataclasses
import math
import secrets
from collections import Counter

from chalicelib import clock
from chalicelib.domain import rfm
from chalicelib.jobs import framework
from chalicelib.jobs.framework import JobContext, register
from chalicelib.services import segments
from chalicelib.store import jobs as job_store
from chalicelib.store import marketing as store
from chalicelib.store import members as member_store

WRITE_PHASE = "main"  # the framework ends a fanned-out job when every "main" checkpoint is done


def dispatch(job_id: str, segments_: list) -> None:
    """AWS: one jobs-queue message per segment whose write phase the plan's creator starts
    (tests and the bench replace this to run them in-process)."""
    framework._send_job_messages([{"job_id": job_id, "segment": s} for s in segments_])


@register("score-rfm", fanout=True)
def score_rfm(ctx: JobContext) -> None:
    """RFM quintiles, labels, predicted value (p_alive, expected orders, LTV) and touch model
    for every active member, in three steps over the job's scan segments.

    1. Gather, per segment: one scan of the segment keeping bounded statistics (exact
       histograms of R and F, M at 4 significant digits, the earliest first order) and a
       reservoir sample of 1/segments of SAMPLE_SIZE members reduced to integers; stored
       with the job when the segment's scan is complete (a segment cut short is gathered
       again from its start: reading is the cheap part).
    2. Fit, once: the worker that finds every segment's statistics stored merges them and
       fits the plan (cut points, value model, touch thresholds), stored create-if-absent;
       in AWS the worker whose call created it sends the other segments their write phase.
    3. Write, per segment: each member scored alone from the stored plan; a page's changed
       members written together (transactions of up to 100 puts, each conditional on its
       member's version read; nothing when unchanged) before the page's checkpoint, so the
       writes resume from the segment's checkpoints. The report is summed from every segment's checkpointed
       counts by whichever worker finds them all done (a page's report counts are kept
       only with the checkpoint that ends it, so a page scanned again counts once).
    In-process (CLI, tests, the local stage) one call runs the three steps for every segment."""
    plan = segments.load_plan(ctx.job_id)
    mine = [ctx.only_segment] if ctx.only_segment is not None else list(range(ctx.segments))
    if plan is not None and ctx.only_segment is not None and not _dispatched(ctx.job_id):
        # the plan's creator stopped before it sent the others (this is its redelivered
        # message, or a sent segment that started before the mark): send them (again)
        _dispatch_others(ctx)
    if plan is None:
        per_segment = max(1, math.ceil(segments.SAMPLE_SIZE / ctx.segments))
        for s in mine:
            if not segments.has_stats(ctx.job_id, s):
                _gather(ctx, s, per_segment)
        if not all(segments.has_stats(ctx.job_id, s) for s in range(ctx.segments)):
            return  # fanned out: the last segment to finish its gather fits the plan and dispatches this one
        stats = [segments.load_stats(ctx.job_id, s) for s in range(ctx.segments)]
        plan, created = segments.save_plan_created(ctx.job_id, segments.plan_from_stats(stats, ctx.as_of))
        del stats
        if ctx.only_segment is not None:
            if not created:
                return  # another worker created the plan: it dispatches this segment's write phase
            _dispatch_others(ctx)
    _write(ctx, plan)


DISPATCHED_PHASE = "rfm-dispatched"


def _dispatched(job_id: str) -> bool:
    return bool(job_store.load_checkpoint(job_id, DISPATCHED_PHASE, 0).get("done"))


def _dispatch_others(ctx: JobContext) -> None:
    """Send the other segments their write phase, then mark it sent (a crash in between
    sends them again on redelivery: a segment written twice finds its members unchanged)."""
    others = [s for s in range(ctx.segments) if s != ctx.only_segment]
    if others:
        dispatch(ctx.job_id, others)
    job_store.store_checkpoint(ctx.job_id, DISPATCHED_PHASE, 0, {"done": True, "segments": others})


def _gather(ctx: JobContext, segment: int, sample_size: int) -> None:
    gather = segments.Gatherer(ctx.as_of, seed=f"{ctx.job_id}#{segment}", sample_size=sample_size)

    def visit(read: member_store.Read):
        if read.status == "active":
            gather.add(read.member_id, read.state)
        return None

    one = dataclasses.replace(ctx, only_segment=segment, counts=Counter(), errors=[])
    one.scan(member_store.RawMembers, visit, phase=f"gather-{secrets.token_hex(4)}")  # a fresh phase: never half-resumed
    ctx.errors.extend(one.errors)
    segments.save_stats(ctx.job_id, segment, gather.stats())


def _write(ctx: JobContext, plan: segments.Plan) -> None:
    scorer = plan.scorer()
    scored_at = clock.iso(ctx.as_of)
    page: Counter = Counter()  # the report's counts of this page: kept only with its checkpoint
    batch: list = []  # the page's (member row, score): stored together before its checkpoint

    def write(read: member_store.Read):
        if read.status != "active":
            return None
        inputs = rfm.inputs_from_state(read.member_id, read.state, ctx.as_of)
        score = scorer.score(inputs, plan.predict(inputs))
        batch.append((read, score))
        page.update({f"label_{score.label}": 1, f"touch_{score.touch}": 1, "ltv_total": score.ltv_12m, "scored": 1,
                     "buyers": int(inputs.orders >= 1), "repeat_buyers": int(inputs.orders >= 2)})
        return None

    def page_end():
        items, out = list(batch), Counter(page)
        batch.clear()
        page.clear()
        out.update(segments.write_segments(items, scored_at))  # raises: the page is scanned again on resume
        return dict(out)

    ctx.scan(member_store.RawMembers, write, phase=WRITE_PHASE, on_page_end=page_end)
    if ctx.only_segment is None:
        total = ctx.counts
    else:
        total = Counter()
        for s in range(ctx.segments):
            cp = job_store.load_checkpoint(ctx.job_id, WRITE_PHASE, s)
            if not cp.get("done"):
                return  # other segments still writing: the last one stores the report
            total.update(cp.get("counts") or {})
    report = segments.report_from_counts(total, scored_at, plan.model)
    store.save_report(report)
    ctx.counts.update(model=0 if plan.model.kind == "fallback" else 1)
