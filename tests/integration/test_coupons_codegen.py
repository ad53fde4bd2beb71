"""Unique-code generation: bulk speed, the background job, UnprocessedItems, exact resume."""
from __future__ import annotations

import threading
import time

import pytest

from tests.integration.test_coupons import C, NOW, create, stats, unique_campaign


@pytest.fixture
def pinned():
    from chalicelib import clock

    with clock.pinned(clock.parse_instant(NOW)):
        yield


def codes_of(campaign_id: str) -> list:
    from chalicelib.store.coupons import CodeRecord

    return [r for r in CodeRecord.scan(CodeRecord.campaign_id == campaign_id)]


class CallCounter:
    def __init__(self):
        from chalicelib.store.base import dynamodb_client

        self.client = dynamodb_client()
        self.calls: dict = {}
        self.written: list = []
        self.lock = threading.Lock()
        self.client.meta.events.register("before-call.dynamodb.*", self._count)
        self.client.meta.events.register("before-parameter-build.dynamodb.BatchWriteItem", self._items)

    def _count(self, model, **kw):
        with self.lock:  # codegen writes from several threads: no lost increments
            self.calls[model.name] = self.calls.get(model.name, 0) + 1

    def _items(self, params, **kw):
        with self.lock:
            for reqs in params["RequestItems"].values():
                self.written += [r["PutRequest"]["Item"]["code"]["S"] for r in reqs]

    def close(self):
        self.client.meta.events.unregister("before-call.dynamodb.*", self._count)
        self.client.meta.events.unregister("before-parameter-build.dynamodb.BatchWriteItem", self._items)


def test_generating_100000_codes_is_batch_write_bound(api, pinned):
    """100,000 codes: exactly that many distinct 12-character codes, written by BatchWriteItem
    (4,000 calls of 25) plus a handful of checkpoint calls; no per-code round trip."""
    from chalicelib.services import coupons

    create(api, unique_campaign("big"))
    counter = CallCounter()
    started = time.perf_counter()
    try:
        out = coupons.generate_codes("big", 100_000)
    finally:
        counter.close()
    elapsed = time.perf_counter() - started
    assert out == {"campaign_id": "big", "generated": 100_000, "codes_total": 100_000}
    assert len(counter.written) == 100_000 and len(set(counter.written)) == 100_000
    assert all(len(c) == 12 for c in counter.written[:1000])
    assert counter.calls["BatchWriteItem"] == 4_000
    overhead = sum(counter.calls.values()) - 4_000
    assert overhead <= 80, counter.calls  # checkpoints: ~2 per 5,000-code chunk
    print(f"100,000 codes in {elapsed:.1f}s, {sum(counter.calls.values())} DynamoDB calls")
    assert stats(api, "big")["codes"] == 100_000


