"""TransactWriteItems built from PynamoDB records and conditions, sent through the shared
botocore client, with cancellation reasons made readable.

An op is one `TransactItems` entry (`{"Put": {...}}`, ...). The transaction keeps the
ops in the order given, so `TxCancelled.codes[i]` is the reason of the i-th op.
(PynamoDB's own `TransactWrite` regroups items by kind — checks, deletes, puts,
updates — which breaks that correspondence, and adds a per-call dispatch layer the
points hot path does not need.)
"""
from __future__ import annotations

from typing import Optional, Sequence

from botocore.exceptions import ClientError
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactGet

from chalicelib.store.base import Conflict, connection, connection_failed, dynamodb_client, error_code

Op = dict


class TxCancelled(Exception):
    """A condition failed. `codes[i]` is the reason of the i-th op (None when it passed)."""

    def __init__(self, codes: list, retried: bool = False):
        super().__init__(f"transaction cancelled: {codes}")
        self.codes = codes
        self.retried = retried  # the SDK had re-sent the call: maybe the echo of a commit

    def failed(self, index: int) -> bool:
        return index < len(self.codes) and self.codes[index] == "ConditionalCheckFailed"


def _with_condition(request: dict, condition: Optional[Condition]) -> dict:
    if condition is not None:
        names: dict = {}
        values: dict = {}
        request["ConditionExpression"] = condition.serialize(names, values)
        request["ExpressionAttributeNames"] = {placeholder: name for name, placeholder in names.items()}
        if values:
            request["ExpressionAttributeValues"] = values
    return request


def put(record, condition: Optional[Condition] = None) -> Op:
    return put_item(type(record), record.serialize(), condition)


def put_item(model_cls, item: dict, condition: Optional[Condition] = None) -> Op:
    """A put of a raw item (`Record.to_item`) into `model_cls`'s table."""
    return {"Put": _with_condition({"TableName": model_cls.table_name(), "Item": item}, condition)}


def update(record, actions: list, condition: Optional[Condition] = None) -> Op:
    return {"Update": record.get_update_kwargs_from_instance(actions=actions, condition=condition)}


def delete(record, condition: Optional[Condition] = None) -> Op:
    return {"Delete": record.get_delete_kwargs_from_instance(condition=condition)}


def check(model_cls, hash_key, range_key=None, condition: Optional[Condition] = None) -> Op:
    if condition is None:
        raise TypeError("a condition check needs a condition")
    return {"ConditionCheck": model_cls.get_operation_kwargs_from_class(hash_key, range_key, condition=condition)}


def write(ops: Sequence[Op], token: Optional[str] = None) -> None:
    """One TransactWriteItems. Raises TxCancelled on a failed condition, Conflict on a
    transaction conflict (retry), and lets throttling and 5xx errors propagate (503).
    `token`: a ClientRequestToken, which makes the SDK's own retry of this call idempotent."""
    request: dict = {"TransactItems": list(ops)}
    if token:
        request["ClientRequestToken"] = token
    try:
        dynamodb_client().transact_write_items(**request)
    except ClientError as exc:
        if error_code(exc) != "TransactionCanceledException":
            raise
        codes = [r.get("Code") if r.get("Code") != "None" else None
                 for r in exc.response.get("CancellationReasons") or []]
        # The SDK re-sent this call (after a lost answer): the cancellation may be the echo of
        # the first attempt's commit on a store that ignores ClientRequestToken.
        retried = bool((exc.response.get("ResponseMetadata") or {}).get("RetryAttempts"))
        if "ConditionalCheckFailed" in codes:
            raise TxCancelled(codes, retried) from None
        if any(c in ("TransactionConflict", None) for c in codes) and not any(
                c in ("ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded") for c in codes):
            err = Conflict(codes)
            err.retried = retried
            raise err from None
        raise


def answer_lost(exc: BaseException) -> bool:
    """True when a write may have taken effect although it raised: the connection broke or
    timed out after the request was sent, or DynamoDB answered with a 5xx (for which it
    documents that the transaction may or may not have succeeded). Throttling and
    cancellations are definite: nothing was written."""
    return connection_failed(exc) or error_code(exc) in ("InternalServerError", "ServiceUnavailable", "InternalFailure")


# --- proof of a commit -----------------------------------------------------------------
# A write's own record (the order, the redemption, the idempotency record, ...) is stamped
# with the attempt's token. After a lost answer, or a cancellation that may be the echo of
# our own commit (the SDK re-sent a committed call to a store that ignores
# ClientRequestToken), reading that record back tells whether this very attempt committed.

TOKEN_ATTR = "tx_token"


def stamp(op: Op, token: str) -> Op:
    """The same op, with `token` written into its item (Put or Update)."""
    if "Put" in op:
        body = dict(op["Put"])
        body["Item"] = {**body["Item"], TOKEN_ATTR: {"S": token}}
        return {"Put": body}
    if "Update" in op:
        body = dict(op["Update"])
        names = {**body.get("ExpressionAttributeNames", {}), "#txtoken": TOKEN_ATTR}
        values = {**body.get("ExpressionAttributeValues", {}), ":txtoken": {"S": token}}
        expr = body.get("UpdateExpression", "")
        if "SET " in expr:
            expr = expr.replace("SET ", "SET #txtoken = :txtoken, ", 1)
        else:
            expr = f"SET #txtoken = :txtoken {expr}".strip()
        body.update(UpdateExpression=expr, ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        return {"Update": body}
    raise TypeError("only a Put or an Update can carry a commit token")


def op_key(op: Op, model_cls) -> tuple[str, dict]:
    """(table name, key) of the item an op writes."""
    kind, body = next(iter(op.items()))
    if kind == "Put":
        names = [n for n in (model_cls._hash_keyname, model_cls._range_keyname) if n]
        return body["TableName"], {n: body["Item"][n] for n in names}
    return body["TableName"], body["Key"]


def has_token(table: str, key: dict, token: str) -> bool:
    """A consistent read: does the item carry `token` (this attempt committed)?"""
    item = dynamodb_client().get_item(TableName=table, Key=key, ConsistentRead=True,
                                      ProjectionExpression="#t", ExpressionAttributeNames={"#t": TOKEN_ATTR}).get("Item")
    return bool(item) and item.get(TOKEN_ATTR, {}).get("S") == token


def get_many(*keys) -> list:
    """TransactGetItems: `keys` are (model_cls, hash_key[, range_key]) → records or None."""
    with TransactGet(connection=connection()) as tg:
        futures = [tg.get(k[0], k[1], k[2] if len(k) > 2 else None) for k in keys]
    out = []
    for key, future in zip(keys, futures):
        try:
            out.append(future.get())
        except key[0].DoesNotExist:
            out.append(None)
    return out
