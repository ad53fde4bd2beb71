"""Lifecycle automations (SPEC 2.12): which messages a member is due, as delivery candidates."""
from __future__ import annotations

from datetime import datetime

from chalicelib.domain.automations import due_automations
from chalicelib.domain.member import Member
from chalicelib.schemas.program import DEFAULT_AUTOMATIONS, ProgramSettings
from chalicelib.services import members
from chalicelib.services.outreach import Candidate

LIFECYCLE = ("welcome", "onboarding_step", "f2_nudge", "dormant", "birthday", "points_expiring",
             "near_next_tier", "churn_risk")


def config(settings: ProgramSettings) -> dict:
    """Every automation and trigger → its settings (`enabled` + parameters)."""
    return {name: settings.automation(name) for name in DEFAULT_AUTOMATIONS}


def candidates_for(row: Member, as_of: datetime, settings: ProgramSettings,
                   cfg: dict) -> list[Candidate]:
    """The lifecycle messages due to an active member at `as_of`, in priority order."""
    if row.status != "active" or not any(cfg.get(n, {}).get("enabled", True) for n in LIFECYCLE):
        return []
    view = members.view(row, as_of)
    within = int((cfg.get("points_expiring") or {}).get("within_days", 30))
    wallet = row.wallet.copy()
    wallet.mature(as_of)
    expiring = wallet.expiring_soon(as_of, settings.points_expiry_months, within)
    return [Candidate(row.member_id, row.profile, due.automation, due.automation, due.period, due.variables,
                      kind="cs_alert" if due.cs_alert else "marketing",
                      control_share=str((cfg.get(due.automation) or {}).get("control_share", "0")))
            for due in due_automations(view, {"orders": row.orders.to_dict()}, as_of, cfg, expiring)]
