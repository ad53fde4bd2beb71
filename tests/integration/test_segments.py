"""score-rfm end to end, the segments report and listing, churn risk (SPEC 2.11)."""
from __future__ import annotations

import pytest

from tests.integration.test_marketing_helpers import EMAIL, drain, job, only


def population(api):
    """A frequent big spender, a one-off small buyer, a lapsed big buyer, a member without a purchase."""
    api.enrol("big", consents=EMAIL)
    for i in range(6):
        assert api.accrue("big", 90000, order_id=f"big-{i}", now=f"2026-0{i + 1}-10T10:00:00Z").status == 201
    api.enrol("small", consents=EMAIL)
    api.accrue("small", 1000, order_id="small-1", now="2026-06-01T10:00:00Z")
    api.enrol("lapsed", consents=EMAIL)
    for i in range(3):
        api.accrue("lapsed", 60000, order_id=f"lapsed-{i}", now=f"2025-0{i + 7}-10T10:00:00Z")
    api.enrol("none", consents=EMAIL)


def test_scoring_ranks_customers_and_writes_their_segment(api):
    population(api)
    counts = job(api, "score-rfm", "2026-06-15T00:00:00Z")["counts"]
    assert counts["scored"] == 4 and counts["written"] == 4
    seg = {m: api.member(m)["segment"] for m in ("big", "small", "lapsed", "none")}
    assert seg["none"] == {"rfm": "000", "label": "new", "touch": "tech_touch", "ltv_12m": 0,
                           "p_alive": 0.0, "expected_orders_12m": 0.0, "previous_p_alive": None,
                           "scored_at": "2026-06-15T00:00:00Z", "previous_label": None,
                           "changed_at": "2026-06-15T00:00:00Z"}
    # quintiles of mid-ranks among the three buyers (new members are not ranked): big is best on
    # R, F and M; small is in the middle on R (14 days), worst on F and M; lapsed worst on R
    assert (seg["big"]["rfm"], seg["small"]["rfm"], seg["lapsed"]["rfm"]) == ("555", "311", "133")
    assert (seg["big"]["label"], seg["small"]["label"], seg["lapsed"]["label"]) == ("champions", "hibernating",
                                                                                     "at_risk")
    # LTV: 12 months' net spend × retention by recency (5 days: 1.0; 14 days: 1.0; 278 days: 0.3)
    assert (seg["big"]["ltv_12m"], seg["small"]["ltv_12m"], seg["lapsed"]["ltv_12m"]) == (540000, 1000, 54000)
    assert [seg[m]["touch"] for m in ("big", "lapsed", "small")] == ["high_touch", "tech_touch", "tech_touch"]
    report = api.get("/v1/admin/segments", role="admin").body
    assert report["as_of"] == "2026-06-15T00:00:00Z" and report["scored"] == 4
    assert report["segments"] == {"champions": 1, "loyal": 0, "potential_loyalist": 0, "new": 1, "promising": 0,
                                  "need_attention": 0, "at_risk": 1, "cant_lose": 0, "hibernating": 1, "lost": 0}
    assert report["touch"] == {"high_touch": 1, "low_touch": 0, "tech_touch": 3}
    assert report["f2_rate"] == pytest.approx(0.6667)  # 2 of the 3 buyers ordered again
    assert report["nps"] is None and report["nps_responses"]["total"] == 0
    again = job(api, "score-rfm", "2026-06-15T00:00:00Z")["counts"]  # same moment: nothing to write
    assert again["unchanged"] == 4 and "written" not in again


