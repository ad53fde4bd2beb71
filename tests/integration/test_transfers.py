"""Transfers between members (SPEC 2.15): available points only, oldest lots first keeping
their expiry at the recipient, one transaction, idempotent per transfer_id, the
`transfers` settings and their month limit, exact under concurrency."""
from tests.factories import assert_invariant
from tests.integration.test_events import tap  # noqa: F401
from tests.integration.test_transport_faults import fast_retries  # noqa: F401

T = "/v1/members/{}/transfers"
NOW = "2026-03-10T10:00:00Z"


def send(api, from_id, transfer_id, to_id, points, role="service", now=NOW):
    return api.post(T.format(from_id), {"transfer_id": transfer_id, "to_member_id": to_id, "points": points},
                    role=role, sub=from_id if role == "member" else "svc", now=now)


def lots(member_id):
    from chalicelib.store import members

    return members.get(member_id).wallet.to_dict()["lots"]


def two_members(api, a, b, points_a=1000, now=NOW):
    api.enrol(a)
    api.enrol(b)
    if points_a:
        assert api.adjust(a, points_a, now=now).status == 201


class TestTransfer:
    def test_points_move_from_the_sender_to_the_recipient(self, api):
        two_members(api, "ta1", "tb1")
        r = send(api, "ta1", "tr-1", "tb1", 300, role="member")
        assert r.status == 201, r.body
        assert r.body == {"transfer_id": "tr-1", "from_member_id": "ta1", "to_member_id": "tb1", "points": 300,
                          "balance": {"available": 700, "pending": 0, "held": 0}}
        a, b = api.member("ta1", now=NOW)["points"], api.member("tb1", now=NOW)["points"]
        assert (a["available"], b["available"]) == (700, 300)
        # neither earned nor spent: the lifetime counters stay
        assert (a["lifetime_spent"], b["lifetime_earned"]) == (0, 0)
        out, in_ = api.ledger("ta1")[0], api.ledger("tb1")[0]
        assert (out["type"], out["points"], out["reference"], out["balance_after"]) == \
            ("transfer_out", -300, {"transfer_id": "tr-1"}, 700)
        assert (in_["type"], in_["points"], in_["reference"], in_["balance_after"]) == \
            ("transfer_in", 300, {"transfer_id": "tr-1"}, 300)
        assert_invariant("ta1")
        assert_invariant("tb1")

    def test_oldest_lots_first_and_they_keep_their_expiry_at_the_recipient(self, api):
        api.enrol("ta2")
        api.enrol("tb2")
        api.adjust("ta2", 100, now="2025-06-15T00:00:00Z")
        api.adjust("ta2", 200, now="2025-09-15T00:00:00Z")
        api.adjust("tb2", 50, now=NOW)
        assert send(api, "ta2", "tr-2", "tb2", 150).status == 201
        assert lots("ta2") == {"2025-09": 150}
        assert lots("tb2") == {"2025-06": 100, "2025-09": 50, "2026-03": 50}
        # the points earned in June 2025 expire at the end of June 2026, at the recipient as well
        soon = api.member("tb2", now="2026-06-10T00:00:00Z")["points"]["expiring_soon"]
        assert soon[0] == {"points": 100, "expires_at": "2026-06-30T23:59:59Z"}
        assert_invariant("ta2")
        assert_invariant("tb2")

    def test_replay_is_200_with_the_same_body_and_another_payload_is_409(self, api):
        two_members(api, "ta3", "tb3")
        first = send(api, "ta3", "tr-3", "tb3", 100)
        again = send(api, "ta3", "tr-3", "tb3", 100)
        assert (first.status, again.status) == (201, 200) and again.body == first.body
        assert api.member("tb3", now=NOW)["points"]["available"] == 100
        assert send(api, "ta3", "tr-3", "tb3", 101).error == "IDEMPOTENCY_MISMATCH"
        api.enrol("tc3")
        assert send(api, "ta3", "tr-3", "tc3", 100).error == "IDEMPOTENCY_MISMATCH"
        assert len(api.ledger("ta3")) == 2  # the adjustment and one transfer_out

    def test_only_available_points_move(self, api):
        two_members(api, "ta4", "tb4", points_a=100)
        assert api.post("/v1/members/ta4/point-holds", {"hold_id": "ta4-h", "points": 60}, now=NOW).status == 201
        r = send(api, "ta4", "tr-4", "tb4", 41)
        assert (r.status, r.error) == (422, "INSUFFICIENT_POINTS")
        assert send(api, "ta4", "tr-4b", "tb4", 40).status == 201
        pts = api.member("ta4", now=NOW)["points"]
        assert (pts["available"], pts["held"]) == (0, 60)
        assert_invariant("ta4")

    def test_pending_points_cannot_be_sent(self, api):
        api.settings(pending_days=14)
        api.enrol("ta5")
        api.enrol("tb5")
        assert api.accrue("ta5", 10000, order_id="ta5-o", occurred_at=NOW, now=NOW).status == 201
        r = send(api, "ta5", "tr-5", "tb5", 10)
        assert (r.status, r.error) == (422, "INSUFFICIENT_POINTS")

    def test_refusals(self, api):
        two_members(api, "ta6", "tb6")
        r = send(api, "ta6", "tr-6a", "ta6", 10)
        assert (r.status, r.error) == (400, "VALIDATION_ERROR")
        r = send(api, "ta6", "tr-6b", "nobody", 10)
        assert (r.status, r.error) == (404, "MEMBER_NOT_FOUND")
        r = send(api, "ghost", "tr-6c", "tb6", 10)
        assert (r.status, r.error) == (404, "MEMBER_NOT_FOUND")
        assert api.patch("/v1/members/tb6", {"status": "suspended"}).status == 200
        r = send(api, "ta6", "tr-6d", "tb6", 10)
        assert (r.status, r.error) == (422, "MEMBER_INACTIVE")
        api.enrol("tc6")
        assert api.patch("/v1/members/ta6", {"status": "suspended"}).status == 200
        r = send(api, "ta6", "tr-6e", "tc6", 10)
        assert (r.status, r.error) == (422, "MEMBER_INACTIVE")
        for body in ({"transfer_id": "x", "to_member_id": "tc6", "points": 0},
                     {"transfer_id": "x", "to_member_id": "tc6", "points": "10"},
                     {"transfer_id": "x", "to_member_id": "tc6"},
                     {"transfer_id": "x", "to_member_id": "tc6", "points": 5, "note": "hi"}):
            r = api.post(T.format("tc6"), body)
            assert (r.status, r.error) == (400, "VALIDATION_ERROR"), body
        assert api.ledger("tb6") == [] and api.ledger("tc6") == []

    def test_roles(self, api):
        two_members(api, "ta7", "tb7")
        r = send(api, "tb7", "tr-7", "ta7", 10, role="member", now=NOW)
        assert r.error == "INSUFFICIENT_POINTS"  # its own account: allowed, but it has nothing
        r = api.post(T.format("ta7"), {"transfer_id": "tr-7b", "to_member_id": "tb7", "points": 10}, role="member",
                     sub="tb7")
        assert (r.status, r.error) == (403, "FORBIDDEN")
        r = api.post(T.format("ta7"), {"transfer_id": "tr-7c", "to_member_id": "tb7", "points": 10}, role="admin")
        assert r.status == 201  # admin may do everything (SPEC 4.1)
        assert api.get(T.format("ta7"), role="admin").status == 200
        assert api.get(T.format("ta7"), role="member", sub="tb7").status == 403


