"""Who is in an audience: the one rule for coupon campaigns (issuing and redeem-time),
the issue call's selection and message campaigns (broadcasts). Pure: no AWS.

An audience is `{member_ids?, tiers?, segments?, touch?}`:
- only active members are ever in an audience;
- `member_ids` are always in (an explicit list);
- `tiers`, `segments` and `touch` are filters that must all match (tier = the current tier,
  segment and touch = those of the last scoring: an unscored member matches none); a member
  matching them is in too;
- member_ids alone select exactly them;
- an audience with none of these is the one product difference, so the caller says it:
  `EVERYONE` for a coupon campaign's own audience (no audience = every member may use it),
  `NOBODY` for a selection (a broadcast's audience, the audience of an issue call: nothing
  given selects no one).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

EVERYONE = "everyone"  # a coupon campaign's rules: no audience = every (active) member
NOBODY = "nobody"  # a selection (broadcast, issue call): no audience = no one


def _set(values: Optional[Iterable[str]]) -> frozenset:
    if not values:
        return frozenset()
    return values if isinstance(values, frozenset) else frozenset(values)


@dataclass(frozen=True)
class Audience:
    member_ids: frozenset = frozenset()
    tiers: frozenset = frozenset()
    segments: frozenset = frozenset()
    touch: frozenset = frozenset()

    def __post_init__(self) -> None:
        for name in ("member_ids", "tiers", "segments", "touch"):
            object.__setattr__(self, name, _set(getattr(self, name)))

    @classmethod
    def of(cls, d: Optional[Mapping[str, Any]]) -> "Audience":
        """From a stored or requested audience dict (absent or null keys: not given)."""
        d = d or {}
        return cls(_set(d.get("member_ids")), _set(d.get("tiers")), _set(d.get("segments")), _set(d.get("touch")))

    @property
    def has_filters(self) -> bool:
        return bool(self.tiers or self.segments or self.touch)

    @property
    def empty(self) -> bool:
        return not (self.member_ids or self.has_filters)


@dataclass(frozen=True)
class MemberFacts:
    """What the audience rule looks at."""

    member_id: str
    tier_id: Optional[str] = None
    segment: Optional[str] = None  # the last scoring's label
    touch: Optional[str] = None  # the last scoring's touch model
    active: bool = True

    @classmethod
    def of(cls, member) -> "MemberFacts":
        """From a member aggregate (`domain.member.Member`: read by attribute)."""
        return cls(member.member_id, member.tier_id, member.segment_label, member.segment_touch, member.active)


def in_audience(audience: Audience, member: MemberFacts, *, when_empty: str) -> bool:
    """Is this member in the audience? `when_empty`: EVERYONE or NOBODY (see the module)."""
    if when_empty not in (EVERYONE, NOBODY):
        raise ValueError(f"when_empty is {EVERYONE!r} or {NOBODY!r}, not {when_empty!r}")
    if not member.active:
        return False
    if audience.empty:
        return when_empty == EVERYONE
    if member.member_id in audience.member_ids:
        return True
    if not audience.has_filters:
        return False
    if audience.tiers and member.tier_id not in audience.tiers:
        return False
    if audience.segments and member.segment not in audience.segments:
        return False
    if audience.touch and member.touch not in audience.touch:
        return False
    return True
