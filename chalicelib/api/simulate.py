"""The settings simulator (SPEC 4.5): candidate settings against sample or recent orders."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import endpoint, lazy

bp = Blueprint(__name__)
simulate = lazy("chalicelib.services.simulate")


@endpoint(bp, "POST", "/v1/admin/settings/simulate", roles=("admin",), body="simulate.SimulateRequest",
          response="simulate.SimulationResult", tag="admin")
def simulate_settings(req):
    """Points each order would earn under today's settings and under `settings` (validated as a
    PUT of the settings would be), for the `orders` given and/or the orders of the `last_days`;
    with totals. Nothing is written (docs/RULES.md)."""
    return simulate.simulate(req.body)