class TestSettings:
    def test_defaults(self, api):
        assert api.get("/v1/admin/settings", role="admin").body["transfers"] == {
            "enabled": True, "min_points": 1, "max_points_per_month": None}

    def test_disabled(self, api):
        two_members(api, "ta8", "tb8")
        api.settings(transfers={"enabled": False, "min_points": 1, "max_points_per_month": None})
        r = send(api, "ta8", "tr-8", "tb8", 10)
        assert (r.status, r.error) == (422, "TRANSFERS_DISABLED")
        assert api.member("ta8")["points"]["available"] == 1000

    def test_minimum_and_month_limit(self, api):
        two_members(api, "ta9", "tb9")
        api.settings(transfers={"enabled": True, "min_points": 50, "max_points_per_month": 300})
        r = send(api, "ta9", "tr-9a", "tb9", 49)
        assert (r.status, r.error) == (422, "TRANSFER_LIMIT_REACHED")
        assert send(api, "ta9", "tr-9b", "tb9", 200).status == 201
        r = send(api, "ta9", "tr-9c", "tb9", 101)
        assert (r.status, r.error) == (422, "TRANSFER_LIMIT_REACHED")
        assert r.body["error"]["details"]["sent_this_month"] == 200
        assert send(api, "ta9", "tr-9d", "tb9", 100).status == 201  # exactly the limit
        # the limit is per sender: the recipient may send on what it got
        assert send(api, "tb9", "tr-9e", "ta9", 300).status == 201
        # a new UTC calendar month starts a new count
        r = send(api, "ta9", "tr-9f", "tb9", 300, now="2026-03-31T23:59:59Z")
        assert r.error == "TRANSFER_LIMIT_REACHED"
        assert send(api, "ta9", "tr-9g", "tb9", 300, now="2026-04-01T00:00:00Z").status == 201
        assert_invariant("ta9")
        assert_invariant("tb9")

    def test_contradictory_settings_are_400(self, api):
        current = api.get("/v1/admin/settings", role="admin").body
        for bad in ({"enabled": True, "min_points": 100, "max_points_per_month": 99},
                    {"enabled": "yes", "min_points": 1, "max_points_per_month": None},
                    {"enabled": True, "min_points": 0, "max_points_per_month": None},
                    {"enabled": True, "min_points": 1, "max_points_per_month": None, "other": 1}):
            r = api.put("/v1/admin/settings", {**current, "transfers": bad}, role="admin")
            assert (r.status, r.error) == (400, "VALIDATION_ERROR"), bad