def test_segment_members_listing(api):
    for i in range(3):
        api.enrol(f"n{i}")
    api.enrol("b1")
    api.accrue("b1", 5000, now="2026-06-01T00:00:00Z")
    api.enrol("gone")
    assert api.patch("/v1/members/gone", {"status": "suspended"}).status == 200
    job(api, "score-rfm", "2026-06-02T00:00:00Z")
    first = api.get("/v1/admin/segments/new/members?limit=2", role="admin")
    assert first.status == 200 and [m["member_id"] for m in first.body["items"]] == ["n0", "n1"]
    assert first.body["items"][0]["segment"]["label"] == "new" and first.body["items"][0]["tier"] == "bronze"
    second = api.get(f"/v1/admin/segments/new/members?limit=2&cursor={first.body['next_cursor']}", role="admin")
    assert [m["member_id"] for m in second.body["items"]] == ["n2"] and second.body["next_cursor"] is None
    assert api.get("/v1/admin/segments/lost/members", role="admin").body == {"items": [], "next_cursor": None}
    missing = api.get("/v1/admin/segments/nonsense/members", role="admin")
    assert missing.status == 404 and missing.error == "NOT_FOUND"
    assert api.get("/v1/admin/segments/new/members?cursor=!!", role="admin").error == "VALIDATION_ERROR"
    assert api.get("/v1/admin/segments", role="service").error == "FORBIDDEN"
    assert api.member("gone")["segment"] is None  # suspended members are not scored


def test_churn_risk_goes_to_customer_success_for_high_touch_and_marketing_otherwise(api):
    only(api, "churn_risk")
    api.enrol("vip", consents=EMAIL)
    for i in range(5):
        api.accrue("vip", 100000, order_id=f"vip-{i}", now=f"2025-0{i + 1}-10T10:00:00Z")
    api.enrol("reg", consents=EMAIL)
    for i in range(3):
        api.accrue("reg", 20000, order_id=f"reg-{i}", now=f"2025-0{i + 3}-15T10:00:00Z")
    for i in range(18):  # 20 members: 1 high-touch, 4 low-touch
        api.enrol(f"filler{i}", consents=EMAIL)
        api.accrue(f"filler{i}", 2000, order_id=f"fill-{i}", now="2025-03-20T10:00:00Z")
        api.accrue(f"filler{i}", 2000, order_id=f"fill2-{i}", now="2025-12-20T10:00:00Z")
    job(api, "score-rfm", "2025-06-01T00:00:00Z")
    assert api.member("vip")["segment"]["label"] == "champions"
    assert api.member("reg")["segment"]["label"] in ("champions", "loyal")
    drain()
    job(api, "score-rfm", "2026-01-15T00:00:00Z")  # months without an order
    vip, reg = api.member("vip")["segment"], api.member("reg")["segment"]
    assert vip["label"] == "cant_lose" and vip["touch"] == "high_touch" and vip["previous_label"] == "champions"
    assert reg["label"] in ("at_risk", "cant_lose") and reg["touch"] == "low_touch"
    job(api, "run-automations", "2026-01-15T09:00:00Z")
    msgs = {m["member_id"]: m for m in drain()}
    assert sorted(msgs) == ["reg", "vip"]
    assert (msgs["vip"]["template"], msgs["vip"]["channel"]) == ("churn_risk", "cs_alert")
    assert (msgs["reg"]["template"], msgs["reg"]["channel"]) == ("churn_risk", "email")
    assert msgs["vip"]["variables"]["segment"] == "cant_lose"
    assert msgs["vip"]["variables"]["ltv_12m"] == vip["ltv_12m"] == 135483  # (400,000 + 16/31 × 100,000) × 0.3
    job(api, "score-rfm", "2026-01-16T00:00:00Z")  # still at risk the next day: no new move
    job(api, "run-automations", "2026-01-16T09:00:00Z")
    assert drain() == []


