"""Month arithmetic never raises on a date the API accepts, nor past datetime's range."""
from datetime import datetime, timezone

import pytest
from hypothesis import given, strategies as st

from chalicelib.domain.months import add_months, month_end, month_of, month_start


def test_ordinary_arithmetic():
    assert add_months("2026-11", 3) == "2027-02"
    assert add_months("2026-01", -1) == "2025-12"
    assert month_start("2026-02") == datetime(2026, 2, 1, tzinfo=timezone.utc)
    assert month_end("2024-02") == datetime(2024, 2, 29, 23, 59, 59, tzinfo=timezone.utc)


@pytest.mark.parametrize("month,n,expected", [("9999-12", 1, "9999-12"), ("9999-06", 120, "9999-12"),
                                              ("0001-01", -1, "0001-01"), ("2999-12", 120, "3009-12")])
def test_results_are_clamped_to_what_datetime_holds(month, n, expected):
    assert add_months(month, n) == expected
    month_end(add_months(month, n))


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2999, 12, 31)),
       st.integers(min_value=-10_000, max_value=10_000))
def test_never_raises_on_an_accepted_date(dt, n):
    month = add_months(month_of(dt), n)
    assert month_start(month) <= month_end(month)
