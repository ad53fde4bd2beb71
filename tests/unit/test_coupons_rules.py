"""Pure coupon rules (chalicelib/domain/coupons.py): no AWS."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import codes as k
from chalicelib.domain import coupons as c

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
T1 = datetime(2026, 1, 31, 23, 59, 59, tzinfo=timezone.utc)
MID = datetime(2026, 1, 15, tzinfo=timezone.utc)


def rules(**over) -> c.Rules:
    base = dict(discount_type="percent", discount_value=10, min_order_amount=0, categories=None, starts_at=T0,
                ends_at=T1, status="active", max_per_member=1)
    base.update(over)
    return c.Rules(**base)


LINES = [c.Line("coffee", 999), c.Line("tea", 1000), c.Line("shipping", 350)]


# --- discounts -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,value,total,lines,cats,expected", [
    ("percent", 10, 10000, [], None, 1000),
    ("percent", 15, 999, [], None, 149),  # floor(149.85)
    ("percent", 33, 1, [], None, 0),
    ("percent", 100, 2349, [], None, 2349),
    ("percent", 15, 2349, LINES, ["coffee"], 149),  # only the coffee line
    ("percent", 50, 2349, LINES, ["coffee", "tea"], 999),  # floor(1999 / 2)
    ("percent", 50, 500, LINES, ["coffee", "tea"], 250),  # eligible capped at the total
    ("amount", 700, 5000, [], None, 700),
    ("amount", 700, 500, [], None, 500),  # capped at the total
    ("amount", 700, 5000, LINES, ["coffee"], 700),
    ("amount", 2000, 5000, LINES, ["coffee"], 999),  # capped at the eligible lines
    ("free_shipping", 0, 2349, LINES, None, 350),
    ("free_shipping", 0, 2000, LINES[:2], None, 0),  # no shipping line: nothing off
    ("free_shipping", 0, 100, LINES, None, 100),  # never above the total
    ("free_shipping", 0, 2349, LINES, ["coffee"], 350),
])
def test_discount_for(kind, value, total, lines, cats, expected):
    assert c.discount_for(kind, value, total, lines, cats) == expected


def test_no_eligible_line_is_none():
    assert c.discount_for("percent", 10, 1000, [c.Line("tea", 1000)], ["coffee"]) is None
    assert c.discount_for("percent", 10, 1000, [], ["coffee"]) is None
    with pytest.raises(ValueError):
        c.discount_for("bogus", 1, 1, [], None)


@given(kind=st.sampled_from(["percent", "amount", "free_shipping"]), value=st.integers(1, 100_000),
       total=st.integers(0, 10**9),
       lines=st.lists(st.tuples(st.sampled_from(["coffee", "tea", "shipping", None]), st.integers(0, 10**7)),
                      max_size=8),
       cats=st.one_of(st.none(), st.lists(st.sampled_from(["coffee", "tea", "shipping"]), min_size=1)))
def test_discount_is_an_integer_within_the_total(kind, value, total, lines, cats):
    if kind == "percent":
        value = value % 100 + 1
    got = c.discount_for(kind, value, total, [c.Line(k, a) for k, a in lines], cats)
    if got is not None:
        assert isinstance(got, int) and 0 <= got <= total


# --- audience and verdicts -----------------------------------------------------------------------

def test_audience_semantics():
    """A campaign's audience is domain/audience.py's rule with "no audience: everyone"."""
    A = c.Audience
    m = c.MemberFacts("m1", "gold", "champions")
    assert c.in_audience(rules(), m)
    assert c.in_audience(rules(audience=A(tiers={"gold"})), m)
    assert not c.in_audience(rules(audience=A(tiers={"silver"})), m)
    # tiers and segments must both match
    assert not c.in_audience(rules(audience=A(tiers={"gold"}, segments={"lost"})), m)
    assert c.in_audience(rules(audience=A(tiers={"gold"}, segments={"champions"})), m)
    # member_ids always let their members in; alone they exclude everyone else
    assert c.in_audience(rules(audience=A(tiers={"silver"}, member_ids={"m1"})), m)
    assert not c.in_audience(rules(audience=A(member_ids={"m2"})), m)
    assert not c.in_audience(rules(audience=A(segments={"champions"})), c.MemberFacts("m3", "gold", None))
    # an inactive member is in no audience, not even the empty one
    assert not c.in_audience(rules(), c.MemberFacts("m1", "gold", "champions", active=False))


def verdict(r=None, **kw):
    args = dict(now=MID, member=c.MemberFacts("m1"), total=10000, lines=[])
    args.update(kw)
    return c.evaluate(r or rules(), **args)


def test_evaluate_each_reason():
    assert verdict().reason is None and verdict().discount_amount == 1000
    assert verdict(rules(status="paused")).reason == c.INACTIVE
    assert verdict(rules(status="draft")).reason == c.INACTIVE
    assert verdict(rules(status="ended")).reason == c.INACTIVE
    assert verdict(now=datetime(2025, 12, 31, 23, 59, 59, tzinfo=timezone.utc)).reason == c.NOT_STARTED
    assert verdict(now=T0).valid and verdict(now=T1).valid  # both ends inclusive
    assert verdict(now=datetime(2026, 2, 1, tzinfo=timezone.utc)).reason == c.EXPIRED
    assert verdict(code=c.CodeFacts(owner="m1", redeemed=True)).reason == c.ALREADY_USED
    assert verdict(code=c.CodeFacts(owner="m2")).reason == c.NOT_ELIGIBLE
    assert verdict(code=c.CodeFacts(owner="m1")).valid
    assert verdict(rules(audience=c.Audience(member_ids={"m2"}))).reason == c.NOT_ELIGIBLE
    assert verdict(member_uses=1).reason == c.MEMBER_LIMIT
    assert verdict(rules(max_per_member=2), member_uses=1).valid
    assert verdict(remaining=0).reason == c.LIMIT
    assert verdict(remaining=1).valid
    assert verdict(rules(min_order_amount=10001)).reason == c.MIN_ORDER
    assert verdict(rules(min_order_amount=10000)).valid
    assert verdict(rules(categories=frozenset({"coffee"}))).reason == c.NOT_ELIGIBLE


def test_evaluate_order_of_reasons():
    """The status is judged before the dates, the dates before the code, the order before the
    limits, and the total limit before the member's (the order redeem's transaction reports
    them in, so validate and redeem agree)."""
    r = rules(status="paused", starts_at=datetime(2027, 1, 1, tzinfo=timezone.utc),
              ends_at=datetime(2027, 2, 1, tzinfo=timezone.utc))
    assert verdict(r).reason == c.INACTIVE
    assert verdict(rules(min_order_amount=10**9), remaining=0, member_uses=99).reason == c.MIN_ORDER
    assert verdict(remaining=0, member_uses=99).reason == c.LIMIT
    assert verdict(code=c.CodeFacts(owner="m2", redeemed=True)).reason == c.ALREADY_USED


# --- sharded limits -----------------------------------------------------------------------------

def test_shard_caps_sum_to_the_limit():
    assert c.shard_caps(None, 4) == [None] * 4
    assert c.shard_caps(10, 4) == [3, 3, 2, 2]
    assert c.shard_caps(3, 16) == [1, 1, 1] + [0] * 13
    assert sum(c.shard_caps(1_000_003, 16)) == 1_000_003


@given(limit=st.integers(1, 10**6), used=st.lists(st.integers(0, 1000), min_size=1, max_size=32))
def test_redistribute_never_lets_uses_exceed_the_limit(limit, used):
    caps = c.redistribute(limit, used)
    assert all(cap >= u for cap, u in zip(caps, used))
    assert sum(caps) == max(limit, sum(used))
    assert c.remaining(caps, used) == max(limit - sum(used), 0)


def test_remaining_unlimited():
    assert c.remaining([None, None], [5, 5]) is None


# --- stats and wallet ------------------------------------------------------------------------------

def test_stats():
    assert c.stats("unique", 100, 40, 10) == {"codes": 100, "issued": 40, "redeemed": 10, "redemption_rate": 0.25,
                                                "discount_total": 0}
    assert c.stats("unique", 100, 0, 0)["redemption_rate"] == 0.0
    assert c.stats("unique", 3, 3, 1)["redemption_rate"] == 0.3333
    assert c.stats("shared", 1, 0, 7)["redemption_rate"] == 1.0
    assert c.stats("shared", 1, 5, 0)["redemption_rate"] == 0.0


def test_wallet_status():
    r = rules(max_per_member=2)
    assert c.wallet_status("unique", r, MID, 0, False) == "issued"
    assert c.wallet_status("unique", r, MID, 1, True) == "redeemed"
    assert c.wallet_status("shared", r, MID, 1, False) == "issued"
    assert c.wallet_status("shared", r, MID, 2, False) == "redeemed"
    assert c.wallet_status("unique", r, datetime(2026, 2, 1, tzinfo=timezone.utc), 0, False) == "expired"
    assert c.wallet_status("unique", rules(status="ended"), MID, 0, False) == "expired"
    assert c.wallet_status("unique", rules(status="ended"), MID, 1, True) == "redeemed"


# --- codes ---------------------------------------------------------------------------------------------

def test_random_codes_shape_and_uniqueness():
    codes = k.random_codes(20_000)
    assert len(codes) == 20_000 and len(set(codes)) == 20_000
    assert all(len(x) == 12 and set(x) <= set(k.CROCKFORD) for x in codes)
    assert k.bits(12) == 60
    short = k.random_codes(7, length=5, prefix="XMAS")
    assert len(short) == 7 and all(x.startswith("XMAS") and len(x) == 9 for x in short)
    assert k.random_codes(0) == []


def test_random_codes_use_the_whole_alphabet_evenly():
    chars = "".join(k.random_codes(20_000))
    counts = {ch: chars.count(ch) for ch in k.CROCKFORD}
    expected = len(chars) / 32
    assert set(counts) == set(k.CROCKFORD)
    assert all(abs(n - expected) < expected * 0.1 for n in counts.values())
    assert not set(chars) & set("ILOU")
