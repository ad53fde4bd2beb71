"""The benchmark's emulator: `chalicelib.local`'s locked moto server in its own process.

Run as `python -m bench.emulator --port P`. A separate process keeps the emulator's
CPU off the interpreter under test (no GIL contention; on this 2-core machine one core
each), the way `make run` runs it.

Three fidelity fixes, applied the same to our code and to every floor, where moto's cost
grows with the data and AWS's does not (without them 100k members cannot run at all):

- TransactWriteItems: moto backs a transaction up by deep-copying every table it
  touches (O(table) per call: about a second at 100k members). Here a transaction
  snapshots only the items it touches and puts them back if it is cancelled: the same
  all-or-nothing outcome, at a per-item cost, as in DynamoDB.
- SendMessage(Batch): moto computes every queue attribute, including the approximate
  message counts (a walk over all queued messages), for each message sent, only to
  read `ContentBasedDeduplication`; with nothing consuming the queue each send grows
  slower (50 ms a message at 4,000 queued). Here a send reads that one attribute.
- Scan: moto sorts the whole table and hashes every key for each page, then walks to
  the page's start key (O(table) per page: 0.3 s a page at 100k members, against
  milliseconds at 1k), where DynamoDB continues from the start key. Here a plain table
  scan (no filter, no index, hash-key-only table) keeps the sorted keys of each segment
  until an item is added or deleted and starts each page at its key (bisect): the same
  pages, items, order, limits (count and 1 MB) and LastEvaluatedKey
  (`tests/unit/test_bench_harness.py` compares them with moto's). Other scans are
  moto's own.

Everything else is moto as `make run` serves it.
"""
from __future__ import annotations

import argparse
import bisect
import contextlib
import copy
import signal
import sys
import threading


class _Undo(list):
    def set(self, obj, name: str, value) -> None:
        self.append((obj, name, obj.__dict__.get(name, _MISSING)))
        setattr(obj, name, value)

    def restore(self) -> None:
        for obj, name, old in reversed(self):
            if old is _MISSING:
                delattr(obj, name)
            else:
                setattr(obj, name, old)
        self.clear()


_MISSING = object()


def _patch_transactions(undo: _Undo) -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    class _NoTableCopy:
        """moto's module-level `copy`, except that tables are not deep-copied."""

        @staticmethod
        def deepcopy(value, memo=None):
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        snapshots = []
        for item in transact_items:
            try:
                _, op = next(iter(item.items()))
                table = self.tables.get(op.get("TableName"))
                if table is None:
                    continue
                key = op["Item"] if "Item" in op else op["Key"]
                hash_value = DynamoType(key[table.hash_key_attr])
                range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
                snapshots.append((table, hash_value, range_value,
                                  copy.deepcopy(table.get_item(hash_value, range_value))))
            except Exception:  # noqa: BLE001 - a malformed op: moto reports it itself
                continue
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, before in reversed(snapshots):
                if before is None:
                    table.delete_item(hash_value, range_value)
                elif range_value is not None:
                    table.items[hash_value][range_value] = before
                else:
                    table.items[hash_value] = before
            raise

    undo.set(models, "copy", _NoTableCopy())
    undo.set(models.DynamoDBBackend, "transact_write_items", transact_write_items)


def _patch_sqs_sends(undo: _Undo) -> None:
    from moto.sqs import models

    sending = threading.local()
    full = models.Queue.attributes.fget

    def attributes(queue):
        if getattr(sending, "active", False):  # a send reads ContentBasedDeduplication only
            if not queue.fifo_queue:
                return {}
            value = queue.content_based_deduplication
            return {"ContentBasedDeduplication": str(value).lower() if isinstance(value, bool) else value}
        return full(queue)

    def while_sending(fn):
        def wrapped(*args, **kwargs):
            outer = getattr(sending, "active", False)
            sending.active = True
            try:
                return fn(*args, **kwargs)
            finally:
                sending.active = outer

        return wrapped

    undo.set(models.Queue, "attributes", property(attributes))
    undo.set(models.SQSBackend, "send_message", while_sending(models.SQSBackend.send_message))
    undo.set(models.SQSBackend, "send_message_batch", while_sending(models.SQSBackend.send_message_batch))


def _patch_scan(undo: _Undo) -> None:
    from moto.dynamodb.models import table as tables
    from moto.dynamodb.models.dynamo_type import DynamoType

    Table = tables.Table
    original_scan, original_put, original_delete = Table.scan, Table.put_item, Table.delete_item

    def bump(table) -> None:
        table.__dict__["_bench_keys_version"] = table.__dict__.get("_bench_keys_version", 0) + 1

    def put_item(self, item_attrs, *args, **kwargs):
        key = item_attrs.get(self.hash_key_attr)
        new = key is None or DynamoType(key) not in self.items
        result = original_put(self, item_attrs, *args, **kwargs)
        if new:
            bump(self)
        return result

    def delete_item(self, hash_key, range_key):
        bump(self)
        return original_delete(self, hash_key, range_key)

    def segment_keys(table, segments) -> list:
        version = table.__dict__.get("_bench_keys_version", 0)
        cache = table.__dict__.get("_bench_keys")
        if cache is None or cache[0] != version:
            cache = table.__dict__["_bench_keys"] = (version, {})
        keys = cache[1].get(segments)
        if keys is None:
            keys = cache[1][segments] = [k for k in sorted(table.items)
                                         if table.items[k].is_within_segment(segments)]
        return keys

    def scan(self, filters, limit, exclusive_start_key, filter_expression=None, index_name=None,
             consistent_read=False, projection_expression=None, segments=(None, None)):
        if index_name or filters or self.range_key_attr is not None:
            return original_scan(self, filters, limit, exclusive_start_key, filter_expression, index_name,
                                 consistent_read, projection_expression, segments)
        keys = segment_keys(self, tuple(segments))
        start = 0
        if exclusive_start_key is not None:
            start = bisect.bisect_right(keys, DynamoType(exclusive_start_key[self.hash_key_attr]))
        results, size, scanned, last = [], 0, 0, None
        for i in range(start, len(keys)):
            item = self.items.get(keys[i])
            if item is None:
                continue
            if len(results) == limit or size + item.size() > tables.RESULT_SIZE_LIMIT:
                last = self._get_last_evaluated_key(results[-1], None)
                break
            results.append(copy.deepcopy(item))
            size += item.size()
            scanned += 1
        if filter_expression is not None:
            results = [item for item in results if filter_expression.expr(item)]
        if projection_expression:
            results = [r.project(projection_expression) for r in results]
        return results, scanned, last

    undo.set(Table, "scan", scan)
    undo.set(Table, "put_item", put_item)
    undo.set(Table, "delete_item", delete_item)


@contextlib.contextmanager
def fidelity_fixes():
    """The three fixes applied to this process's moto, undone on exit (tests use this)."""
    undo = _Undo()
    try:
        _patch_transactions(undo)
        _patch_sqs_sends(undo)
        _patch_scan(undo)
        yield
    finally:
        undo.restore()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.emulator")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    from chalicelib.local import make_emulator

    with fidelity_fixes():
        server = make_emulator("127.0.0.1", args.port)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
