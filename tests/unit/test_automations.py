"""Lifecycle automations and outreach rules: trigger edges, periods, priority, cap, dedupe (pure)."""
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.domain.automations import OutreachLog, due_automations
from chalicelib.schemas.program import DEFAULT_AUTOMATIONS

ALL_ON = {k: dict(v) for k, v in DEFAULT_AUTOMATIONS.items()}


def at(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc)


def view(**over) -> dict:
    base = {"enrolled_at": "2025-01-01T08:00:00Z", "birthday": None, "segment": None,
            "points": {"available": 120, "expiring_soon": []},
            "tier": {"tier_id": "bronze", "next_tier": "silver", "spend_to_next_tier": 50000, "qualifying_spend": 0}}
    base.update(over)
    return base


def due(v=None, state=None, when="2026-03-01T10:00:00", config=ALL_ON, expiring=None) -> dict:
    return {d.automation: d for d in due_automations(v or view(), state or {}, at(when), config, expiring)}


def orders(count, first, last=None):
    return {"orders": {"count": count, "first_at": first, "last_at": last or first, "recent": []}}


class TestEdges:
    @pytest.mark.parametrize("enrolled,expected", [("2026-03-01T09:59:00Z", True), ("2026-02-28T23:00:00Z", False)])
    def test_welcome_on_the_enrolment_day(self, enrolled, expected):
        d = due(view(enrolled_at=enrolled))
        assert ("welcome" in d) is expected
        if expected:
            assert d["welcome"].period == "once" and d["welcome"].variables["points"] == 120

    @pytest.mark.parametrize("day,expected", [(6, False), (7, True), (8, False), (29, False), (30, True), (31, False)])
    def test_onboarding_steps_on_days_7_and_30(self, day, expected):
        when = (at("2026-01-01T10:00:00") + timedelta(days=day)).isoformat()[:19]
        d = due(view(enrolled_at="2026-01-01T08:00:00Z"), when=when)
        assert ("onboarding_step" in d) is expected
        if expected:
            assert d["onboarding_step"].period == f"day{day}"

    @pytest.mark.parametrize("days,expected", [(13, False), (14, True), (43, True), (44, False)])
    def test_f2_nudge_from_day_14_within_its_catch_up_window(self, days, expected):
        when = (at("2026-01-10T10:00:00") + timedelta(days=days)).isoformat()[:19]
        d = due(state=orders(1, "2026-01-10T10:00:00Z"), when=when)
        assert ("f2_nudge" in d) is expected
        if expected:
            assert d["f2_nudge"].period == "2026-01-10"  # once per member: the first order's date

    def test_no_f2_nudge_after_a_second_order(self):
        assert "f2_nudge" not in due(state=orders(2, "2026-01-10T10:00:00Z", "2026-01-12T10:00:00Z"),
                                     when="2026-02-01T10:00:00")

    @pytest.mark.parametrize("days,expected", [(89, False), (90, True), (119, True), (120, False)])
    def test_dormant_after_90_days_once_per_spell(self, days, expected):
        when = (at("2025-10-01T10:00:00") + timedelta(days=days)).isoformat()[:19]
        d = due(state=orders(3, "2025-01-01T00:00:00Z", "2025-10-01T10:00:00Z"), when=when)
        assert ("dormant" in d) is expected
        if expected:
            assert d["dormant"].period == "2025-10-01"

    def test_never_bought_is_not_dormant(self):
        assert "dormant" not in due(when="2026-06-01T10:00:00")

    @pytest.mark.parametrize("when,expected", [("2026-04-01T00:00:00", True), ("2026-04-01T23:59:59", True),
                                               ("2026-03-31T23:59:59", False), ("2026-04-02T00:00:00", False)])
    def test_birthday_on_the_day(self, when, expected):
        d = due(view(birthday="04-01"), when=when)
        assert ("birthday" in d) is expected
        if expected:
            assert d["birthday"].period == "2026"

    def test_leap_day_birthday_in_common_years(self):
        v = view(birthday="02-29")
        assert "birthday" in due(v, when="2027-02-28T09:00:00")
        assert "birthday" not in due(v, when="2028-02-28T09:00:00")
        assert "birthday" in due(v, when="2028-02-29T09:00:00")

    @pytest.mark.parametrize("expires,expected", [("2026-01-31T23:59:59Z", True), ("2026-02-01T00:00:00Z", False)])
    def test_points_expiring_within_30_days(self, expires, expected):
        lots = [{"points": 70, "expires_at": expires}, {"points": 30, "expires_at": "2026-06-30T23:59:59Z"}]
        d = due(when="2026-01-02T00:00:00", expiring=lots)  # the horizon is 2026-02-01T00:00:00Z
        assert ("points_expiring" in d) is expected
        if expected:
            v = d["points_expiring"].variables
            assert (v["expiring_points"], v["expiring_at"]) == (70, "2026-01-31T23:59:59Z")
            assert d["points_expiring"].period == "2026-01"

    @pytest.mark.parametrize("to_go,expected", [(5000, True), (5001, False), (1, True), (0, False)])
    def test_near_next_tier_within_10_percent_of_the_threshold(self, to_go, expected):
        tier = {"tier_id": "bronze", "next_tier": "silver", "spend_to_next_tier": to_go,
                "qualifying_spend": 50000 - to_go}
        d = due(view(tier=tier))
        assert ("near_next_tier" in d) is expected
        if expected:
            assert d["near_next_tier"].variables["spend_to_next_tier"] == to_go
            assert d["near_next_tier"].period == "silver@2026-03"

    def test_top_tier_is_never_near_a_next_one(self):
        tier = {"tier_id": "platinum", "next_tier": None, "spend_to_next_tier": None, "qualifying_spend": 900000}
        assert "near_next_tier" not in due(view(tier=tier))