def test_large_count_runs_as_a_job(api):
    create(api, unique_campaign("u1"))
    r = api.post(f"{C}/u1/codes", {"count": 10_001}, role="admin", now=NOW)
    assert r.status == 202, r.body
    assert r.body["campaign_id"] == "u1" and r.body["status"] in ("queued", "running", "succeeded")
    job_id = r.body["job_id"]
    deadline = time.time() + 60
    while time.time() < deadline:
        job = api.get(f"/v1/admin/jobs/{job_id}", role="admin").body
        if job["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.2)
    assert job["status"] == "succeeded", job
    assert job["job"] == "generate-coupon-codes" and job["counts"]["codes_generated"] == 10_001
    assert stats(api, "u1")["codes"] == 10_001
    # the reservation counts the job's codes: the campaign cannot be pushed past 1,000,000
    r = api.post(f"{C}/u1/codes", {"count": 1_000_000 - 10_000}, role="admin", now=NOW)
    assert r.status == 400 and r.error == "VALIDATION_ERROR"


def test_unprocessed_items_are_retried(api, pinned):
    """moto never returns UnprocessedItems: a hook withholds part of the first batches and
    reports them unprocessed, as DynamoDB does under load."""
    from chalicelib.store.base import dynamodb_client

    client = dynamodb_client()
    state = {"withheld": 0, "calls": 0}

    def withhold(params, context, **kw):
        state["calls"] += 1
        if state["calls"] <= 5:
            (table, reqs), = params["RequestItems"].items()
            keep, later = reqs[:-10], reqs[-10:]
            params["RequestItems"][table] = keep
            context["withheld"] = {table: later}
            state["withheld"] += len(later)

    def report(parsed, context, **kw):
        if context.get("withheld"):
            parsed["UnprocessedItems"] = context.pop("withheld")

    client.meta.events.register("before-parameter-build.dynamodb.BatchWriteItem", withhold)
    client.meta.events.register("after-call.dynamodb.BatchWriteItem", report)
    try:
        create(api, unique_campaign("u1"))
        r = api.post(f"{C}/u1/codes", {"count": 300}, role="admin", now=NOW)
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb.BatchWriteItem", withhold)
        client.meta.events.unregister("after-call.dynamodb.BatchWriteItem", report)
    assert r.status == 201 and r.body["generated"] == 300, r.body
    assert state["withheld"] == 50
    assert len(codes_of("u1")) == 300


def test_unprocessed_items_that_never_go_through_fail_cleanly(api, pinned, monkeypatch):
    from chalicelib.errors import RetryLater
    from chalicelib.store import coupons as store
    from chalicelib.store.base import dynamodb_client

    client = dynamodb_client()

    def never(params, context, **kw):
        (table, reqs), = params["RequestItems"].items()
        context["withheld"] = {table: reqs}
        params["RequestItems"][table] = reqs[:1]

    def report(parsed, context, **kw):
        parsed["UnprocessedItems"] = context.pop("withheld")

    client.meta.events.register("before-parameter-build.dynamodb.BatchWriteItem", never)
    client.meta.events.register("after-call.dynamodb.BatchWriteItem", report)
    try:
        with pytest.raises(RetryLater):
            store.batch_put("coupon-codes", [store.code_item(f"X{i}", "u1", i) for i in range(3)], attempts=3,
                            base_delay=0.001)
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb.BatchWriteItem", never)
        client.meta.events.unregister("after-call.dynamodb.BatchWriteItem", report)


def test_a_crashed_generation_resumes_without_overshooting(api, pinned, monkeypatch):
    """The run dies after writing part of a chunk (before its checkpoint commits); the re-run
    writes only what is missing and the count is exact."""
    from chalicelib.services import coupons
    from chalicelib.store import coupons as store

    monkeypatch.setattr(coupons.codes, "GENERATION_CHUNK", 400)  # read where it is defined
    create(api, unique_campaign("u1"))
    real = store.parallel_batch_put
    calls = {"n": 0}

    def crash_on_second_chunk(resource, items, workers=None):
        calls["n"] += 1
        if calls["n"] == 2:
            real(resource, items[:150])
            raise RuntimeError("lambda timed out")
        real(resource, items, workers)

    monkeypatch.setattr(store, "parallel_batch_put", crash_on_second_chunk)
    with pytest.raises(RuntimeError):
        coupons.generate("u1", 1000, "g1")
    assert len(codes_of("u1")) == 550 and stats(api, "u1")["codes"] == 400
    assert coupons.generate("u1", 1000, "g1") == 1000
    assert len(codes_of("u1")) == 1000 and stats(api, "u1")["codes"] == 1000
    assert coupons.generate("u1", 1000, "g1") == 1000  # a finished run is a no-op
    assert len(codes_of("u1")) == 1000


def test_job_resume_after_failure(api, pinned, monkeypatch):
    from chalicelib.jobs import framework
    from chalicelib.services import coupons
    from chalicelib.store import coupons as store

    monkeypatch.setattr(coupons.codes, "GENERATION_CHUNK", 300)  # read where it is defined
    create(api, unique_campaign("u1"))
    real = store.parallel_batch_put
    calls = {"n": 0}

    def flaky(resource, items, workers=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("throttled for too long")
        real(resource, items, workers)

    monkeypatch.setattr(store, "parallel_batch_put", flaky)
    job = framework.create("generate-coupon-codes", framework.parse_as_of(NOW), "tester",
                           {"campaign_id": "u1", "count": 1000, "gen_id": "g2"})
    with pytest.raises(RuntimeError):
        framework.execute(job["job_id"])
    assert framework.get_job(job["job_id"])["status"] == "failed"
    done = framework.execute(job["job_id"])  # the queue redelivers: the job resumes
    assert done["status"] == "succeeded" and done["counts"]["codes_generated"] == 1000
    assert len(codes_of("u1")) == 1000 and stats(api, "u1")["codes"] == 1000


def test_short_pattern_codes_are_unique_by_conditional_puts(api, pinned, monkeypatch):
    """A 5-character pattern has 25 bits: collisions happen, conditional puts skip them and the
    generator draws again until the count is reached exactly."""
    from chalicelib.domain import codes as rules
    from chalicelib.services import coupons

    create(api, unique_campaign("s1", code_pattern={"prefix": "xmas", "length": 5}))
    r = api.post(f"{C}/s1/codes", {"count": 20}, role="admin", now=NOW)
    assert r.status == 201 and r.body["codes_total"] == 20
    first = {c.code for c in codes_of("s1")}
    assert len(first) == 20 and all(c.startswith("XMAS") and len(c) == 9 for c in first)

    # force collisions: the next draw repeats ten existing codes
    real = rules.random_codes
    draws = {"n": 0}

    def colliding(count, length=12, prefix=""):
        draws["n"] += 1
        fresh = real(count, length, prefix)
        return (sorted(first)[:10] + fresh)[:count] if draws["n"] == 1 else fresh

    monkeypatch.setattr(rules, "random_codes", colliding)
    r = api.post(f"{C}/s1/codes", {"count": 15}, role="admin", now=NOW)
    assert r.status == 201 and r.body == {"campaign_id": "s1", "generated": 15, "codes_total": 35}
    assert draws["n"] == 2
    assert len({c.code for c in codes_of("s1")}) == 35
    # a 4-character pattern holds at most a quarter of its 2^20 space
    create(api, unique_campaign("s2", code_pattern={"prefix": "", "length": 4}))
    r = api.post(f"{C}/s2/codes", {"count": 262_145}, role="admin", now=NOW)
    assert r.status == 400 and r.error == "VALIDATION_ERROR"
    assert coupons.code_capacity(4) == 262_144
