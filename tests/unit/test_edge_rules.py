"""Edge rules without AWS: signed list cursors, bounded instants, keys and path parameters."""
from __future__ import annotations

import base64
import json

import pytest

from chalicelib.api import http
from chalicelib.errors import ValidationFailed


def in_list(scope: str, fn, *args):
    token = http._list_scope.set(scope)
    try:
        return fn(*args)
    finally:
        http._list_scope.reset(token)


KEY = {"pk": {"S": "audit"}, "sk": {"S": "2026-01-01T00:00:00.000000Z#au_1"}}


class TestCursors:
    def test_a_cursor_round_trips_on_its_own_list(self):
        cursor = in_list("GET /v1/admin/audit {}", http.encode_cursor, KEY)
        assert in_list("GET /v1/admin/audit {}", http.decode_cursor, {"cursor": cursor}) == KEY

    @pytest.mark.parametrize("other", ["GET /v1/rewards {}", 'GET /v1/members/{member_id}/ledger {"member_id": "a"}', ""])
    def test_another_lists_cursor_is_refused(self, other):
        cursor = in_list("GET /v1/admin/audit {}", http.encode_cursor, KEY)
        with pytest.raises(ValidationFailed):
            in_list(other, http.decode_cursor, {"cursor": cursor})

    def test_a_payload_changed_under_its_signature_is_refused(self):
        cursor = in_list("S", http.encode_cursor, {"offset": 20})
        _, mac = cursor.split(".")
        forged = base64.urlsafe_b64encode(json.dumps({"offset": 10**9}).encode()).decode().rstrip("=")
        with pytest.raises(ValidationFailed):
            in_list("S", http.decode_cursor, {"cursor": f"{forged}.{mac}"})

    def test_an_unsigned_cursor_is_refused(self):
        raw = base64.urlsafe_b64encode(json.dumps(KEY).encode()).decode().rstrip("=")
        with pytest.raises(ValidationFailed) as e:
            http.decode_cursor({"cursor": raw})
        assert e.value.details == {"fields": [{"field": "cursor", "message": "invalid"}]}
        with pytest.raises(ValidationFailed):
            http.decode_cursor({"cursor": ""})


@pytest.mark.parametrize("value,ok", [("2026-01-01", True), ("2000-01-01T00:00:00Z", True),
                                      ("2099-12-31T23:59:59Z", True), ("2100-01-01", False),
                                      ("1999-12-31T23:59:59Z", False), ("9999-12-31T23:59:59Z", False),
                                      ("0001-01-01", False), ("2026-02-30", False), ("x" * 100, False),
                                      ("2026-01-01T00:00:00+14:00", True)])
def test_instants_of_the_clock_lie_in_2000_to_2099(value, ok):
    if ok:
        assert http.NOW_EARLIEST <= http.bounded_instant(value, "as_of") <= http.NOW_LATEST
    else:
        with pytest.raises(ValidationFailed):
            http.bounded_instant(value, "as_of")


@pytest.mark.parametrize("key,ok", [("a", True), ("k" * 128, True), ("7d1c0c5e-!~", True), ("", False),
                                    ("k" * 129, False), ("a b", False), ("tab\t", False), ("\u00e9", False)])
def test_idempotency_keys_are_1_to_128_visible_ascii(key, ok):
    if ok:
        assert http.check_idempotency_key({"idempotency-key": key}) == key
    else:
        with pytest.raises(ValidationFailed):
            http.check_idempotency_key({"idempotency-key": key})
    assert http.check_idempotency_key({}) is None


@pytest.mark.parametrize("params,ok", [({"member_id": "m-1001"}, True), ({"member_id": "a@b.c:d_e-f"}, True),
                                       ({"member_id": ""}, False), ({"member_id": "m" * 65}, False),
                                       ({"member_id": "a#b"}, False), ({"reward_id": "r" * 128}, True),
                                       ({"reward_id": "r" * 129}, False), ({"code": "ABCD-EFGH"}, True),
                                       ({"job_id": "a/b"}, False), ({"job_id": "%00"}, False)])
def test_path_parameters_are_bounded_plain_ids(params, ok):
    if ok:
        http.check_path_params(params)
    else:
        with pytest.raises(ValidationFailed) as e:
            http.check_path_params(params)
        assert e.value.details["fields"][0]["field"] == "path." + next(iter(params))


def test_dates_in_bodies_are_bounded():
    from pydantic import ValidationError

    from chalicelib import clock
    from chalicelib.schemas.members import AccrualRequest

    with clock.pinned(clock.parse_instant("2026-06-01T12:00:00Z")):
        AccrualRequest(order_id="o", total_amount=1, currency="JPY", occurred_at="2026-06-01T12:05:00Z")
        for bad in ("2026-06-01T12:05:01Z", "1999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"):
            with pytest.raises(ValidationError):
                AccrualRequest(order_id="o", total_amount=1, currency="JPY", occurred_at=bad)