def test_a_resumed_scoring_equals_an_uninterrupted_one(api, monkeypatch):
    """The write phase fails part-way; started again with the same job id it skips the gather
    (the stored plan), resumes from its checkpoints, and ends where an uninterrupted run ends."""
    from chalicelib import clock
    from chalicelib.jobs import framework
    from chalicelib.errors import RetryLater
    from chalicelib.services import segments

    population(api)
    for i in range(6):
        api.enrol(f"extra{i}", consents=EMAIL)
        api.accrue(f"extra{i}", 5000 * (i + 1), order_id=f"extra-{i}", now=f"2026-0{1 + i % 5}-03T10:00:00Z")
    as_of = clock.parse_instant("2026-06-15T00:00:00Z")
    real_write, calls = segments.write_segments, {"n": 0}

    def flaky(items, scored_at):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RetryLater("the store is busy")  # transient: the segment stops at its checkpoint
        return real_write(items, scored_at)

    monkeypatch.setattr(segments, "write_segments", flaky)
    monkeypatch.setattr(framework, "PAGE_SIZE", 2)  # several pages a segment: the failure is part-way
    data = framework.create("score-rfm", as_of, "test", segments=2)
    with pytest.raises(RetryLater):
        framework.execute(data["job_id"])
    plan = segments.load_plan(data["job_id"])
    assert plan is not None
    everyone = ("big", "small", "lapsed", "none", *(f"extra{i}" for i in range(6)))
    scored_before = [m for m in everyone if api.member(m).get("segment")]
    assert 0 < len(scored_before) < 10  # the first page was stored, the rest not yet
    gathers = []
    monkeypatch.setattr(segments.Gatherer, "add", lambda self, *a: gathers.append(a))
    resumed = framework.execute(data["job_id"])
    assert resumed["status"] == "succeeded" and gathers == []  # no second gather
    assert segments.load_plan(data["job_id"]) == plan
    assert resumed["counts"]["scored"] == 10
    after_resume = {m: api.member(m)["segment"] for m in ("big", "small", "lapsed", "none", "extra0", "extra5")}
    report = api.get("/v1/admin/segments", role="admin").body
    monkeypatch.setattr(segments.Gatherer, "add", real_gather_add)
    again = framework.execute(framework.create("score-rfm", as_of, "test", segments=2)["job_id"])
    assert again["counts"].get("unchanged") == 10 and "written" not in again["counts"]
    assert {m: api.member(m)["segment"] for m in after_resume} == after_resume
    assert api.get("/v1/admin/segments", role="admin").body == report


def test_a_member_written_while_its_page_is_scored_keeps_that_write(api, monkeypatch):
    """An accrual lands between the scan that read a member and the batched write of its
    page: the transaction is cancelled by that member's version condition, nothing of the
    page is written over it, the member is read again and scored on top of the accrual."""
    from chalicelib import clock
    from chalicelib.jobs import framework
    from chalicelib.services import segments
    from chalicelib.store import tx

    population(api)
    before = api.member("big")["points"]
    real_write, real_tx, raced, calls = segments.write_segments, tx.write, [], []

    def racing(items, scored_at):
        if not raced and any(read.member_id == "big" for read, _ in items):
            raced.append(1)
            assert api.accrue("big", 5000, order_id="race-1", now="2026-06-14T10:00:00Z").status == 201
        return real_write(items, scored_at)

    def counted(ops, token=None):
        if all("segment" in ((op.get("Put") or {}).get("Item") or {}).get("state", {}).get("S", "") and
               "segment_label" in op["Put"]["Item"] for op in ops):
            calls.append(len(ops))  # a transaction of segment writes
        return real_tx(ops, token)

    monkeypatch.setattr(segments, "write_segments", racing)
    monkeypatch.setattr(tx, "write", counted)
    data = framework.create("score-rfm", clock.parse_instant("2026-06-15T00:00:00Z"), "test", segments=1)
    done = framework.execute(data["job_id"])
    assert raced and done["counts"]["written"] == 4 and done["counts"]["scored"] == 4
    assert calls == [4, 1, 3]  # the page's transaction, cancelled by big's condition; then big alone, the rest as read
    after = api.member("big")
    assert after["points"] != before  # the accrual is kept
    assert after["segment"]["label"] == "champions" and after["segment"]["scored_at"] == "2026-06-15T00:00:00Z"
    ledger = api.get("/v1/members/big/ledger", role="admin").body
    assert any((e.get("reference") or {}).get("order_id") == "race-1" for e in ledger["items"]), ledger


