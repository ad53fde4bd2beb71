"""PynamoDB models of the coupons tables. Key formats live here and nowhere else.

- coupon-campaigns:   campaign_id → the definition (`data`), its revision `rev`, the shard
                      caps, the `codes` counter. GSI `by-created` (list_pk, created_sk) lists
                      campaigns newest first. Generation checkpoints live here too, under
                      `{campaign_id}#gen#{gen_id}` (never listed: they have no list_pk).
- coupon-codes:       normalised code → campaign, kind, state (unique: unissued/issued/redeemed,
                      the member it belongs to). Sparse GSI `by-pool` (pool, code) holds the
                      unissued codes, spread over POOL_SHARDS pool keys per campaign.
- coupon-counters:    `{campaign_id}#s{n}` → one slice of the campaign's limit: cap, used,
                      issued, rev, and of its money budget: `budget` (this slice's part of
                      budget_amount, absent = none) and `spent` (Σ discount taken from it).
                      One item per slice (SHARDS at creation), each on its own partition key.
- coupon-wallets:     member_id / campaign_id → the member's code and their use count (the
                      per-member limit's conditional counter). LSI `by-issued` (sparse: only
                      issued coupons) lists the wallet newest first.
- coupon-redemptions: coupon_redemption_id (derived from order_id and campaign_id) → one
                      redemption; beside them, `co_…` (derived from order_id) → the order's
                      coupon record: active redemptions, active non-stackable ones and every
                      campaign that redeemed on it (SPEC 2.20 stacking, docs/RULES.md).
"""
from __future__ import annotations

import hashlib
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Optional, Sequence

from botocore.exceptions import ClientError
from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection, LocalSecondaryIndex

from chalicelib import clock
from chalicelib.config import get_settings
from chalicelib.errors import RetryLater, ValidationFailed
from chalicelib.store import tx
from chalicelib.store.base import Record, dynamodb_client

SHARDS = 16  # counter slices of a new campaign (docs/COUPONS.md: ~8,000 redemptions/s); fixed per campaign
POOL_SHARDS = 16  # pool keys of the unissued-codes index per campaign
LIST_PK = "campaign"
BATCH = 25  # BatchWriteItem's limit


# --- models ---------------------------------------------------------------------------------

class CampaignsByCreated(GlobalSecondaryIndex):
    class Meta:
        index_name = "by-created"
        projection = AllProjection()

    list_pk = UnicodeAttribute(hash_key=True)
    created_sk = UnicodeAttribute(range_key=True)


class CampaignRecord(Record):
    class Meta(Record.Meta):
        resource = "coupon-campaigns"

    campaign_id = UnicodeAttribute(hash_key=True)
    rev = UnicodeAttribute(null=True)
    data = JSONAttribute(null=True)
    caps = JSONAttribute(null=True)
    budgets = JSONAttribute(null=True)  # the budget_amount's slices, one per shard (absent: no budget)
    codes = NumberAttribute(null=True)
    reserved = NumberAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    list_pk = UnicodeAttribute(null=True)
    created_sk = UnicodeAttribute(null=True)
    # generation checkpoints only
    seq = NumberAttribute(null=True)
    gen = JSONAttribute(null=True)
    by_created = CampaignsByCreated()


class CodesByPool(GlobalSecondaryIndex):
    class Meta:
        index_name = "by-pool"
        projection = KeysOnlyProjection()

    pool = UnicodeAttribute(hash_key=True)
    code = UnicodeAttribute(range_key=True)


class CodeRecord(Record):
    class Meta(Record.Meta):
        resource = "coupon-codes"

    code = UnicodeAttribute(hash_key=True)
    campaign_id = UnicodeAttribute()
    kind = UnicodeAttribute(default="unique")  # unique | shared
    status = UnicodeAttribute(null=True)  # unique: absent (unissued) | issued | redeemed
    member_id = UnicodeAttribute(null=True)
    issued_at = UnicodeAttribute(null=True)
    redemption_id = UnicodeAttribute(null=True)
    pool = UnicodeAttribute(null=True)  # set while unissued (sparse index)
    batch = UnicodeAttribute(null=True)  # short codes: the generation chunk that wrote it (exact resume)
    by_pool = CodesByPool()


