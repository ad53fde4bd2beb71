"""The embedded AWS emulator: one module for `make run`, the tests and the bench.

A moto server behind a lock (moto is not safe under concurrent calls: one AWS call at a
time makes each call atomic, as in AWS, so concurrency tests judge the app and not the
emulator), with four fidelity fixes where moto's behaviour or cost differs from AWS's:

- TransactWriteItems honours `ClientRequestToken` as DynamoDB does: an identical re-send
  within 10 minutes of a success answers that success again and changes nothing; the same
  token with other parameters answers `IdempotentParameterMismatchException` (400).
  botocore puts a token on every TransactWriteItems and keeps it across its own retries,
  so a transaction whose answer was lost (a timeout) and that the SDK re-sends is not
  applied twice, nor reported as a condition failure.
- TransactWriteItems: moto backs a transaction up by deep-copying every table it touches
  (O(table) per call: about a second at 100k members, and memory churn that grew a
  `make run` emulator to many GB). Here a transaction snapshots only the items it touches
  and puts them back if it is cancelled: the same all-or-nothing outcome at a per-item cost.
- SendMessage(Batch): moto computes every queue attribute, including the approximate
  message counts (a walk over all queued messages), for each message sent, only to read
  `ContentBasedDeduplication`; here a send reads that one attribute.
- Scan: moto sorts the whole table and hashes every key for each page, then walks to the
  page's start key (O(table) per page). Here a plain table scan (no filter, no index,
  hash-key-only table) keeps the sorted keys of each segment until an item is added or
  deleted and starts each page at its key (bisect): the same pages, items, order, limits
  and LastEvaluatedKey (`tests/unit/test_bench_harness.py` compares them with moto's).

State: `save_state`/`load_state` pickle moto's backends of the services the stack uses
(`LOYALTY_PERSIST=1 make run` keeps them in `.local/`).

Run alone: `python -m chalicelib.emulator --port P [--state FILE]`.
"""
from __future__ import annotations

import _thread
import argparse
import bisect
import contextlib
import copy
import hashlib
import io
import json
import logging
import os
import pickle
import signal
import sys
import threading
import time
from collections import OrderedDict
from typing import Optional

# Services whose state a persistent run keeps (what bootstrap creates, and the app uses).
PERSISTED_SERVICES = ("dynamodb", "sqs", "s3", "events")
TOKEN_WINDOW_SECONDS = 600.0
CLONE_PATH = "/_loyalty/clone-items"
log = logging.getLogger("loyalty.emulator")