def test_a_member_that_keeps_changing_does_not_hold_back_its_page(api, monkeypatch):
    """big's condition fails on every attempt (a member written faster than it is scored):
    after the first cancellation big goes in a transaction of its own, the rest of the page
    is written, and big alone makes the page fail transiently (scanned again on resume)."""
    from chalicelib import clock
    from chalicelib.errors import RetryLater
    from chalicelib.services import segments
    from chalicelib.store import tx

    population(api)
    real_tx, sizes = tx.write, []

    def hot(ops, token=None):
        ids = [op["Put"]["Item"]["member_id"]["S"] for op in ops]
        sizes.append(len(ops))
        if "big" in ids:
            raise tx.TxCancelled(["ConditionalCheckFailed" if m == "big" else None for m in ids])
        return real_tx(ops, token)

    monkeypatch.setattr(tx, "write", hot)
    monkeypatch.setattr(segments.time, "sleep", lambda s: None)
    as_of = clock.parse_instant("2026-06-15T00:00:00Z")
    from chalicelib.store import members as member_store

    reads = {r.member_id: r for r in member_store.reread(["big", "small", "lapsed", "none"]).values()}
    scorer = segments.Gatherer(as_of, seed="t")
    for m, r in reads.items():
        scorer.add(m, r.state)
    plan = scorer.plan()
    from chalicelib.domain import rfm

    items = []
    for m, r in reads.items():
        inputs = rfm.inputs_from_state(m, r.state, as_of)
        items.append((r, plan.scorer().score(inputs, plan.predict(inputs))))
    with pytest.raises(RetryLater):
        segments.write_segments(items, "2026-06-15T00:00:00Z")
    assert sizes == [4, 1, 3] + [1] * (segments.WRITE_ROUNDS - 2)  # big alone from the second round
    assert api.member("big")["segment"] is None
    assert all(api.member(m)["segment"]["scored_at"] == "2026-06-15T00:00:00Z" for m in ("small", "lapsed", "none"))


from chalicelib.services.segments import Gatherer as _G  # noqa: E402

real_gather_add = _G.add


# --- fanned out over segments (SPEC 2.19, docs/SEGMENTS.md "Running at scale") ------------------

AS_OF = "2026-06-15T00:00:00Z"


def _state(orders: list) -> dict:
    """A member's bounded order state (as the accrual path keeps it) from (date, cents) orders."""
    from collections import defaultdict

    stamps = [f"{d}T12:00:00Z" for d, _ in orders]
    months, spend = defaultdict(int), defaultdict(int)
    for d, cents in orders:
        months[d[:7]] += 1
        spend[d[:7]] += cents
    keep = [m for m in months if m >= "2025-06"]
    return {"orders": {"count": len(orders), "first_at": stamps[0], "last_at": stamps[-1],
                       "recent": [s for s in stamps if s >= "2025-05-11"][-40:],
                       "months": {m: months[m] for m in keep}},
            "spend": {m: spend[m] for m in keep}, "segment": None}


def seed_buyers(n: int = 600) -> dict:
    """n members written straight to the table (an API accrual each would take minutes):
    three in five buy again, every tenth since 2023 (so every segment's earliest order, and
    with it the calibration slice, is the program's), a twentieth without any order."""
    import random
    from datetime import date, timedelta

    from chalicelib.store.models import MemberRecord

    rng = random.Random(7)
    states = {}
    with MemberRecord.batch_write() as batch:
        for i in range(n):
            mid = f"s{i:04d}"
            if i % 20 == 19:
                state = {"orders": {}, "spend": {}, "segment": None}
            else:
                first = date(2023, 1, 5) + timedelta(days=rng.randrange(0, 120)) if i % 10 == 0 else \
                    date(2023, 10, 1) + timedelta(days=rng.randrange(0, 600))
                count = 1 if rng.random() < 0.3 else rng.randrange(2, 12)
                rate = rng.choice((30, 60, 120))
                days = sorted({0, *(min((date(2026, 6, 14) - first).days, int(rng.expovariate(1 / rate) * k))
                                    for k in range(1, count))})
                value = rng.choice((1500, 4000, 9000, 25000))
                state = _state([((first + timedelta(days=d)).isoformat(), value + rng.randrange(0, 500))
                                for d in days])
            states[mid] = state
            batch.save(MemberRecord(mid, version=1, status="active", profile={"name": mid}, state=state))
    return states


def segments_of(ids) -> dict:
    from chalicelib.store.models import MemberRecord

    return {r.member_id: (r.state or {}).get("segment") for r in MemberRecord.batch_get(list(ids))}


def run_fanned_out(job_id: str, segments_n: int, monkeypatch, order=None) -> list:
    """Run a job as the jobs-queue workers would: one execute per segment message; the
    worker that creates the plan 'sends' the other segments' write phase (run afterwards)."""
    from chalicelib.jobs import framework, scoring

    queue = list(order if order is not None else range(segments_n))
    sent = []
    monkeypatch.setattr(scoring, "dispatch", lambda job, segs: sent.append(list(segs)) or queue.extend(segs))
    while queue:
        framework.execute(job_id, only_segment=queue.pop(0))
    return sent