class CounterRecord(Record):
    class Meta(Record.Meta):
        resource = "coupon-counters"

    key = UnicodeAttribute(hash_key=True)
    cap = NumberAttribute(null=True)  # absent = unlimited
    used = NumberAttribute(default=0)
    issued = NumberAttribute(default=0)
    rev = UnicodeAttribute(null=True)
    budget = NumberAttribute(null=True)  # this slice of budget_amount (absent = no budget)
    spent = NumberAttribute(null=True)  # Σ discount of the redemptions taken from this slice


class WalletByIssued(LocalSecondaryIndex):
    class Meta:
        index_name = "by-issued"
        projection = AllProjection()

    member_id = UnicodeAttribute(hash_key=True)
    issued_sk = UnicodeAttribute(range_key=True)


class WalletRecord(Record):
    class Meta(Record.Meta):
        resource = "coupon-wallets"

    member_id = UnicodeAttribute(hash_key=True)
    campaign_id = UnicodeAttribute(range_key=True)
    code = UnicodeAttribute(null=True)
    issued_at = UnicodeAttribute(null=True)
    issued_sk = UnicodeAttribute(null=True)
    uses = NumberAttribute(null=True)
    redeemed = BooleanAttribute(null=True)  # unique: the issued code itself was used
    by_issued = WalletByIssued()


class _SharedTable(Record):
    """A table two models share (the redemptions table: redemptions and orders' coupon records)."""

    @classmethod
    def _get_connection(cls):
        """As Record's, on a table the other model may have registered first (same key schema):
        the shared connection keeps one schema per table name."""
        from pynamodb.models import Model

        from chalicelib.store.base import connection

        conn = connection()
        table_conn = cls._connection
        if table_conn is None or table_conn.connection is not conn:
            settings = get_settings()
            cls.Meta.table_name = settings.resource_name(cls.Meta.resource)
            cls.Meta.region = settings.region
            cls.Meta.host = settings.aws_endpoint_url
            cls._connection = None
            table_conn = Model._get_connection.__func__(cls)
            meta = table_conn.get_meta_table()
            table_conn.connection = conn
            if meta.table_name not in conn._tables:
                conn.add_meta_table(meta)
            cls._connection = table_conn
        return table_conn


class RedemptionRecord(_SharedTable):
    class Meta(Record.Meta):
        resource = "coupon-redemptions"

    coupon_redemption_id = UnicodeAttribute(hash_key=True)
    order_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    campaign_id = UnicodeAttribute()
    code = UnicodeAttribute()
    shard = NumberAttribute()
    status = UnicodeAttribute(default="redeemed")  # redeemed | rolled_back
    request_hash = UnicodeAttribute()
    response = JSONAttribute()
    data = JSONAttribute(default=dict)


class OrderCouponsRecord(_SharedTable):
    """One per order that redeemed a coupon, in the redemptions table (key `co_…`): written in
    every redemption's and rollback's own transaction, its counters conditionally, so stacking
    holds under concurrency and a rolled-back redemption no longer counts."""

    class Meta(Record.Meta):
        resource = "coupon-redemptions"

    coupon_redemption_id = UnicodeAttribute(hash_key=True)  # the table's key: order_key(order_id)
    order_id = UnicodeAttribute(null=True)
    active = NumberAttribute(null=True)  # redemptions in force
    exclusive = NumberAttribute(null=True)  # of them, non-stackable
    campaigns = UnicodeSetAttribute(null=True)  # every campaign that redeemed on this order



MODELS = [CampaignRecord, CodeRecord, CounterRecord, WalletRecord, RedemptionRecord]  # (OrderCouponsRecord
# shares the redemptions table)


# --- keys -------------------------------------------------------------------------------------

def shard_key(campaign_id: str, n: int) -> str:
    return f"{campaign_id}#s{n}"


def gen_key(campaign_id: str, gen_id: str) -> str:
    return f"{campaign_id}#gen#{gen_id}"


def pool_key(campaign_id: str, n: int) -> str:
    return f"{campaign_id}#{n}"


def redemption_id(order_id: str, campaign_id: Optional[str] = None) -> str:
    """One coupon redemption per campaign and order: the id is derived from both (96 bits of
    SHA-256), so the redemption item itself is the idempotency record. Without a campaign:
    the id redemptions had before stacking (one per order)."""
    key = order_id if campaign_id is None else f"{order_id}\x00{campaign_id}"
    return "cr_" + hashlib.sha256(key.encode()).hexdigest()[:24]


