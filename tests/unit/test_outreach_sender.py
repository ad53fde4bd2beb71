"""`outreach._Sender`: parallel batches of ten, pending items dropped only after every one
of their messages was sent, failures surfaced and their pending items kept (no AWS)."""
from __future__ import annotations

import threading
import time

import pytest

from chalicelib.services import outreach


@pytest.fixture
def fake(monkeypatch):
    log = {"sent": [], "deleted": [], "threads": set(), "fail": set()}
    lock = threading.Lock()

    def send(messages, attempts=5):
        time.sleep(0.005)  # long enough for the batches of a hand-over to overlap
        if any(m["id"] in log["fail"] for m in messages):
            raise RuntimeError("SQS is down")
        with lock:
            log["sent"].append([m["id"] for m in messages])
            log["threads"].add(threading.current_thread().name)
        return len(messages)

    def pending_delete(batch_ids):
        with lock:
            sent = {i for batch in log["sent"] for i in batch}
            log["deleted"].append((list(batch_ids), sent))

    monkeypatch.setattr(outreach.messaging, "send", send)
    monkeypatch.setattr(outreach.store, "pending_delete", pending_delete)
    monkeypatch.setattr(outreach.observability, "count", lambda *a, **k: None)
    return log


def _chunk(n: int, start: int, per_item: int = 7) -> tuple[list, list]:
    """n messages of one chunk, spread over pending items of `per_item` messages."""
    ids = [f"m{start + i}" for i in range(n)]
    items = {f"p{start + i // per_item}" for i in range(n)}
    return [(f"p{start + i // per_item}", {"id": m}) for i, m in enumerate(ids)], sorted(items)


def test_every_message_sent_once_in_full_batches_and_items_dropped_after_their_sends(fake):
    chunks = [_chunk(n, start) for n, start in ((97, 0), (88, 1000), (5, 2000), (300, 3000))]
    with outreach._Sender() as sender:
        for claimed, items in chunks:
            sender.submit(claimed, items)
    sent = [i for batch in fake["sent"] for i in batch]
    assert sorted(sent) == sorted(m["id"] for claimed, _ in chunks for _, m in claimed)  # each exactly once
    assert all(len(b) == 10 for b in fake["sent"][:-1]) and len(fake["sent"]) == 49  # 490 messages
    assert len(fake["threads"]) > 1  # a hand-over's batches went out side by side
    members_of = {item: {m["id"] for claimed, _ in chunks for b, m in claimed if b == item}
                  for _, items in chunks for item in items}
    deleted = [b for batch, _ in fake["deleted"] for b in batch]
    assert sorted(deleted) == sorted(members_of)  # every pending item dropped, once
    for batch, sent_before in fake["deleted"]:
        for item in batch:
            assert members_of[item] <= sent_before, item  # only after all its messages went out


def test_a_failed_batch_raises_and_its_pending_items_are_kept(fake):
    first, second = _chunk(60, 0), _chunk(40, 100)
    fake["fail"].add("m25")  # in the third batch of ten, pending item p3 (m21..m27)
    with pytest.raises(RuntimeError, match="SQS is down"):
        with outreach._Sender() as sender:
            sender.submit(*first)
            sender.submit(*second)  # the failure surfaces here or on leaving the block
    assert fake["deleted"] == []  # nothing dropped: run-triggers re-sends what was claimed
    assert sorted(i for batch in fake["sent"] for i in batch) == sorted(
        m["id"] for _, m in first[0] + second[0] if not 20 <= int(m["id"][1:]) < 30)  # the other batches went out


def test_a_failure_surfaces_at_the_next_hand_over_beyond_the_depth(fake):
    fake["fail"].add("m5")
    sender = outreach._Sender()
    with pytest.raises(RuntimeError, match="SQS is down"):
        with sender:
            for n in range(outreach._Sender.DEPTH + 1):
                sender.submit(*_chunk(10, 100 * n))
            pytest.fail("the failed hand-over should have raised before this point")
    assert sender.inflight == []
