"""The one audience rule (chalicelib/domain/audience.py): coupon campaigns, the issue call's
selection and broadcasts. Pure: no AWS."""
from __future__ import annotations

from typing import Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.audience import EVERYONE, NOBODY, Audience, MemberFacts, in_audience
from chalicelib.domain.member import Member

GOLD_CHAMP = MemberFacts("m1", "gold", "champions", "high_touch")


@pytest.mark.parametrize("aud,expected", [
    (Audience(), {EVERYONE: True, NOBODY: False}),  # the one difference, named by the caller
    (Audience(member_ids={"m1"}), {EVERYONE: True, NOBODY: True}),
    (Audience(member_ids={"m2"}), {EVERYONE: False, NOBODY: False}),  # ids alone: exactly them
    (Audience(tiers={"gold"}), {EVERYONE: True, NOBODY: True}),
    (Audience(tiers={"silver"}), {EVERYONE: False, NOBODY: False}),
    (Audience(tiers={"gold"}, segments={"lost"}), {EVERYONE: False, NOBODY: False}),  # every filter must match
    (Audience(tiers={"gold"}, segments={"champions"}, touch={"high_touch"}), {EVERYONE: True, NOBODY: True}),
    (Audience(touch={"tech_touch"}), {EVERYONE: False, NOBODY: False}),
    (Audience(member_ids={"m1"}, tiers={"silver"}), {EVERYONE: True, NOBODY: True}),  # listed ids always in
    (Audience(member_ids={"m2"}, tiers={"gold"}), {EVERYONE: True, NOBODY: True}),  # ... and matches too
])
def test_the_rule(aud, expected):
    for when_empty, want in expected.items():
        assert in_audience(aud, GOLD_CHAMP, when_empty=when_empty) is want, when_empty


def test_inactive_members_are_in_no_audience():
    closed = MemberFacts("m1", "gold", "champions", "high_touch", active=False)
    for aud in (Audience(), Audience(member_ids={"m1"}), Audience(tiers={"gold"})):
        for when_empty in (EVERYONE, NOBODY):
            assert not in_audience(aud, closed, when_empty=when_empty)


def test_an_unscored_member_matches_no_segment_or_touch_filter():
    unscored = MemberFacts("m3", "gold")
    assert in_audience(Audience(tiers={"gold"}), unscored, when_empty=NOBODY)
    assert not in_audience(Audience(segments={"champions"}), unscored, when_empty=EVERYONE)
    assert not in_audience(Audience(touch={"high_touch"}), unscored, when_empty=EVERYONE)


def test_when_empty_must_be_named():
    with pytest.raises(ValueError):
        in_audience(Audience(), GOLD_CHAMP, when_empty="all")


def test_audience_of_a_stored_or_requested_dict():
    assert Audience.of(None) == Audience() and Audience.of({}).empty
    got = Audience.of({"tiers": ["gold"], "segments": None, "member_ids": ["m1", "m1"], "touch": []})
    assert got == Audience(member_ids=frozenset({"m1"}), tiers=frozenset({"gold"}))
    assert got.has_filters and not got.empty
    assert not Audience.of({"member_ids": ["m1"]}).has_filters
    assert isinstance(Audience(tiers=["gold"]).tiers, frozenset)


def test_facts_of_a_member_aggregate():
    m = Member.from_state("m7", 3, "active", {}, {"tier": {"tier_id": "silver"},
                                                  "segment": {"label": "loyal", "touch": "low_touch"}})
    assert MemberFacts.of(m) == MemberFacts("m7", "silver", "loyal", "low_touch", True)
    never_scored = Member.from_state("m8", 0, "suspended", {}, {"tier": {"tier_id": "base"}})
    assert MemberFacts.of(never_scored) == MemberFacts("m8", "base", None, None, False)


# --- the evaluators this one replaced: same answers ---------------------------------------------

def _old_coupon_rule(tiers, segments, ids, m: MemberFacts) -> bool:
    """domain/coupons.py::matches_audience as it was (campaign rules; status checked elsewhere)."""
    if not (tiers or segments or ids):
        return True
    if ids and m.member_id in ids:
        return True
    if not (tiers or segments):
        return False
    if tiers and m.tier_id not in tiers:
        return False
    if segments and m.segment not in segments:
        return False
    return True


def _old_broadcast_rule(aud: dict, m: MemberFacts) -> bool:
    """services/marketing.py::in_audience as it was (on the row's state)."""
    if not m.active:
        return False
    if aud.get("member_ids") and m.member_id in aud["member_ids"]:
        return True
    checks = []
    if aud.get("tiers"):
        checks.append(m.tier_id in aud["tiers"])
    if aud.get("segments"):
        checks.append(m.segment in aud["segments"])
    if aud.get("touch"):
        checks.append(m.touch in aud["touch"])
    return bool(checks) and all(checks)


def _subset(values):
    return st.one_of(st.none(), st.lists(st.sampled_from(values), max_size=3))


audiences = st.fixed_dictionaries({"member_ids": _subset(["m1", "m2"]), "tiers": _subset(["base", "gold"]),
                                   "segments": _subset(["champions", "lost"]),
                                   "touch": _subset(["high_touch", "low_touch"])})
members = st.builds(MemberFacts, st.sampled_from(["m1", "m2", "m3"]), st.sampled_from([None, "base", "gold"]),
                    st.sampled_from([None, "champions", "lost"]), st.sampled_from([None, "high_touch", "low_touch"]),
                    st.booleans())


@given(aud=audiences, m=members)
def test_same_answers_as_the_broadcast_evaluator(aud, m):
    assert in_audience(Audience.of(aud), m, when_empty=NOBODY) == _old_broadcast_rule(aud, m)


@given(aud=audiences, m=members)
def test_same_answers_as_the_coupon_evaluator(aud, m):
    """Coupon audiences have no `touch`; the old rule left status to its callers (they refuse an
    inactive member before asking)."""
    aud = {**aud, "touch": None}
    old = _old_coupon_rule(aud["tiers"], aud["segments"], aud["member_ids"], m)
    assert in_audience(Audience.of(aud), m, when_empty=EVERYONE) == (old and m.active)



def test_each_caller_names_its_empty_audience():
    """A coupon campaign without an audience is for everyone; a broadcast's audience is a selection."""
    from datetime import datetime, timezone

    from chalicelib.domain import coupons
    from chalicelib.services import marketing

    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rules = coupons.Rules("percent", 10, 0, None, t, t, "active", 1)
    member = Member.from_state("m1", 1, "active", {}, {"tier": {"tier_id": "gold"}})
    assert coupons.in_audience(rules, MemberFacts.of(member))
    assert not marketing.in_audience(member, {})
    assert marketing.in_audience(member, {"tiers": ["gold"]})
    assert not marketing.in_audience(Member.from_state("m1", 1, "closed", {}, {}), {"member_ids": ["m1"]})