def order_key(order_id: str) -> str:
    """The order's coupon record (OrderCouponsRecord)."""
    return "co_" + hashlib.sha256(order_id.encode()).hexdigest()[:24]


def redemption_ids_for_orders(order_ids: Iterable[str]) -> list[str]:
    """The coupon redemption ids of these orders (every campaign's), from their order records."""
    keys = [order_key(o) for o in dict.fromkeys(order_ids)]
    out: list[str] = []
    for i in range(0, len(keys), 100):
        for rec in OrderCouponsRecord.batch_get(keys[i:i + 100], consistent_read=True):
            out += [redemption_id(rec.order_id, cid) for cid in sorted(rec.campaigns or ())]
    return out


# --- reads ------------------------------------------------------------------------------------

def get_campaign(campaign_id: str) -> Optional[CampaignRecord]:
    return CampaignRecord.find(campaign_id)


def get_shards(campaign_id: str, shards: int, with_campaign: bool = False) -> tuple[Optional[CampaignRecord], list]:
    """The campaign (optionally) and its counter shards in one TransactGetItems."""
    keys = [(CounterRecord, shard_key(campaign_id, n)) for n in range(shards)]
    if with_campaign:
        keys.insert(0, (CampaignRecord, campaign_id))
    got = tx.get_many(*keys)
    camp = got.pop(0) if with_campaign else None
    return camp, got


def shard_totals(shard_counts: dict[str, int]) -> dict[str, dict]:
    """Σ used and Σ issued per campaign (`{campaign_id: its shard count}`; one BatchGetItem
    per 100 shards)."""
    keys = [shard_key(cid, n) for cid, shards in shard_counts.items() for n in range(shards)]
    totals = {cid: {"used": 0, "issued": 0, "spent": 0} for cid in shard_counts}
    for rec in CounterRecord.batch_get(keys, consistent_read=True):
        cid = rec.key.rsplit("#s", 1)[0]
        totals[cid]["used"] += int(rec.used or 0)
        totals[cid]["issued"] += int(rec.issued or 0)
        totals[cid]["spent"] += int(rec.spent or 0)
    return totals


def _checked_cursor(cursor: Optional[dict], expected: dict) -> Optional[dict]:
    """A client's cursor must be a key this store handed out (names, string values, the fixed
    parts equal), so a forged one is a 400, not a DynamoDB ValidationException."""
    if cursor is None:
        return None
    ok = set(cursor) == set(expected) and all(
        isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) and 0 < len(v["S"]) <= 1024
        and (expected[k] is None or v["S"] == expected[k]) for k, v in cursor.items())
    if not ok:
        raise ValidationFailed("cursor is not valid", fields=[{"field": "cursor", "message": "invalid"}])
    return cursor


def campaigns_page(limit: int, cursor: Optional[dict]) -> tuple[list[CampaignRecord], Optional[dict]]:
    cursor = _checked_cursor(cursor, {"campaign_id": None, "list_pk": LIST_PK, "created_sk": None})
    result = CampaignRecord.by_created.query(LIST_PK, scan_index_forward=False, limit=limit,
                                             last_evaluated_key=cursor)
    items = list(result)
    return items, result.last_evaluated_key


def batch_get_campaigns(campaign_ids: Iterable[str]) -> dict[str, CampaignRecord]:
    ids = list(dict.fromkeys(campaign_ids))
    return {r.campaign_id: r for r in CampaignRecord.batch_get(ids, consistent_read=True)} if ids else {}


def wallet_page(member_id: str, limit: int, cursor: Optional[dict]) -> tuple[list[WalletRecord], Optional[dict]]:
    cursor = _checked_cursor(cursor, {"member_id": member_id, "campaign_id": None, "issued_sk": None})
    result = WalletRecord.by_issued.query(member_id, scan_index_forward=False, limit=limit,
                                          last_evaluated_key=cursor)
    items = list(result)
    return items, result.last_evaluated_key


def batch_get_wallets(member_ids: Sequence[str], campaign_id: str) -> dict[str, WalletRecord]:
    if not member_ids:
        return {}
    return {w.member_id: w for w in WalletRecord.batch_get([(m, campaign_id) for m in member_ids],
                                                           consistent_read=True)}


