"""Where an import's rows come from (SPEC 2.17): inline rows, or a JSON Lines / CSV object in
the exports bucket read by byte range, chunk by chunk. Every record comes with its row number
and the position after it (row number, byte offset), which the import checkpoints, so a
resumed run asks S3 for the rest of the object from that byte on.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from typing import Iterator, Optional

from chalicelib.clients import s3_client
from chalicelib.config import get_settings
from chalicelib.store import data as data_store

CHUNK_BYTES = 1 << 20  # S3 reads
CSV_COLUMNS = ("member_id", "name", "email", "birthday", "locale", "consents", "tier_id", "tier_retained_until",
               "balances", "lifetime_earned")


# --- reading rows -------------------------------------------------------------------------

@dataclass
class RowError:
    code: str
    message: str


@dataclass
class Position:
    """Where the next record starts: its row number, and in an S3 object its byte offset."""

    row: int = 1
    offset: int = 0


def _inline(rows: list, at: Position) -> Iterator[tuple[int, object, Position]]:
    for i in range(at.row - 1, len(rows)):
        raw = rows[i]
        yield i + 1, raw if isinstance(raw, dict) else RowError("VALIDATION_ERROR", "a row is a JSON object"), \
            Position(i + 2, 0)


def _lines(chunks, offset: int) -> Iterator[tuple[bytes, int]]:
    """Lines of a byte stream (without their newline), each with the offset after it."""
    rest = b""
    for chunk in chunks:
        if not chunk:
            continue
        data = rest + chunk if rest else chunk
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            offset += end + 1 - start
            yield data[start:end], offset
            start = end + 1
        rest = data[start:]
    if rest:
        yield rest, offset + len(rest)


def _decode(line: bytes) -> str:
    text = line.decode("utf-8")
    return text[:-1] if text.endswith("\r") else text


def _jsonl(chunks, at: Position) -> Iterator[tuple[int, object, Position]]:
    row = at.row
    for line, after in _lines(chunks, at.offset):
        number = row
        row += 1
        try:
            text = _decode(line).lstrip("\ufeff")
        except UnicodeDecodeError:
            yield number, RowError("INVALID_JSON", "the line is not UTF-8"), Position(row, after)
            continue
        if not text.strip():
            continue  # blank lines are not rows (they keep their line number)
        try:
            raw = json.loads(text)
        except ValueError as exc:
            yield number, RowError("INVALID_JSON", f"the line is not JSON: {exc}"[:200]), Position(row, after)
            continue
        if not isinstance(raw, dict):
            raw = RowError("INVALID_JSON", "the line is not a JSON object")
        yield number, raw, Position(row, after)


def _csv_records(chunks, offset: int) -> Iterator[tuple[str, int]]:
    """Whole CSV records (a quoted field may hold newlines), each with the offset after it."""
    pending: list[str] = []
    quotes = 0
    for line, after in _lines(chunks, offset):
        text = _decode(line)
        pending.append(text)
        quotes += text.count('"')
        if quotes % 2 == 0:
            yield "\n".join(pending), after
            pending, quotes = [], 0
    if pending:
        yield "\n".join(pending), offset  # an unterminated quote: one broken last record


class BadHeader(ValueError):
    pass


def parse_header(text: str) -> list[str]:
    header = [h.strip().lower() for h in next(csv.reader([text.lstrip("\ufeff")]))]
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown or "member_id" not in header or len(set(header)) != len(header):
        raise BadHeader(f"the CSV header must name distinct columns of {', '.join(CSV_COLUMNS)} (member_id "
                        f"required); unknown: {', '.join(unknown) or 'none'}")
    return header


def _csv(chunks, at: Position, header: Optional[list]) -> Iterator[tuple[int, object, Position]]:
    row = at.row
    records = _csv_records(chunks, at.offset)
    if header is None:
        first = next(records, None)
        if first is None:
            return
        header = parse_header(first[0])
        yield 0, header, Position(row, first[1])  # row 0: the header (the caller keeps it)
    for text, after in records:
        number = row
        row += 1
        if not text.strip():
            continue
        try:
            cells = next(csv.reader([text], strict=True))
        except csv.Error as exc:
            yield number, RowError("INVALID_CSV", f"the record is not valid CSV: {exc}"[:200]), Position(row, after)
            continue
        if len(cells) != len(header):
            yield number, RowError("INVALID_CSV", f"{len(cells)} fields where the header has {len(header)}"), \
                Position(row, after)
            continue
        try:
            yield number, csv_row(dict(zip(header, cells))), Position(row, after)
        except ValueError as exc:
            yield number, RowError("VALIDATION_ERROR", str(exc)[:200]), Position(row, after)


def csv_row(cells: dict) -> dict:
    """A CSV record as a row object: empty cells are absent; `consents` lists the channels
    consented to (`email;sms`); `balances` lists lots as `points@earned_at` (`1200@2026-01-15;300@2026-03-02`);
    numbers are digits."""
    out: dict = {}
    for name, value in cells.items():
        value = value.strip()
        if value == "":
            continue
        if name == "lifetime_earned":
            out[name] = _int(value, name)
        elif name == "consents":
            given = [c.strip().lower() for c in value.split(";") if c.strip()]
            unknown = sorted(set(given) - {"email", "push", "sms"})
            if unknown:
                raise ValueError(f"consents: unknown channel {unknown[0]!r} (email, push, sms)")
            out[name] = {c: c in given for c in ("email", "push", "sms")}
        elif name == "balances":
            lots = []
            for part in value.split(";"):
                if not part.strip():
                    continue
                points, sep, earned_at = part.strip().partition("@")
                if not sep:
                    raise ValueError(f"balances: {part.strip()[:40]!r} is not points@earned_at")
                lots.append({"points": _int(points.strip(), "balances.points"), "earned_at": earned_at.strip()})
            out[name] = lots
        else:
            out[name] = value
    return out


def _int(value: str, name: str) -> int:
    if not value.isdigit() or len(value) > 16:
        raise ValueError(f"{name}: {value[:20]!r} is not a whole number")
    return int(value)


def _s3_chunks(key: str, offset: int):
    s3 = s3_client()
    bucket = get_settings().exports_bucket
    size = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    if offset >= size:
        return iter(())
    body = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={offset}-")["Body"]
    return body.iter_chunks(CHUNK_BYTES)


def _s3_head_bytes(key: str, n: int = 256) -> bytes:
    try:
        return s3_client().get_object(Bucket=get_settings().exports_bucket, Key=key,
                                      Range=f"bytes=0-{n - 1}")["Body"].read()
    except Exception as exc:  # noqa: BLE001 - an empty object has no byte range
        if "InvalidRange" in str(exc):
            return b""
        raise


def _is_csv(key: str, first: bytes) -> bool:
    lower = key.lower()
    if lower.endswith(".csv"):
        return True
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return False
    return not first.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")


def source(params: dict, at: Position, progress: dict) -> Iterator[tuple[int, object, Position]]:
    if "rows_key" in params:
        return _inline(data_store.load_rows(params["rows_key"]), at)
    key = params["s3_key"]
    fmt = progress.get("format")
    if fmt is None:
        fmt = progress["format"] = "csv" if _is_csv(key, _s3_head_bytes(key)) else "jsonl"
    chunks = _s3_chunks(key, at.offset)
    if fmt == "csv":
        return _csv(chunks, at, progress.get("header"))
    return _jsonl(chunks, at)
