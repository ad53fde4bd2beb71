"""Rewards catalogue, redemptions and vouchers (SPEC 4.4)."""
from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.api.http import decode_cursor, encode_cursor, endpoint, lazy, page_limit

bp = Blueprint(__name__)
idempotency = lazy("chalicelib.services.idempotency")
rewards = lazy("chalicelib.services.rewards")
ANY = ("member", "service", "admin")
R = "/v1/members/{member_id}/redemptions"


@endpoint(bp, "GET", "/v1/rewards", roles=ANY, response="rewards.RewardPage", tag="rewards", query=("limit", "cursor"))
def list_rewards(req):
    """Active rewards (a member sees those their tier reaches), cheapest first."""
    items, nxt = rewards.list_rewards(req.principal, page_limit(req.query), decode_cursor(req.query))
    return {"items": items, "next_cursor": encode_cursor(nxt)}


@endpoint(bp, "POST", "/v1/admin/rewards", roles=("admin",), body="rewards.Reward", response="rewards.RewardOut", status=201,
          tag="rewards")
def create_reward(req):
    """Add a reward to the catalogue (audited)."""
    return 201, rewards.create_reward(req.body, req.actor)


@endpoint(bp, "PUT", "/v1/admin/rewards/{reward_id}", roles=("admin",), body="rewards.RewardUpdate", response="rewards.RewardOut",
          tag="rewards")
def update_reward(req, reward_id):
    """Replace a reward (audited)."""
    return rewards.update_reward(reward_id, req.body, req.actor)


@endpoint(bp, "DELETE", "/v1/admin/rewards/{reward_id}", roles=("admin",), status=204, tag="rewards")
def delete_reward(req, reward_id):
    """Remove a reward from the catalogue; issued vouchers stay valid (audited)."""
    rewards.delete_reward(reward_id, req.actor)
    return Response(body="", status_code=204)


@endpoint(bp, "POST", R, roles=("member", "service"), owner="member_id", body="rewards.RedeemRequest",
          response="rewards.Redemption", status=201, tag="rewards")
def redeem(req, member_id):
    """Spend points on a reward: a voucher with an unguessable code (Idempotency-Key replays)."""
    idem = None
    if req.idempotency_key:
        # The service reads the stored answer in the same TransactGetItems as the member and
        # the reward, and writes it in the redemption's transaction: one read, one write.

        idem = (idempotency.key_for(req, "POST", R), idempotency.request_hash(req))
    return rewards.redeem(member_id, req.body.reward_id, req.actor, idem)


@endpoint(bp, "GET", R, roles=ANY, owner="member_id", response="rewards.RedemptionPage", tag="rewards", query=("limit", "cursor"))
def list_redemptions(req, member_id):
    """The member's vouchers, newest first."""
    items, last = rewards.list_redemptions(member_id, page_limit(req.query), decode_cursor(req.query))
    return {"items": items, "next_cursor": encode_cursor(last)}


@endpoint(bp, "POST", R + "/{redemption_id}/cancel", roles=ANY, owner="member_id", response="rewards.Redemption",
          tag="rewards", idempotent=True)
def cancel(req, member_id, redemption_id):
    """Cancel an issued voucher: points and stock come back."""
    return rewards.cancel(member_id, redemption_id, req.actor)


@endpoint(bp, "POST", R + "/{redemption_id}/gift", roles=("member",), owner="member_id", body="rewards.GiftRequest",
          response="rewards.Redemption", tag="rewards", idempotent=True)
def gift(req, member_id, redemption_id):
    """Give an issued voucher to a friend (another active member)."""
    return rewards.gift(member_id, redemption_id, req.body.to_member_id, req.actor)


@endpoint(bp, "POST", "/v1/vouchers/{code}/use", roles=("service",), body="rewards.UseVoucherRequest",
          response="rewards.Redemption", tag="rewards", idempotent=True)
def use_voucher(req, code):
    """Use a voucher at a store (case-insensitive, dashes ignored)."""
    return rewards.use_voucher(code, req.body.order_id, req.actor)