class LockedApp:
    """WSGI wrapper: one request inside moto at a time, response fully read under the lock."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.calls = 0  # AWS calls served: the state saver writes only after new ones

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == CLONE_PATH and os.environ.get("LOYALTY_EMULATOR_HOOKS") == "1":
            return self._clone(environ, start_response)
        with self.lock:
            self.calls += 1
            result = self.app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close:
                    close()

    def _clone(self, environ, start_response):
        """The bench's bulk load (only with LOYALTY_EMULATOR_HOOKS=1): every item naming
        `template` is copied for `ids`, the template's text replaced by each id, straight into
        moto's tables (a real program's size in seconds, not in an hour of BatchWriteItem)."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        spec = json.loads(environ["wsgi.input"].read(length))
        template, ids = spec["template"], spec["ids"]
        copied = 0
        with self.lock:
            from moto.backends import get_backend

            backend = get_backend("dynamodb")[spec.get("account", "123456789012")][spec.get("region", "us-east-1")]
            for table in list(backend.tables.values()):
                texts = []
                for item in table.all_items():
                    text = json.dumps(item.to_json()["Attributes"])
                    if template in text:
                        texts.append(text)
                for text in texts:
                    for new_id in ids:
                        table.put_item(json.loads(text.replace(template, new_id)))
                        copied += 1
            self.calls += 1
        body = json.dumps({"copied": copied}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


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


def _patch_client_request_token(undo: _Undo) -> None:
    from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException
    from moto.dynamodb.responses import DynamoHandler

    class IdempotentParameterMismatch(DynamodbException):
        def __init__(self) -> None:
            super().__init__(ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException",
                             message="The request uses the same client token as a previous, but non-identical "
                                     "request. Do not reuse a client token with different requests, unless the "
                                     "requests are identical.")

    original = DynamoHandler.transact_write_items

    def transact_write_items(self):
        body = self.body  # the parsed request (DynamoHandler.call_action sets it)
        token = body.get("ClientRequestToken") if isinstance(body, dict) else None
        if not token:
            return original(self)
        backend = self.dynamodb_backend
        seen = backend.__dict__.get("_client_tokens")
        if seen is None:
            seen = backend.__dict__["_client_tokens"] = OrderedDict()
        now = time.time()
        while seen:  # oldest first: forget tokens past their 10 minutes
            oldest = next(iter(seen))
            if seen[oldest][1] > now:
                break
            del seen[oldest]
        request = {k: v for k, v in body.items() if k != "ClientRequestToken"}
        fingerprint = hashlib.sha256(json.dumps(request, sort_keys=True, default=repr).encode()).hexdigest()
        if token in seen:
            if seen[token][0] != fingerprint:
                raise IdempotentParameterMismatch()
            return type(seen[token][2])(copy.deepcopy(seen[token][2].result))  # the original success
        result = original(self)  # a cancelled transaction raises: its token is not kept
        seen[token] = (fingerprint, now + TOKEN_WINDOW_SECONDS, result)
        return result

    undo.set(DynamoHandler, "transact_write_items", transact_write_items)


@contextlib.contextmanager
def fidelity_fixes():
    """The four fixes applied to this process's moto, undone on exit (tests use this)."""
    undo = _Undo()
    try:
        _patch_transactions(undo)
        _patch_client_request_token(undo)
        _patch_sqs_sends(undo)
        _patch_scan(undo)
        yield
    finally:
        undo.restore()


_applied: dict = {"undo": None, "users": 0}
_applied_lock = threading.Lock()


def apply_fixes() -> None:
    """Apply the fixes for good in this process (an emulator process), or count one more
    user of them (in-process emulators of the tests: `release_fixes` undoes them after the last)."""
    with _applied_lock:
        if _applied["undo"] is None:
            undo = _Undo()
            _patch_transactions(undo)
            _patch_client_request_token(undo)
            _patch_sqs_sends(undo)
            _patch_scan(undo)
            _applied["undo"] = undo
        _applied["users"] += 1


def release_fixes() -> None:
    with _applied_lock:
        _applied["users"] -= 1
        if _applied["users"] <= 0 and _applied["undo"] is not None:
            _applied["undo"].restore()
            _applied.update(undo=None, users=0)


# --- state ------------------------------------------------------------------------

class _Pickler(pickle.Pickler):
    """moto's models hold locks (SQS queues); a lock is saved as a fresh one."""

    _RLOCK = type(threading.RLock())

    def reducer_override(self, obj):
        if type(obj) is self._RLOCK:
            return threading.RLock, ()
        if type(obj) is _thread.LockType:
            return threading.Lock, ()
        return NotImplemented


def _backend_dicts() -> dict:
    from moto.backends import get_backend

    return {name: get_backend(name) for name in PERSISTED_SERVICES}


def save_state(path: str) -> int:
    """Pickle the persisted services' backends to `path` (atomically); returns its size."""
    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump({name: dict(b) for name, b in _backend_dicts().items()})
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return len(buf.getvalue())


def load_state(path: str) -> bool:
    """Load what `save_state` wrote; False when there is no saved state."""
    if not os.path.exists(path):
        return False
    with open(path, "rb") as f:
        saved = pickle.load(f)
    for name, backends in _backend_dicts().items():
        if name in saved:
            backends.clear()
            backends.update(saved[name])
    return True


class StateSaver:
    """Saves the state every `interval` seconds when calls came in since the last save
    (under the app's lock: a consistent picture), and once more on `stop()`."""

    def __init__(self, app: LockedApp, path: str, interval: float = 30.0):
        self.app, self.path, self.interval = app, path, interval
        self.saved_at_calls = app.calls
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="emulator-state", daemon=True)

    def start(self) -> "StateSaver":
        self.thread.start()
        return self

    def save(self) -> None:
        with self.app.lock:
            if self.app.calls == self.saved_at_calls and os.path.exists(self.path):
                return
            save_state(self.path)
            self.saved_at_calls = self.app.calls

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.save()
            except Exception:  # noqa: BLE001 - the next round tries again; stop() reports
                log.warning("could not save the emulator's state", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        self.save()


# --- servers ----------------------------------------------------------------------

def make_app() -> LockedApp:
    from moto.server import DomainDispatcherApplication, create_backend_app

    return LockedApp(DomainDispatcherApplication(create_backend_app))


def make_server(host: str = "127.0.0.1", port: int = 4566, app: Optional[LockedApp] = None):
    """A threaded werkzeug server around the locked moto app; call `.serve_forever()`."""
    from werkzeug.serving import make_server as werkzeug_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return werkzeug_server(host, port, app or make_app(), threaded=True)


def start_in_thread(host: str = "127.0.0.1", port: int = 0):
    """The emulator in this process (tests): fixes applied while it runs; returns
    (server, url). `server.shutdown()` stops it and releases the fixes."""
    apply_fixes()
    server = make_server(host, port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stop = server.shutdown

    def shutdown() -> None:
        try:
            stop()
        finally:
            release_fixes()

    server.shutdown = shutdown
    return server, f"http://{host}:{server.server_port}"


def serve(port: int, host: str = "127.0.0.1", state: Optional[str] = None, save_every: float = 30.0,
          ready=None) -> int:
    """The emulator process: fixes applied, state loaded (when `state` names a file) and
    saved periodically and on SIGINT/SIGTERM. `ready(loaded: bool)` is called once it listens."""
    apply_fixes()
    loaded = load_state(state) if state else False
    app = make_app()
    server = make_server(host, port, app)
    saver = StateSaver(app, state, save_every).start() if state else None
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    if ready:
        ready(loaded)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if saver:
            saver.stop()
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.emulator")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state", default=None, help="keep the state in this file (loaded, saved)")
    parser.add_argument("--save-every", type=float, default=30.0, help="seconds between saves")
    args = parser.parse_args(argv)
    return serve(args.port, args.host, args.state, args.save_every)


if __name__ == "__main__":
    sys.exit(main())
