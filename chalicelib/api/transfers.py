"""Transfers between members and merges of duplicate accounts (SPEC 2.15, 4.5)."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import decode_cursor, encode_cursor, endpoint, lazy, page_limit

bp = Blueprint(__name__)
merge = lazy("chalicelib.services.merge")
transfers = lazy("chalicelib.services.transfers")
T = "/v1/members/{member_id}/transfers"


@endpoint(bp, "POST", T, roles=("member", "service"), owner="member_id", body="transfers.TransferRequest",
          response="transfers.Transfer", status=201, tag="points", also=(200,))
def create_transfer(req, member_id):
    """Give available points to another member, oldest first, keeping their expiry (idempotent per
    transfer_id: a replay answers 200)."""
    return transfers.transfer(member_id, req.body, req.actor)


@endpoint(bp, "GET", T, roles=("member", "service", "admin"), owner="member_id",
          response="transfers.TransferPage", tag="points", query=("limit", "cursor"))
def list_transfers(req, member_id):
    """The member's transfers in and out, newest first."""
    cursor = decode_cursor(req.query, {"member_id": ("S", member_id), "sk": ("S", None)})
    items, last = transfers.list_transfers(member_id, page_limit(req.query), cursor)
    return {"items": items, "next_cursor": encode_cursor(last)}


@endpoint(bp, "POST", "/v1/admin/members/{member_id}/merge", roles=("admin",), body="transfers.MergeRequest",
          response="members.Member", tag="members")
def merge_members(req, member_id):
    """Merge a duplicate account into this member, all or nothing; the source is closed with
    `merged_into` (idempotent per merge_id; audited)."""

    return merge.merge(member_id, req.body, req.actor)