def unissued_codes(campaign_id: str, want: int, cursors: dict) -> list[str]:
    """Up to `want` unissued codes from the pool index, walking its shards; `cursors` keeps
    each shard's position across calls (None: exhausted)."""
    out: list[str] = []
    for n in range(POOL_SHARDS):
        if len(out) >= want:
            break
        if n in cursors and cursors[n] is None:
            continue
        result = CodeRecord.by_pool.query(pool_key(campaign_id, n), limit=want - len(out),
                                          last_evaluated_key=cursors.get(n))
        out += [r.code for r in result]
        cursors[n] = result.last_evaluated_key
    return out


# --- bulk writes (code generation) ------------------------------------------------------------

def _table(resource: str) -> str:
    return get_settings().resource_name(resource)


def code_item(code: str, campaign_id: str, n: int, batch: Optional[str] = None) -> dict:
    """The low-level item of one unissued unique code: no model instance per code, and only
    the attributes it needs (`kind` defaults to unique, no `status` means unissued)."""
    item = {"code": {"S": code}, "campaign_id": {"S": campaign_id},
            "pool": {"S": pool_key(campaign_id, n % POOL_SHARDS)}}
    if batch:
        item["batch"] = {"S": batch}
    return item


def batch_put(resource: str, items: Sequence[dict], attempts: int = 10, base_delay: float = 0.05) -> None:
    """BatchWriteItem in calls of 25; UnprocessedItems are retried with jittered backoff.
    Raises RetryLater if some are still unprocessed after `attempts` rounds."""
    client = dynamodb_client()
    table = _table(resource)
    for i in range(0, len(items), BATCH):
        pending = [{"PutRequest": {"Item": item}} for item in items[i:i + BATCH]]
        for attempt in range(attempts):
            resp = client.batch_write_item(RequestItems={table: pending})
            pending = (resp.get("UnprocessedItems") or {}).get(table) or []
            if not pending:
                break
            time.sleep(random.uniform(0, base_delay * (2 ** attempt)))
        else:
            raise RetryLater(f"{len(pending)} items stayed unprocessed")


def codegen_workers() -> int:
    """Concurrent BatchWriteItem streams for code generation (LOYALTY_CODEGEN_WORKERS, default 4):
    DynamoDB scales with them; a single-threaded emulator gains little but loses nothing much."""
    raw = os.environ.get("LOYALTY_CODEGEN_WORKERS", "4")
    return max(1, min(int(raw), 32)) if raw.isdigit() else 4


