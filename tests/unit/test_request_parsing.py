"""Request-side rules without AWS: instants are kept in UTC, list cursors are checked, limits bounded."""
import base64
import json
from datetime import datetime, timezone

import pytest

from chalicelib.api.http import decode_cursor, encode_cursor, page_limit
from chalicelib.errors import ValidationFailed
from chalicelib.schemas.members import AccrualRequest, ActivityRequest


def raw_cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


LEDGER = {"member_id": ("S", "alice"), "seq": ("N", None)}


class TestInstants:
    def test_an_offset_is_converted_to_utc_so_months_and_days_are_utc(self):
        body = AccrualRequest(order_id="o", total_amount=1, currency="JPY", occurred_at="2026-01-31T23:30:00-05:00")
        assert body.occurred_at == datetime(2026, 2, 1, 4, 30, tzinfo=timezone.utc)
        assert body.occurred_at.utcoffset().total_seconds() == 0
        assert body.model_dump(mode="json")["occurred_at"] == "2026-02-01T04:30:00Z"
        act = ActivityRequest(activity_id="a", type="review", occurred_at="2026-03-01T08:00:00+09:00")
        assert act.occurred_at.date().isoformat() == "2026-02-28"

    def test_the_same_instant_hashes_the_same_whatever_the_offset(self):
        a = AccrualRequest(order_id="o", total_amount=1, currency="JPY", occurred_at="2026-02-01T04:30:00Z")
        b = AccrualRequest(order_id="o", total_amount=1, currency="JPY", occurred_at="2026-02-01T13:30:00+09:00")
        assert a.model_dump(mode="json") == b.model_dump(mode="json")

    def test_a_naive_timestamp_is_refused(self):
        with pytest.raises(ValueError):
            AccrualRequest(order_id="o", total_amount=1, currency="JPY", occurred_at="2026-02-01T04:30:00")


class TestCursors:
    def test_round_trip(self):
        key = {"member_id": {"S": "alice"}, "seq": {"N": "12"}}
        assert decode_cursor({"cursor": encode_cursor(key)}, keys=LEDGER) == key
        assert decode_cursor({}, keys=LEDGER) is None
        assert encode_cursor(None) is None

    @pytest.mark.parametrize("value", [
        {"a": 1},
        {"member_id": {"S": "bob"}, "seq": {"N": "3"}},          # another member's partition
        {"member_id": {"S": "alice"}},                           # missing the sort key
        {"member_id": {"S": "alice"}, "seq": {"N": "x"}},
        {"member_id": {"S": "alice"}, "seq": {"S": "3"}},
        {"member_id": "alice", "seq": {"N": "3"}},
        {"member_id": {"S": "alice"}, "seq": {"N": "3"}, "extra": {"S": "x"}},
        [1, 2],
    ])
    def test_a_tampered_cursor_is_a_validation_error(self, value):
        with pytest.raises(ValidationFailed) as e:
            decode_cursor({"cursor": raw_cursor(value)}, keys=LEDGER)
        assert e.value.details == {"fields": [{"field": "cursor", "message": "invalid"}]}

    @pytest.mark.parametrize("raw", ["!!!", "bm90IGpzb24", "//8"])
    def test_garbage_is_a_validation_error(self, raw):
        with pytest.raises(ValidationFailed):
            decode_cursor({"cursor": raw})


@pytest.mark.parametrize("raw,ok", [("1", True), ("20", True), ("100", True), ("0", False), ("101", False),
                                    ("-1", False), ("abc", False), ("", False), ("1e2", False)])
def test_page_limit_is_1_to_100(raw, ok):
    if ok:
        assert page_limit({"limit": raw}) == int(raw)
    else:
        with pytest.raises(ValidationFailed):
            page_limit({"limit": raw})
    assert page_limit({}) == 20


class TestModelReferences:
    def test_import_app_leaves_the_route_schemas_to_the_first_call(self):
        """Cold start (SPEC 3): the routes name their models, the schema modules load later."""
        import os
        import subprocess
        import sys

        code = ("import sys, app; print(','.join(sorted(m for m in sys.modules "
                "if m.startswith('chalicelib.schemas.'))))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "LOYALTY_STAGE": "local"}, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
        assert out.stdout.strip() == "chalicelib.schemas.patterns"  # id patterns only: no pydantic model

    def test_every_route_model_reference_resolves_to_a_pydantic_model(self):
        from pydantic import BaseModel

        import app  # noqa: F401 - registers the routes
        from chalicelib.api.http import ENDPOINTS, model

        refs = [(e.path, r) for e in ENDPOINTS for r in (e.body_ref, e.response_ref) if r is not None]
        assert len(refs) > 60
        for path, ref in refs:
            resolved = model(ref)
            assert isinstance(resolved, type) and issubclass(resolved, BaseModel), (path, ref)