def test_fanned_out_scoring_fits_once_and_equals_the_in_process_run(api, monkeypatch):
    from chalicelib import clock
    from chalicelib.jobs import framework
    from chalicelib.domain import rfm
    from chalicelib.services import segments

    states = seed_buyers()
    as_of = clock.parse_instant(AS_OF)
    fits = []
    real_fit = segments.value_model.fit
    monkeypatch.setattr(segments.value_model, "fit", lambda *a: fits.append(1) or real_fit(*a))

    job_id = framework.create("score-rfm", as_of, "test", segments=4)["job_id"]
    sent = run_fanned_out(job_id, 4, monkeypatch)
    record = framework.get_job(job_id)
    assert record["status"] == "succeeded" and record["counts"]["scored"] == 600
    assert record["counts"]["written"] == 600 and fits == [1]  # one fit for the run
    assert sent == [[0, 1, 2]]  # the last segment to gather fitted the plan and sent the others
    plan = segments.load_plan(job_id)
    assert plan.model.kind == "btyd", plan.model.reason
    assert plan.model.inner_days == 182 and plan.population == 600
    fanned = segments_of(states)
    report = api.get("/v1/admin/segments", role="admin").body

    # every member's segment is exactly what the stored plan gives it alone, and the plan is
    # the one a single gatherer of the whole population fits (the samples hold everyone)
    whole = segments.Gatherer(as_of, seed="whole")
    for mid, st in states.items():
        whole.add(mid, st)
    assert whole.plan() == plan
    scorer = plan.scorer()
    for mid, st in states.items():
        inputs = rfm.inputs_from_state(mid, st, as_of)
        s = scorer.score(inputs, plan.predict(inputs))
        seg = fanned[mid]
        assert (seg["rfm"], seg["label"], seg["touch"], seg["ltv_12m"], seg["p_alive"],
                seg["expected_orders_12m"]) == (s.rfm, s.label, s.touch, s.ltv_12m, s.p_alive,
                                                s.expected_orders_12m), mid
    assert fanned["s0019"]["label"] == "new" and fanned["s0019"]["ltv_12m"] == 0
    assert sum(report["segments"].values()) == 600 and report["segments"] == {
        label: sum(1 for s in fanned.values() if s["label"] == label) for label in rfm.LABELS}
    assert report["touch"] == {t: sum(1 for s in fanned.values() if s["touch"] == t) for t in rfm.TOUCH}
    assert report["touch"]["high_touch"] == 30 and report["touch"]["low_touch"] == 120  # 5% and 20% of 600
    assert report["ltv_12m_total"] == sum(s["ltv_12m"] for s in fanned.values())
    assert all(0 <= s["p_alive"] <= 1 for s in fanned.values())

    # the same run in one process (CLI) scores every member alike, and writes nothing new
    again = framework.execute(framework.create("score-rfm", as_of, "test", segments=4)["job_id"])
    assert again["counts"]["unchanged"] == 600 and "written" not in again["counts"]
    assert segments_of(states) == fanned
    assert api.get("/v1/admin/segments", role="admin").body == report


