"""Jobs over members' points and tiers (SPEC 2.4, 2.6, 2.7)."""
from __future__ import annotations

from chalicelib import relay
from chalicelib.jobs.framework import JobContext, register
from chalicelib.services import holds, lifecycle
from chalicelib.store import members as store
from chalicelib.store import scans


@register("recalculate-tiers")
def recalculate_tiers(ctx: JobContext) -> None:
    """Upgrades that are due and downgrades past retention (one step with soft landing)."""

    def handle(rec):
        change = lifecycle.recalculate_tier(store.from_record(rec), ctx.as_of)
        if not change:
            return None
        return {"changed": 1, f"to_{change['to']}": 1}

    with relay.batched() as sends:  # tier_changed messages: ten per SendMessageBatch, all sent before each checkpoint
        ctx.scan(scans.members(), handle, on_page_end=sends.flush)


@register("expire-points")
def expire_points(ctx: JobContext) -> None:
    """One `expire` ledger entry per member with points past their expiry."""

    def handle(rec):
        expired = lifecycle.expire_points(store.from_record(rec), ctx.as_of)
        return {"members_expired": 1, "points_expired": expired} if expired else None

    ctx.scan(scans.members(), handle)


@register("mature-points")
def mature_points(ctx: JobContext) -> None:
    """Pending points whose return window has closed become available."""

    def handle(rec):
        matured = lifecycle.mature_points(store.from_record(rec), ctx.as_of)
        return {"members_matured": 1, "points_matured": matured} if matured else None

    ctx.scan(scans.members(), handle)


@register("release-holds")
def release_holds(ctx: JobContext) -> None:
    """Point holds not captured by their `expires_at` go back to available (hourly)."""
    def handle(rec):
        released = holds.release_expired(store.from_record(rec), ctx.as_of)
        return {"members_released": 1, "points_released": released} if released else None

    ctx.scan(scans.members(), handle)