class TestList:
    def test_transfers_in_and_out_newest_first_and_paged(self, api):
        two_members(api, "ta10", "tb10")
        api.enrol("tc10")
        send(api, "ta10", "tr-10a", "tb10", 10, now="2026-03-10T10:00:00Z")
        send(api, "tb10", "tr-10b", "ta10", 5, now="2026-03-10T11:00:00Z")
        send(api, "ta10", "tr-10c", "tc10", 20, now="2026-03-10T12:00:00Z")
        r = api.get(T.format("ta10"), role="member", sub="ta10")
        assert r.status == 200 and r.body["next_cursor"] is None
        assert [(i["transfer_id"], i["direction"], i["points"]) for i in r.body["items"]] == [
            ("tr-10c", "out", 20), ("tr-10b", "in", 5), ("tr-10a", "out", 10)]
        assert r.body["items"][1] == {"transfer_id": "tr-10b", "from_member_id": "tb10", "to_member_id": "ta10",
                                      "points": 5, "direction": "in", "created_at": "2026-03-10T11:00:00Z"}
        page = api.get(T.format("ta10") + "?limit=2")
        assert len(page.body["items"]) == 2 and page.body["next_cursor"]
        rest = api.get(T.format("ta10") + "?limit=2&cursor=" + page.body["next_cursor"])
        assert [i["transfer_id"] for i in rest.body["items"]] == ["tr-10a"]
        other = api.get(T.format("tb10") + "?cursor=" + page.body["next_cursor"])
        assert (other.status, other.error) == (400, "VALIDATION_ERROR")  # another member's cursor
        assert [i["direction"] for i in api.get(T.format("tc10")).body["items"]] == ["in"]
        assert api.get(T.format("nobody")).error == "MEMBER_NOT_FOUND"


def test_events_points_transferred_for_both_members(api, tap):
    two_members(api, "ta11", "tb11")
    tap()
    assert send(api, "ta11", "tr-11", "tb11", 25).status == 201
    got = tap()
    assert sorted((e["type"], e["member_id"], e["data"]["points"]) for e in got) == [
        ("points.transferred", "ta11", -25), ("points.transferred", "tb11", 25)]
    assert all(e["data"]["reference"] == {"transfer_id": "tr-11"} for e in got)
    assert send(api, "ta11", "tr-11", "tb11", 25).status == 200
    assert tap() == []  # a replay makes no second event


# --- concurrency, on the locked emulator of `make run` ------------------------------------

def _transfer(transfer_id, to_id, points):
    from chalicelib.schemas.transfers import TransferRequest

    return TransferRequest(transfer_id=transfer_id, to_member_id=to_id, points=points)


def _adjust(member_id, points, adjustment_id):
    from chalicelib.schemas.members import AdjustmentRequest
    from chalicelib.services import points as points_service

    points_service.adjust(member_id, AdjustmentRequest(adjustment_id=adjustment_id, points=points, reason="t"), "t")


def test_concurrent_transfers_from_one_member_never_overdraw(locked_emulator):
    from chalicelib.services import transfers
    from tests.integration.test_concurrency import enrol, run_parallel, wallet

    for m in ("cx1", "cy1", "cz1"):
        enrol(m)
    _adjust("cx1", 100, "cx1-a")
    results = run_parallel([lambda i=i: transfers.transfer("cx1", _transfer(f"cx1-t{i}", ("cy1", "cz1")[i % 2], 30),
                                                           "svc") for i in range(6)])
    ok = [r for r in results if r[0] == "ok"]
    assert len(ok) == 3, results  # 3 × 30 ≤ 100 < 4 × 30
    assert sorted(r[1] for r in results if r[0] == "err") == ["INSUFFICIENT_POINTS"] * 3
    assert wallet("cx1")["available"] == 10
    assert wallet("cy1")["available"] + wallet("cz1")["available"] == 90
    for m in ("cx1", "cy1", "cz1"):
        assert_invariant(m)