class TestChurnRisk:
    def seg(self, **over):
        s = {"rfm": "255", "label": "at_risk", "touch": "low_touch", "ltv_12m": 9000, "previous_label": "loyal",
             "changed_at": "2026-03-01T00:00:00Z", "scored_at": "2026-03-01T00:00:00Z"}
        s.update(over)
        return s

    def test_a_move_into_at_risk_is_a_marketing_message(self):
        d = due(view(segment=self.seg()))["churn_risk"]
        assert not d.cs_alert and d.period == "at_risk@2026-03-01"
        assert d.variables["segment"] == "at_risk" and d.variables["previous_segment"] == "loyal"

    def test_high_touch_goes_to_customer_success(self):
        assert due(view(segment=self.seg(label="cant_lose", touch="high_touch")))["churn_risk"].cs_alert

    @pytest.mark.parametrize("over", [{"previous_label": None}, {"previous_label": "cant_lose"},
                                      {"label": "hibernating"}, {"changed_at": "2026-02-21T00:00:00Z"}])
    def test_no_move_no_message(self, over):
        assert "churn_risk" not in due(view(segment=self.seg(**over)))

    def test_still_due_a_week_after_the_move(self):
        assert "churn_risk" in due(view(segment=self.seg(changed_at="2026-02-22T00:00:00Z")))


def test_switched_off_automation_is_silent_and_priority_orders_the_rest():
    v = view(enrolled_at="2026-04-01T08:00:00Z", birthday="04-01",
             tier={"tier_id": "bronze", "next_tier": "silver", "spend_to_next_tier": 100, "qualifying_spend": 49900})
    names = [d.automation for d in due_automations(v, {}, at("2026-04-01T10:00:00"), ALL_ON)]
    assert names == ["birthday", "welcome", "near_next_tier"]
    off = {**ALL_ON, "birthday": {"enabled": False}}
    assert [d.automation for d in due_automations(v, {}, at("2026-04-01T10:00:00"), off)] == ["welcome",
                                                                                             "near_next_tier"]


class TestOutreachLog:
    def test_the_fourth_marketing_message_in_seven_days_is_capped(self):
        log, now = OutreachLog(), at("2026-03-01T10:00:00")
        for i in range(3):
            assert log.decide(f"m{i}", "marketing", now + timedelta(days=i), 3) == "eligible"
            log.record(f"m{i}", "marketing", now + timedelta(days=i))
        assert log.decide("m3", "marketing", now + timedelta(days=3), 3) == "capped"
        assert log.decide("t1", "transactional", now + timedelta(days=3), 3) == "eligible"
        assert log.decide("a1", "cs_alert", now + timedelta(days=3), 3) == "eligible"
        log.record("t1", "transactional", now + timedelta(days=3))
        assert log.marketing == [log.sent["m0"], log.sent["m1"], log.sent["m2"]]  # not counted
        assert log.decide("m3", "marketing", now + timedelta(days=7), 3) == "capped"  # m0 exactly 7 days old
        assert log.decide("m3", "marketing", now + timedelta(days=7, seconds=1), 3) == "eligible"

    def test_a_message_id_already_queued_is_a_duplicate(self):
        log, now = OutreachLog(), at("2026-03-01T10:00:00")
        log.record("x", "marketing", now)
        assert log.decide("x", "marketing", now, 3) == "duplicate"
        assert log.decide("x", "cs_alert", now, 3) == "duplicate"

    def test_pruning_keeps_400_days_of_ids_and_7_of_cap_times(self):
        now = at("2026-03-01T10:00:00")
        log = OutreachLog({"old": "2025-01-01T00:00:00Z", "new": "2026-02-01T00:00:00Z"},
                          ["2026-02-01T00:00:00Z", "2026-02-28T00:00:00Z"])
        p = log.pruned(now)
        assert p.sent == {"new": "2026-02-01T00:00:00Z"} and p.marketing == ["2026-02-28T00:00:00Z"]