def test_a_fanned_out_gather_cut_short_resumes_without_gathering_finished_segments(api, monkeypatch):
    """Segment 2's gather fails part-way (a transient store error): its worker's message is
    redelivered; the segments already gathered are not scanned again, the plan is fitted
    once, and the members end exactly as an uninterrupted run leaves them."""
    from chalicelib import clock
    from chalicelib.errors import RetryLater
    from chalicelib.jobs import framework
    from chalicelib.services import segments

    states = seed_buyers(120)
    as_of = clock.parse_instant(AS_OF)
    job_id = framework.create("score-rfm", as_of, "test", segments=3)["job_id"]
    real_add, adds = segments.Gatherer.add, []

    def flaky(self, member_id, state):
        adds.append(member_id)
        if len(adds) == 90:
            raise RetryLater("the store is busy")
        return real_add(self, member_id, state)

    monkeypatch.setattr(segments.Gatherer, "add", flaky)
    with pytest.raises(RetryLater):
        run_fanned_out(job_id, 3, monkeypatch)
    done_before = [s for s in range(3) if segments.has_stats(job_id, s)]
    assert done_before == [0, 1] and segments.load_plan(job_id) is None
    seen_first = len(adds)
    sent = run_fanned_out(job_id, 3, monkeypatch, order=[2])  # the redelivered message
    gathered_again = len(adds) - seen_first
    stats = [segments.load_stats(job_id, s) for s in range(3)]
    assert gathered_again == stats[2].seen  # only segment 2 was scanned again, from its start
    assert sum(s.seen for s in stats) == 120 and sent == [[0, 1]]
    assert framework.get_job(job_id)["status"] == "succeeded"
    resumed = segments_of(states)
    monkeypatch.setattr(segments.Gatherer, "add", real_add)
    clean = framework.execute(framework.create("score-rfm", as_of, "test", segments=3)["job_id"])
    assert clean["counts"]["unchanged"] == 120
    assert segments_of(states) == resumed


def test_the_population_scores_the_same_fanned_out(api, monkeypatch):
    """The small population of the first test (the documented fallback model) through the
    jobs-queue path: the same exact values."""
    from chalicelib import clock
    from chalicelib.jobs import framework

    population(api)
    job_id = framework.create("score-rfm", clock.parse_instant("2026-06-15T00:00:00Z"), "test", segments=4)["job_id"]
    run_fanned_out(job_id, 4, monkeypatch)
    assert framework.get_job(job_id)["counts"]["written"] == 4
    seg = {m: api.member(m)["segment"] for m in ("big", "small", "lapsed", "none")}
    assert (seg["big"]["rfm"], seg["small"]["rfm"], seg["lapsed"]["rfm"]) == ("555", "311", "133")
    assert (seg["big"]["ltv_12m"], seg["small"]["ltv_12m"], seg["lapsed"]["ltv_12m"]) == (540000, 1000, 54000)
    assert [seg[m]["touch"] for m in ("big", "lapsed", "small")] == ["high_touch", "tech_touch", "tech_touch"]
    report = api.get("/v1/admin/segments", role="admin").body
    assert report["segments"]["champions"] == 1 and report["f2_rate"] == pytest.approx(0.6667)


def test_a_plan_creator_lost_before_it_sent_the_others_sends_them_on_redelivery(api, monkeypatch):
    from chalicelib import clock
    from chalicelib.jobs import framework, scoring

    population(api)
    job_id = framework.create("score-rfm", clock.parse_instant("2026-06-15T00:00:00Z"), "test", segments=3)["job_id"]
    for s in (0, 1):
        framework.execute(job_id, only_segment=s)  # gathered; waiting for segment 2

    def lost(job, segs):
        raise RuntimeError("the invocation ended")

    monkeypatch.setattr(scoring, "dispatch", lost)
    with pytest.raises(RuntimeError):
        framework.execute(job_id, only_segment=2)  # created the plan, then died before sending
    sent = run_fanned_out(job_id, 3, monkeypatch, order=[2])  # SQS delivers segment 2 again
    assert sent == [[0, 1]] and framework.get_job(job_id)["status"] == "succeeded"
    assert api.member("big")["segment"]["label"] == "champions"
    assert api.get("/v1/admin/segments", role="admin").body["scored"] == 4


def test_a_program_without_members_scores_nothing_fanned_out(api, monkeypatch):
    from chalicelib import clock
    from chalicelib.jobs import framework
    from chalicelib.services import segments

    job_id = framework.create("score-rfm", clock.parse_instant("2026-06-15T00:00:00Z"), "test", segments=4)["job_id"]
    assert run_fanned_out(job_id, 4, monkeypatch) == [[0, 1, 2]]
    assert framework.get_job(job_id)["status"] == "succeeded"
    plan = segments.load_plan(job_id)
    assert plan.population == 0 and plan.model.kind == "fallback" and plan.high_until is None
    report = api.get("/v1/admin/segments", role="admin").body
    assert report["as_of"] == "2026-06-15T00:00:00Z" and report["scored"] == 0 and report["f2_rate"] == 0.0