def parallel_batch_put(resource: str, items: Sequence[dict], workers: Optional[int] = None) -> None:
    """Split into `workers` runs of whole 25-item batches written concurrently."""
    workers = workers or codegen_workers()
    if len(items) <= BATCH * 4 or workers <= 1:
        batch_put(resource, items)
        return
    per = -(-len(items) // workers)
    per = -(-per // BATCH) * BATCH
    parts = [items[i:i + per] for i in range(0, len(items), per)]
    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        for f in [pool.submit(batch_put, resource, part) for part in parts]:
            f.result()


def put_if_absent(resource: str, item: dict, key_attr: str) -> bool:
    """A conditional PutItem: False when an item with that key exists (a short code's collision)."""
    try:
        dynamodb_client().put_item(TableName=_table(resource), Item=item,
                                   ConditionExpression="attribute_not_exists(#k)",
                                   ExpressionAttributeNames={"#k": key_attr})
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise


def existing_codes(codes: Sequence[str]) -> dict[str, Optional[str]]:
    """code → its `batch` tag for the codes that exist (BatchGetItem, consistent)."""
    out: dict[str, Optional[str]] = {}
    for rec in CodeRecord.batch_get(list(codes), consistent_read=True,
                                    attributes_to_get=["code", "batch"]):
        out[rec.code] = rec.batch
    return out


def get_gen(campaign_id: str, gen_id: str) -> Optional[CampaignRecord]:
    return CampaignRecord.find(gen_key(campaign_id, gen_id))


# --- keys for tx.get_many (a transactional read beside other items) ----------------------------

def campaign_key(campaign_id: str) -> tuple:
    return (CampaignRecord, campaign_id)


def code_key(code: str) -> tuple:
    return (CodeRecord, code)


def wallet_key(member_id: str, campaign_id: str) -> tuple:
    return (WalletRecord, member_id, campaign_id)


def shard_keys(campaign_id: str, shards: int) -> list[tuple]:
    return [(CounterRecord, shard_key(campaign_id, n)) for n in range(shards)]


def order_coupons_key(order_id: str) -> tuple:
    """The order's coupon record (stacking)."""
    return (OrderCouponsRecord, order_key(order_id))


def redemption_key(order_id: str, campaign_id: Optional[str] = None) -> tuple:
    """The redemption of this campaign on this order (without a campaign: the one of before stacking)."""
    return (RedemptionRecord, redemption_id(order_id, campaign_id))


def get_redemption(coupon_redemption_id: str) -> Optional[RedemptionRecord]:
    return RedemptionRecord.find(coupon_redemption_id)


# --- anchors: the write's own record, read back by the unit of work ---------------------------

def wallet_anchor() -> type:
    return WalletRecord


def redemption_anchor() -> type:
    return RedemptionRecord


# --- campaigns: creation and revision --------------------------------------------------------

def new_campaign(campaign_id: str, rev: str, definition: dict, caps: list, budgets: Optional[list], codes: int,
                 now) -> CampaignRecord:
    """A campaign as it is first stored (listed newest first through `by-created`)."""
    return CampaignRecord(campaign_id, rev=rev, data=definition, caps=caps, budgets=budgets, codes=codes, reserved=0,
                          created_at=clock.iso(now), updated_at=clock.iso(now), list_pk=LIST_PK,
                          created_sk=f"{clock.sortable(now)}#{campaign_id}")


def campaign_create_op(rec: CampaignRecord) -> tx.Op:
    return tx.put(rec, CampaignRecord.campaign_id.does_not_exist())


def shard_create_ops(campaign_id: str, rev: str, caps: Sequence, budgets: Optional[Sequence]) -> list:
    return [tx.put(CounterRecord(shard_key(campaign_id, n), cap=caps[n], used=0, issued=0, rev=rev, spent=0,
                                 budget=budgets[n] if budgets else None))
            for n in range(len(caps))]


def shared_code_create_op(code: str, campaign_id: str) -> tx.Op:
    """A shared code, unique across campaigns."""
    return tx.put(CodeRecord(code, campaign_id=campaign_id, kind="shared"), CodeRecord.code.does_not_exist())


def campaign_revise_op(campaign_id: str, definition: dict, rev: str, caps: list, budgets: Optional[list],
                       updated_at: str, expected_rev: str) -> tx.Op:
    """A new definition (and revision), conditional on the revision it was judged from."""
    actions = [CampaignRecord.data.set(definition), CampaignRecord.rev.set(rev), CampaignRecord.caps.set(caps),
               CampaignRecord.updated_at.set(updated_at)]
    actions.append(CampaignRecord.budgets.set(budgets) if budgets else CampaignRecord.budgets.remove())
    return tx.update(CampaignRecord(campaign_id), actions, CampaignRecord.rev == expected_rev)


def shard_revise_op(campaign_id: str, n: int, rev: str, *, cap: Optional[tuple] = None,
                    budget: Optional[tuple] = None) -> tx.Op:
    """Shard `n` takes the new revision; `cap=(new cap or None, used read)` re-slices the limit
    if no redemption moved `used` since; `budget=(new slice or None, spent read)` likewise."""
    actions = [CounterRecord.rev.set(rev)]
    condition = None
    if cap is not None:
        new_cap, used = cap
        actions.append(CounterRecord.cap.set(new_cap) if new_cap is not None else CounterRecord.cap.remove())
        condition = CounterRecord.used == used
    if budget is not None:
        new_budget, spent = budget
        actions.append(CounterRecord.budget.set(new_budget) if new_budget is not None
                       else CounterRecord.budget.remove())
        same = (CounterRecord.spent == spent) if spent else (
            CounterRecord.spent.does_not_exist() | (CounterRecord.spent == 0))
        condition = same if condition is None else condition & same
    return tx.update(CounterRecord(shard_key(campaign_id, n)), actions, condition)


# --- code generation ----------------------------------------------------------------------------

def reserve_codes_op(campaign_id: str, count: int, capacity: int) -> tx.Op:
    """Reserve room for `count` more codes, never past `capacity`."""
    return tx.update(CampaignRecord(campaign_id), [CampaignRecord.reserved.add(count)],
                     CampaignRecord.reserved <= capacity - count)


def gen_start_op(campaign_id: str, gen_id: str, count: int) -> tuple[tx.Op, int, dict]:
    """A new generation checkpoint: (its put, its seq, its state)."""
    state = {"count": count, "done": 0, "pending": None}
    rec = CampaignRecord(gen_key(campaign_id, gen_id), seq=0, gen=state)
    return tx.put(rec, CampaignRecord.campaign_id.does_not_exist()), 0, dict(state)


def gen_advance_op(campaign_id: str, gen_id: str, seq: int, state: dict) -> tx.Op:
    """The checkpoint's next state, conditional on the seq read."""
    return tx.update(CampaignRecord(gen_key(campaign_id, gen_id)),
                     [CampaignRecord.seq.set(seq + 1), CampaignRecord.gen.set(state)], CampaignRecord.seq == seq)


def codes_added_op(campaign_id: str, written: int) -> tx.Op:
    return tx.update(CampaignRecord(campaign_id), [CampaignRecord.codes.add(written)])


def put_codes(campaign_id: str, numbered: Sequence[tuple[int, str]]) -> int:
    """Long codes (no collision to fear): batch writes. `numbered`: (index in its chunk, code)."""
    parallel_batch_put("coupon-codes", [code_item(c, campaign_id, i) for i, c in numbered])
    return len(numbered)


def put_new_codes(campaign_id: str, numbered: Sequence[tuple[int, str]], tag: str, workers: int = 8) -> int:
    """Short codes: conditional puts (a taken code is skipped); returns how many were written."""
    items = [code_item(c, campaign_id, i, tag) for i, c in numbered]
    if not items:
        return 0
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return sum(pool.map(lambda item: put_if_absent("coupon-codes", item, "code"), items))


# --- issuing ------------------------------------------------------------------------------------

def code_issue_op(code: str, campaign_id: str, member_id: str, at: str) -> tx.Op:
    """An unissued unique code goes to a member (and leaves the pool)."""
    return tx.update(CodeRecord(code, campaign_id=campaign_id), [
        CodeRecord.status.set("issued"), CodeRecord.member_id.set(member_id), CodeRecord.issued_at.set(at),
        CodeRecord.pool.remove()], CodeRecord.status.does_not_exist())


def wallet_issue_op(member_id: str, campaign_id: str, code: str, now) -> tx.Op:
    """The code in the member's wallet: one per member per campaign."""
    return tx.update(WalletRecord(member_id, campaign_id), [
        WalletRecord.code.set(code), WalletRecord.issued_at.set(clock.iso(now)),
        WalletRecord.issued_sk.set(f"{clock.sortable(now)}#{campaign_id}"),
        WalletRecord.uses.add(0)], WalletRecord.code.does_not_exist())


def issued_count_op(campaign_id: str, n: int, count: int) -> tx.Op:
    return tx.update(CounterRecord(shard_key(campaign_id, n)), [CounterRecord.issued.add(count)])


# --- redeeming and rolling back ------------------------------------------------------------------

def redemption_put_op(rid: str, *, order_id: str, member_id: str, campaign_id: str, code: str, shard: int,
                      request_hash: str, response: dict, data: dict) -> tx.Op:
    """A new redemption (one per campaign and order: the condition makes a twin a replay)."""
    rec = RedemptionRecord(rid, order_id=order_id, member_id=member_id, campaign_id=campaign_id, code=code,
                           shard=shard, status="redeemed", request_hash=request_hash, response=response, data=data)
    return tx.put(rec, RedemptionRecord.coupon_redemption_id.does_not_exist())


def wallet_use_op(member_id: str, campaign_id: str, max_per_member: int, own_code: bool) -> tx.Op:
    """One more use of the member's coupon, within the per-member limit."""
    actions = [WalletRecord.uses.add(1)] + ([WalletRecord.redeemed.set(True)] if own_code else [])
    return tx.update(WalletRecord(member_id, campaign_id), actions,
                     WalletRecord.uses.does_not_exist() | (WalletRecord.uses < max_per_member))


def shard_use_op(campaign_id: str, n: int, rev: str, *, counts: bool, was_unissued: bool, capped: bool,
                 part: Optional[int], room_left: Optional[int]) -> tx.Op:
    """Shard `n` of a redemption judged by revision `rev`: the counting shard (`counts`) takes the use
    (within its cap when `capped`); `part` of the discount is spent from its budget slice, keeping
    spent + part within the slice (`room_left` = slice - part; None: no budget)."""
    actions, condition = [], CounterRecord.rev == rev
    if counts:
        actions += [CounterRecord.used.add(1)] + ([CounterRecord.issued.add(1)] if was_unissued else [])
        if capped:
            condition &= CounterRecord.used < CounterRecord.cap
    if part:
        actions.append(CounterRecord.spent.add(part))
        if room_left is not None:
            condition &= CounterRecord.spent.does_not_exist() | (CounterRecord.spent <= room_left)
    return tx.update(CounterRecord(shard_key(campaign_id, n)), actions, condition)


def code_redeem_op(code: str, campaign_id: str, member_id: str, rid: str, *, read_status: Optional[str],
                   own_code: bool, at: str) -> tx.Op:
    """A unique code is spent, conditional on the state it was read in (`read_status`: None =
    unissued, which takes it out of the pool; an own code must still be this member's)."""
    actions = [CodeRecord.status.set("redeemed"), CodeRecord.member_id.set(member_id),
               CodeRecord.redemption_id.set(rid)]
    if read_status is None:
        actions += [CodeRecord.pool.remove(), CodeRecord.issued_at.set(at)]
    condition = CodeRecord.status.does_not_exist() if read_status is None else CodeRecord.status == read_status
    if own_code:
        condition &= CodeRecord.member_id == member_id
    return tx.update(CodeRecord(code, campaign_id=campaign_id), actions, condition)


def order_coupons_redeem_op(order_id: str, campaign_id: str, stackable: bool) -> tx.Op:
    """The order counts one more redemption in force: a stackable one only while no exclusive one
    is, a non-stackable one only while none is."""
    actions = [OrderCouponsRecord.order_id.set(order_id), OrderCouponsRecord.active.add(1),
               OrderCouponsRecord.campaigns.add({campaign_id})]
    if stackable:
        condition = OrderCouponsRecord.exclusive.does_not_exist() | (OrderCouponsRecord.exclusive == 0)
    else:
        actions.append(OrderCouponsRecord.exclusive.add(1))
        condition = OrderCouponsRecord.active.does_not_exist() | (OrderCouponsRecord.active == 0)
    return tx.update(OrderCouponsRecord(order_key(order_id)), actions, condition)


def redemption_rollback_op(rid: str, data: dict) -> tx.Op:
    return tx.update(RedemptionRecord(rid), [RedemptionRecord.status.set("rolled_back"),
                                             RedemptionRecord.data.set(data)],
                     RedemptionRecord.status == "redeemed")


def wallet_unuse_op(member_id: str, campaign_id: str, own_code: bool) -> tx.Op:
    return tx.update(WalletRecord(member_id, campaign_id),
                     [WalletRecord.uses.add(-1)] + ([WalletRecord.redeemed.set(False)] if own_code else []),
                     WalletRecord.uses > 0)


def shard_release_op(campaign_id: str, n: int, *, counts: bool, part: Optional[int]) -> tx.Op:
    """A rollback gives shard `n` its use back (`counts`) and its `part` of the discount."""
    actions, condition = [], None
    if counts:
        actions.append(CounterRecord.used.add(-1))
        condition = CounterRecord.used > 0
    if part:
        actions.append(CounterRecord.spent.add(-part))
        enough = CounterRecord.spent >= part
        condition = enough if condition is None else condition & enough
    return tx.update(CounterRecord(shard_key(campaign_id, n)), actions, condition)


def code_unredeem_op(code: str, campaign_id: str, rid: str) -> tx.Op:
    """A rolled-back unique code is issued again (if this redemption still holds it)."""
    return tx.update(CodeRecord(code, campaign_id=campaign_id),
                     [CodeRecord.status.set("issued"), CodeRecord.redemption_id.remove()],
                     (CodeRecord.status == "redeemed") & (CodeRecord.redemption_id == rid))


def order_coupons_rollback_op(order_id: str, stackable: bool) -> tx.Op:
    actions = [OrderCouponsRecord.active.add(-1)]
    if not stackable:
        actions.append(OrderCouponsRecord.exclusive.add(-1))
    return tx.update(OrderCouponsRecord(order_key(order_id)), actions, OrderCouponsRecord.active > 0)
