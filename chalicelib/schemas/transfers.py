"""Transfers between members and merges of duplicate accounts (SPEC 2.15)."""
from __future__ import annotations

from typing import Literal

from chalicelib.schemas.common import ClientId, MemberId, Out, Page, PosInt, Strict


class TransferRequest(Strict):
    transfer_id: ClientId
    to_member_id: MemberId
    points: PosInt


class Balance(Out):
    available: int
    pending: int
    held: int


class Transfer(Out):
    transfer_id: str
    from_member_id: str
    to_member_id: str
    points: int
    balance: Balance  # the sender's, after the transfer


class TransferLine(Out):
    transfer_id: str
    from_member_id: str
    to_member_id: str
    points: int
    direction: Literal["out", "in"]
    created_at: str


TransferPage = Page[TransferLine]


class MergeRequest(Strict):
    merge_id: ClientId
    source_member_id: MemberId