def test_the_month_limit_holds_exactly_under_concurrency(locked_emulator):
    from chalicelib.schemas.program import ProgramSettings
    from chalicelib.services import program, transfers
    from tests.integration.test_concurrency import enrol, run_parallel, wallet

    program.put_settings(ProgramSettings(transfers={"enabled": True, "min_points": 1, "max_points_per_month": 100}),
                         "admin:test")
    for m in ("cx2", "cy2"):
        enrol(m)
    _adjust("cx2", 1000, "cx2-a")
    results = run_parallel([lambda i=i: transfers.transfer("cx2", _transfer(f"cx2-t{i}", "cy2", 40), "svc")
                            for i in range(5)])
    assert sorted(r[1] if r[0] == "err" else "ok" for r in results) == ["TRANSFER_LIMIT_REACHED"] * 3 + ["ok"] * 2
    assert (wallet("cx2")["available"], wallet("cy2")["available"]) == (920, 80)
    assert_invariant("cx2")
    assert_invariant("cy2")


def test_a_transfer_racing_a_merge_stays_consistent(locked_emulator):
    from chalicelib.schemas.transfers import MergeRequest
    from chalicelib.services import merge, transfers
    from chalicelib.store import members
    from tests.integration.test_concurrency import enrol, run_parallel, wallet

    for round_ in range(3):
        src, surv, friend = f"cs3-{round_}", f"cv3-{round_}", f"cf3-{round_}"
        for m in (src, surv, friend):
            enrol(m)
        _adjust(src, 100, f"{src}-a")
        results = run_parallel([
            lambda: transfers.transfer(src, _transfer(f"{src}-t", friend, 60), "svc"),
            lambda: merge.merge(surv, MergeRequest(merge_id=f"{src}-m", source_member_id=src), "admin:t")])
        transfer_result, merge_result = results
        assert merge_result[0] == "ok", results
        assert transfer_result[0] == "ok" or transfer_result[1] == "MEMBER_INACTIVE", results
        sent = 60 if transfer_result[0] == "ok" else 0
        # nothing lost, nothing made: the 100 points are at the survivor and the friend
        assert (wallet(surv)["available"], wallet(friend)["available"], wallet(src)["available"]) == \
            (100 - sent, sent, 0)
        assert members.get(src).status == "closed"
        for m in (src, surv, friend):
            assert_invariant(m)


def test_a_merge_racing_an_accrual_on_the_source_loses_nothing(locked_emulator):
    from chalicelib.schemas.transfers import MergeRequest
    from chalicelib.services import merge, points
    from tests.integration.test_concurrency import accrual, enrol, run_parallel, wallet

    for round_ in range(3):
        src, surv = f"cs4-{round_}", f"cv4-{round_}"
        enrol(src)
        enrol(surv)
        results = run_parallel([
            lambda: points.accrue(src, accrual(f"{src}-o", 10000), "svc"),
            lambda: merge.merge(surv, MergeRequest(merge_id=f"{src}-m", source_member_id=src), "admin:t")])
        accrued, merged = results
        assert merged[0] == "ok", results
        assert accrued[0] == "ok" or accrued[1] == "MEMBER_INACTIVE", results
        earned = 100 if accrued[0] == "ok" else 0
        assert (wallet(surv)["available"], wallet(src)["available"]) == (earned, 0)
        assert_invariant(src)
        assert_invariant(surv)


def test_a_lost_answer_after_the_commit_moves_the_points_once(api, fast_retries):
    from tests.integration.test_transport_faults import LoseAnswer, transport

    two_members(api, "ta12", "tb12", points_a=500)
    fault = LoseAnswer()
    with transport(fault):
        first = send(api, "ta12", "tr-12", "tb12", 200)
    assert fault.lost == 1 and first.status == 201, first.body
    assert send(api, "ta12", "tr-12", "tb12", 200).status == 200
    assert (api.member("ta12")["points"]["available"], api.member("tb12")["points"]["available"]) == (300, 200)
    assert [e["type"] for e in api.ledger("tb12")] == ["transfer_in"]
    assert [i["transfer_id"] for i in api.get(T.format("tb12")).body["items"]] == ["tr-12"]
    assert_invariant("ta12")
    assert_invariant("tb12")
