"""The data-access layer's own contracts: raw items equal PynamoDB's, and a cancelled
transaction reports each op's reason at that op's index."""
from __future__ import annotations

import pytest

PROFILE = {"name": "Sakura Tanaka", "email": "s@example.com", "consents": {"email": True}, "birthday": "04-12"}
STATE = {"wallet": {"lots": [{"month": "2026-01", "points": 120}]}, "tier": {"tier_id": "silver"}, "seq": 7,
         "orders": {"count": 2, "recent": ["2026-01-03T10:00:00Z", "2026-01-09T10:00:00Z"]}}


def _cases():
    from chalicelib.store.marketing import OutreachRecord, PendingMessagesRecord
    from chalicelib.store.models import LedgerRecord, MemberRecord, OrderRecord

    return [
        (MemberRecord, dict(member_id="m-1", version=4, status="suspended", profile=PROFILE, state=STATE,
                            segment_label="champions")),
        (MemberRecord, dict(member_id="m-2", profile=PROFILE, state=STATE)),  # defaults, no segment
        (LedgerRecord, dict(member_id="m-1", seq=7, entry={"entry_id": "le_m-1_7", "points": -30, "note": None})),
        (OrderRecord, dict(order_id="o-1", member_id="m-1", request_hash="abc", data={"points": 12},
                           response={"order_id": "o-1", "breakdown": [{"rule": "base", "points": 12}]})),
        (OutreachRecord, dict(member_id="m-1", version=3, sent={"id-1": "2026-01-02T03:04:05Z"},
                              marketing=["2026-01-02T03:04:05Z"], claim="c0ffee")),
        (OutreachRecord, dict(member_id="m-2", version=1, sent={}, marketing=[])),  # no claim token
        (PendingMessagesRecord, dict(batch_id="pm_1", created_at="2026-01-02T03:04:05Z",
                                     messages=[{"message_id": "id-1", "variables": {"name": "さくら"}}])),
    ]


def test_raw_items_are_the_items_pynamodb_writes_and_reads(aws):
    for model, values in _cases():
        item = model.to_item(**values)
        assert item == model(**values).serialize(), model.__name__
        back = model.from_item(item)
        rec = model.from_raw_data(item)
        assert back == {name: getattr(rec, name) for name in model.get_attributes()}, model.__name__


def test_raw_codec_refuses_attribute_types_it_does_not_know(aws):
    from pynamodb.attributes import BooleanAttribute, UnicodeAttribute

    from chalicelib.store.base import Record

    class Flagged(Record):
        class Meta(Record.Meta):
            resource = "flagged"

        key = UnicodeAttribute(hash_key=True)
        flag = BooleanAttribute(null=True)

    with pytest.raises(TypeError, match="flag"):
        Flagged.to_item(key="k")


def test_raw_codec_writes_ttl_attributes_as_epoch_seconds(aws):
    from chalicelib.store.models import OutboxRecord

    item = OutboxRecord.to_item(message_id="m", body={"a": 1}, created_at="2026-01-01T00:00:00Z",
                                expires_at=1767225600)
    assert item["expires_at"] == {"N": "1767225600"} and OutboxRecord.from_item(item)["expires_at"] == 1767225600


def test_member_read_returns_what_was_written(aws):
    from chalicelib.store import members, tx

    from chalicelib.domain.member import Member

    state = {"wallet": {"available": 120, "lots": {"2026-01": 120}, "lifetime_earned": 120},
             "tier": {"tier_id": "silver", "reached_at": "2026-01-03T10:00:00Z"}, "seq": 7,
             "orders": {"count": 2, "recent": [1767434400, "2026-01-09T10:00:00Z"]}, "a_later_field": [1]}
    row = Member.from_state("m-9", None, "active", PROFILE, state)
    tx.write([members.save_op(row)])
    got = members.get("m-9")
    assert (got.member_id, got.version, got.status, got.profile) == ("m-9", 0, "active", PROFILE)
    assert (got.wallet.available, got.wallet.lots, got.tier.tier_id, got.seq, got.orders.count) == (
        120, {"2026-01": 120}, "silver", 7, 2)
    assert got.orders.recent == [1767434400, "2026-01-09T10:00:00Z"]
    assert got.extra == {"a_later_field": [1]}  # a field this version does not know survives its write
    assert got.to_state() == row.to_state()
    assert members.get("nobody") is None


def test_cancellation_reasons_follow_the_order_of_the_ops(aws):
    """Updates before puts: PynamoDB's TransactWrite would send the puts first and the
    reasons would name the wrong ops."""
    from chalicelib.store import tx
    from chalicelib.store.models import JobRecord, LookupRecord

    tx.write([tx.put(LookupRecord("k#taken", target="a"))])
    ops = [tx.update(JobRecord("j-1"), [JobRecord.data.set({"n": 1})]),
           tx.put(LookupRecord("k#free", target="b"), LookupRecord.key.does_not_exist()),
           tx.put(LookupRecord("k#taken", target="b"), LookupRecord.key.does_not_exist())]
    with pytest.raises(tx.TxCancelled) as exc:
        tx.write(ops)
    assert exc.value.codes == [None, None, "ConditionalCheckFailed"]
    assert [exc.value.failed(i) for i in range(3)] == [False, False, True]
    assert JobRecord.count("j-1") == 0 and LookupRecord.count("k#free") == 0  # all or nothing
