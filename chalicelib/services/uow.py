"""The unit of work: the one way a write reaches the store.

One object gathers everything a write commits — the member's new version, its ledger
entries, the operation's own record (order, refund, redemption, idempotency record, ...)
and an outbox row for every message the write causes — and commits it as ONE
TransactWriteItems with a ClientRequestToken.

Exactly once, at every layer:
- DynamoDB recognises the SDK's own re-send of a committed call by its token and does
  nothing twice.
- A store that ignores the token (an emulator) answers the re-send with a cancellation,
  and a lost answer leaves the outcome unknown. In both cases the unit of work reads its
  *anchor* back — the operation's own record, stamped with this attempt's token — and
  knows whether this very attempt committed, instead of deciding again: committed is
  success (201, messages relayed), anything else is the original error.
- After the commit the outbox rows go to the relay (`chalicelib/relay.py`); a crash before
  they are sent delays them, never loses them.

Version conflicts are retried by `retry` (bounded, jittered), the one retry loop besides
botocore's own.
"""
from __future__ import annotations

import secrets
from typing import Callable, Optional, TypeVar

from chalicelib import relay
from chalicelib.store import outbox, tx
from chalicelib.store.base import Conflict, retrying

T = TypeVar("T")

MAX_ITEMS = 100  # DynamoDB's limit per transaction


class UnitOfWork:
    def __init__(self) -> None:
        self.token = secrets.token_hex(16)
        self.ops: list = []
        self.messages: list = []
        self._anchor: Optional[tuple[int, type]] = None

    def add(self, op: tx.Op, anchor: Optional[type] = None) -> int:
        """Add an op; returns its index (cancellation reasons are read by index).
        `anchor`: the model of this op's item when it is the write's own record — the one
        read back to learn whether a lost or echoed attempt committed."""
        if anchor is not None:
            op = tx.stamp(op, self.token)
            self._anchor = (len(self.ops), anchor)
        self.ops.append(op)
        return len(self.ops) - 1

    def extend(self, ops: list) -> None:
        self.ops.extend(ops)

    def publish(self, messages: list) -> None:
        """Messages the write causes: outbox rows committed with it, relayed after it."""
        self.messages.extend(messages)

    def publish_events(self, events: list) -> None:
        """Domain events (SPEC envelopes) the write causes: outbox rows as well, relayed to the
        events bus and the webhooks."""
        self.messages.extend(outbox.event_row(e) for e in events)

    def committed(self) -> bool:
        """Did this attempt commit? A consistent read of the anchor's token."""
        if self._anchor is None:
            return False
        index, model = self._anchor
        table, key = tx.op_key(self.ops[index], model)
        return tx.has_token(table, key, self.token)

    def commit(self) -> None:
        """Commit everything at once. Raises TxCancelled (a condition failed and this attempt did
        not commit), Conflict (retry), or the store's error (503) when the outcome stays unknown."""
        ops = self.ops + [outbox.put_op(m) for m in self.messages]
        if len(ops) > MAX_ITEMS:
            raise ValueError(f"a unit of work holds at most {MAX_ITEMS} items, not {len(ops)}")
        try:
            tx.write(ops, token=self.token)
        except (tx.TxCancelled, Conflict) as cancelled:
            # Cancelled, or the echo of our own commit: botocore re-sent a call whose answer was
            # lost, and the store (ignoring the token) found its conditions already spent. Only a
            # re-sent call can be an echo, so a first-try cancellation costs no extra read.
            if not (cancelled.retried and self._resolved_as_committed()):
                raise
        except Exception as exc:  # noqa: BLE001 - decided below
            if not tx.answer_lost(exc):
                raise  # throttled or refused: definitely not written
            try:
                ours = self.committed()
            except Exception:  # noqa: BLE001 - still unreachable: the first error stands (503)
                raise exc from None
            if not ours:
                raise
        relay.after_commit(self.messages)

    def commit_or_replay(self, own_index: int, read_own: Callable[[], Optional[object]],
                         replay: Callable[[object], T]) -> Optional[T]:
        """Commit; None when it committed. When the op at `own_index` (the operation's own
        record: its id must be new) failed its condition, the operation was done before:
        `replay(read_own())` answers from the stored record. Any other failed condition (a
        member or an item changed since the read) is Conflict: `retry` decides again."""
        try:
            self.commit()
            return None
        except tx.TxCancelled as c:
            if c.failed(own_index):
                prior = read_own()
                if prior is None:
                    raise Conflict()  # the record vanished between the condition and the read
                return replay(prior)
            raise Conflict()

    def _resolved_as_committed(self) -> bool:
        try:
            return self.committed()
        except Exception:  # noqa: BLE001 - cannot tell: treat as not committed (the caller re-reads)
            return False


def retry(fn: Callable[[], T], attempts: int = 8, base_delay: float = 0.01, max_delay: float = 1.0) -> T:
    """Run `fn` (one attempt: read, decide, build a unit of work, commit) until it stops raising
    Conflict; 503 RETRY_LATER after `attempts`."""
    return retrying(attempts, base_delay, max_delay)(fn)
