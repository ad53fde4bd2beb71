"""`score_rfm`: members/s of the `score-rfm` job at 10k and 100k members fanned out over 4
scan segments, and the peak memory of one segment worker.

The table is seeded as `tier_recalc` seeds it (`bench/tiers.py`: ~1 KB member items with
spend buckets and order timestamps; 4–11 orders for most, none for a tenth), so the model
is fitted (not the fallback). Ours runs the job as the jobs-queue workers run it in AWS:
`framework.create("score-rfm", ..., segments=4)`, then one `framework.execute(job_id,
only_segment=s)` per segment message: each gathers its segment and stores its statistics;
the last to finish merges them, fits the plan once and "sends" the other segments their
write phase (`scoring.dispatch`, replaced here by a local queue), then every segment
writes (one conditional member write per member whose segment changed: on a first
scoring, every member). The workers run one after another in this process, so members/s
is one worker's throughput; the peak memory is measured per worker invocation with
tracemalloc (Python allocations; the emulator is another process) and the largest is
reported. One run per size: the 100k run alone takes many minutes on the emulator.
"""
from __future__ import annotations

import time
import tracemalloc

from bench.common import entry, rnd
from bench.tiers import Table

AS_OF = "2026-03-01T00:00:00Z"


def run_job(segments: int = 4) -> tuple:
    """Run score-rfm as `segments` worker invocations; (job record, per-worker peaks in MB, seconds)."""
    from chalicelib import clock
    from chalicelib.jobs import framework, scoring

    data = framework.create("score-rfm", clock.parse_instant(AS_OF), "bench", segments=segments)
    queue = list(range(segments))
    real = scoring.dispatch
    scoring.dispatch = lambda job_id, segs: queue.extend(segs)
    peaks, took = [], 0.0
    try:
        while queue:
            segment = queue.pop(0)
            tracemalloc.start()
            t = time.perf_counter()
            framework.execute(data["job_id"], only_segment=segment)
            took += time.perf_counter() - t
            peaks.append(tracemalloc.get_traced_memory()[1] / 2 ** 20)
            tracemalloc.stop()
    finally:
        scoring.dispatch = real
    return framework.get_job(data["job_id"]), peaks, took


def measure(url: str, sizes=(10000, 100000), log=print) -> dict:
    from chalicelib.config import get_settings

    table = Table(url, get_settings().resource_name("members"))
    value, per_member, peak, detail = {}, {}, {}, {}
    for n in sizes:
        seed = table.seed_to(n)
        job, peaks, took = run_job()
        peak[str(n)] = rnd(max(peaks), 1)
        counts = job["counts"]
        if job["status"] != "succeeded":
            raise AssertionError(f"score-rfm {job['status']}: {job.get('error')}")
        if int(counts.get("scored", 0)) != n:
            raise AssertionError(f"scored {counts.get('scored')} of {n}")
        value[str(n)] = rnd(n / took, 1)
        per_member[str(n)] = rnd(1e6 * took / n, 2)
        detail[str(n)] = {"seconds": rnd(took, 1), "seed_seconds": rnd(seed, 1), "counts": counts,
                          "worker_invocations": len(peaks), "worker_peaks_mb": [rnd(p, 1) for p in peaks]}
        log(f"  score_rfm {n}: {value[str(n)]}/s, {per_member[str(n)]} us/member, peak {peak[str(n)]} MB")
    lo, hi = str(min(sizes)), str(max(sizes))
    scaling = rnd(per_member[hi] / per_member[lo])
    out = entry(value, None, scaling, {f"per_member_{hi}_vs_{lo}": "<= 1.5", "peak_memory_mb": "<= 512"},
                "members/s", per_member_us=per_member, peak_memory_mb=peak, segments=4, runs=detail)
    out[f"per_member_{hi}_vs_{lo}"] = scaling
    out["peak_memory_mb"] = max(peak.values())
    out["met"] = scaling <= 1.5 and out["peak_memory_mb"] <= 512
    return out
