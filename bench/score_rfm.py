"""`score_rfm`: members/s of the `score-rfm` job at 10k and 100k members over 4 scan
segments, and the peak memory of the worker.

The table is seeded as `tier_recalc` seeds it (`bench/tiers.py`: ~1 KB member items with
spend buckets and order timestamps; 4–11 orders for most, none for a tenth), so the model
is fitted (not the fallback). Ours: `framework.create("score-rfm", ...)` +
`framework.execute(job_id)`: the gather scan, the fit on the reservoir sample, the stored
plan, then the write scan (one conditional member write per member whose segment changed:
on this first scoring, every member). The job's segments run one after the other in this
process, as a single worker runs them, so the peak memory measured (tracemalloc: Python
allocations of this process; the emulator is another process) is an upper bound of one
segment worker's. One run per size: the 100k run alone takes minutes on the emulator.
"""
from __future__ import annotations

import time
import tracemalloc

from bench.common import entry, rnd
from bench.tiers import Table

AS_OF = "2026-03-01T00:00:00Z"


def run_job() -> dict:
    from chalicelib import clock
    from chalicelib.jobs import framework

    data = framework.create("score-rfm", clock.parse_instant(AS_OF), "bench", segments=4)
    return framework.execute(data["job_id"])


def measure(url: str, sizes=(10000, 100000), log=print) -> dict:
    from chalicelib.config import get_settings

    table = Table(url, get_settings().resource_name("members"))
    value, per_member, peak, detail = {}, {}, {}, {}
    for n in sizes:
        seed = table.seed_to(n)
        tracemalloc.start()
        t = time.perf_counter()
        job = run_job()
        took = time.perf_counter() - t
        peak[str(n)] = rnd(tracemalloc.get_traced_memory()[1] / 2 ** 20, 1)
        tracemalloc.stop()
        counts = job["counts"]
        if int(counts.get("scored", 0)) != n:
            raise AssertionError(f"scored {counts.get('scored')} of {n}")
        value[str(n)] = rnd(n / took, 1)
        per_member[str(n)] = rnd(1e6 * took / n, 2)
        detail[str(n)] = {"seconds": rnd(took, 1), "seed_seconds": rnd(seed, 1), "counts": counts}
        log(f"  score_rfm {n}: {value[str(n)]}/s, {per_member[str(n)]} us/member, peak {peak[str(n)]} MB")
    lo, hi = str(min(sizes)), str(max(sizes))
    scaling = rnd(per_member[hi] / per_member[lo])
    out = entry(value, None, scaling, {f"per_member_{hi}_vs_{lo}": "<= 1.5", "peak_memory_mb": "<= 512"},
                "members/s", per_member_us=per_member, peak_memory_mb=peak, segments=4, runs=detail)
    out[f"per_member_{hi}_vs_{lo}"] = scaling
    out["peak_memory_mb"] = max(peak.values())
    return out
