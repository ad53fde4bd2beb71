"""Pure reward rules (chalicelib/domain/rewards.py) and voucher codes: no AWS."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from chalicelib.domain import codes
from chalicelib.domain import rewards as r
from chalicelib.services.rewards import VOUCHER_CODE_LENGTH

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
TIERS = ["bronze", "silver", "gold", "platinum"]


@pytest.mark.parametrize("data,expected", [
    ({}, True),
    ({"active": False}, False),
    ({"starts_at": "2026-03-01T12:00:00Z"}, True),
    ({"starts_at": "2026-03-01T12:00:01Z"}, False),
    ({"ends_at": "2026-03-01T12:00:00Z"}, False),
    ({"ends_at": "2026-03-01T12:00:01Z"}, True),
    ({"starts_at": None, "ends_at": None, "active": True}, True),
    ({"starts_at": "2026-01-01T00:00:00Z", "ends_at": "2026-02-01T00:00:00Z"}, False),
])
def test_available_window(data, expected):
    assert r.available(data, NOW) is expected


@pytest.mark.parametrize("member,min_tier,expected", [
    ("bronze", None, True),
    ("bronze", "silver", False),
    ("silver", "silver", True),
    ("platinum", "gold", True),
    ("gold", "platinum", False),
    (None, "bronze", True),       # no tier yet: the lowest
    (None, "silver", False),
    ("retired", "silver", False),  # a tier that left the list counts as the lowest
    ("platinum", "diamond", False),  # an unknown min_tier reaches nobody (fail closed)
])
def test_tier_reaches(member, min_tier, expected):
    assert r.tier_reaches(member, min_tier, TIERS) is expected


@pytest.mark.parametrize("status,expires,expected", [
    ("issued", "2026-03-01T12:00:01Z", "issued"),
    ("issued", "2026-03-01T12:00:00Z", "expired"),
    ("used", "2026-01-01T00:00:00Z", "used"),
    ("cancelled", "2026-01-01T00:00:00Z", "cancelled"),
    ("expired", "2027-01-01T00:00:00Z", "expired"),
])
def test_effective_status(status, expires, expected):
    assert r.effective_status(status, expires, NOW) == expected


def test_voucher_codes_are_long_crockford_and_normalize_back():
    alphabet = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
    seen = {codes.random_code(VOUCHER_CODE_LENGTH) for _ in range(2000)}
    assert len(seen) == 2000
    assert VOUCHER_CODE_LENGTH * 5 >= 60
    for code in list(seen)[:50]:
        assert len(code) == VOUCHER_CODE_LENGTH and set(code) <= alphabet
        messy = "-".join([code[:4], code[4:8], code[8:]]).lower()
        assert codes.normalize(messy) == code
