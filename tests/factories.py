"""Test helpers: tokens, a JSON client wrapper, member/order factories, invariant checks."""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any, Optional

_seq = itertools.count(1)


def reset_caches() -> None:
    from chalicelib import clients, messaging
    from chalicelib.config import reset_settings
    from chalicelib.services import program
    from chalicelib.store.base import reset_connection

    reset_settings()
    reset_connection()
    program.invalidate()
    messaging._state.update(client=None, urls={})
    clients._clients.clear()


def token(role: str, sub: str = "tester") -> str:
    from chalicelib.auth import mint_token

    return mint_token(role, sub)


@dataclass
class Resp:
    status: int
    body: Any
    headers: dict

    @property
    def error(self) -> Optional[str]:
        return (self.body or {}).get("error", {}).get("code") if isinstance(self.body, dict) else None


class ApiClient:
    """`chalice.test.Client` with JSON bodies and role-based tokens."""

    def __init__(self, client):
        self.raw = client

    def call(self, method: str, path: str, body: Any = None, *, role: str = "service", sub: str = "svc",
             headers: Optional[dict] = None, now: Optional[str] = None) -> Resp:
        h = {"Content-Type": "application/json"}
        if role:
            h["Authorization"] = "Bearer " + token(role, sub)
        if now:
            h["X-Loyalty-Now"] = now
        h.update(headers or {})
        payload = json.dumps(body) if body is not None and not isinstance(body, (bytes, str)) else body
        r = self.raw.http.request(method, path, headers=h, body=payload or b"")
        text = r.body.decode() if r.body else ""
        return Resp(r.status_code, json.loads(text) if text else None, dict(r.headers))

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.call("PUT", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    # --- factories ---
    def enrol(self, member_id: Optional[str] = None, **fields) -> dict:
        member_id = member_id or f"m{next(_seq)}"
        r = self.post("/v1/members", {"member_id": member_id, **fields})
        assert r.status == 201, r.body
        return r.body

    def accrue(self, member_id: str, total: int, order_id: Optional[str] = None, **fields) -> Resp:
        body = {"order_id": order_id or f"o{next(_seq)}", "total_amount": total, "currency": "JPY", **fields}
        now = body.pop("now", None)
        return self.post(f"/v1/members/{member_id}/accruals", body, now=now)

    def member(self, member_id: str, now: Optional[str] = None) -> dict:
        r = self.get(f"/v1/members/{member_id}", now=now)
        assert r.status == 200, r.body
        return r.body

    def ledger(self, member_id: str, now: Optional[str] = None) -> list:
        """The member's whole ledger (up to 100 entries), newest first."""
        r = self.get(f"/v1/members/{member_id}/ledger?limit=100", now=now)
        assert r.status == 200, r.body
        return r.body["items"]

    def settings(self, **changes) -> dict:
        """PUT the current program settings with `changes` applied; returns the new settings."""
        current = self.get("/v1/admin/settings", role="admin").body
        r = self.put("/v1/admin/settings", {**current, **changes}, role="admin")
        assert r.status == 200, r.body
        return r.body

    def adjust(self, member_id: str, points: int, adjustment_id: Optional[str] = None, reason: str = "test",
               now: Optional[str] = None) -> Resp:
        body = {"adjustment_id": adjustment_id or f"adj{next(_seq)}", "points": points, "reason": reason}
        return self.post(f"/v1/admin/members/{member_id}/adjustments", body, role="admin", sub="ops", now=now)

    def activity(self, member_id: str, type_: str, activity_id: Optional[str] = None, now: Optional[str] = None,
                 **fields) -> Resp:
        body = {"activity_id": activity_id or f"act{next(_seq)}", "type": type_, **fields}
        return self.post(f"/v1/members/{member_id}/activities", body, now=now)

    def refund(self, member_id: str, order_id: str, amount: int, refund_id: Optional[str] = None,
               now: Optional[str] = None) -> Resp:
        body = {"refund_id": refund_id or f"rf{next(_seq)}", "order_id": order_id, "amount": amount}
        return self.post(f"/v1/members/{member_id}/refunds", body, now=now)


def assert_invariant(member_id: str) -> None:
    """Σ ledger points == available + pending + held, and the lots match the available balance."""
    from chalicelib.store import members

    wallet = members.get(member_id).wallet
    assert members.ledger_sum(member_id) == wallet.available + wallet.pending + wallet.held
    assert sum(wallet.lots.values()) == max(wallet.available, 0)
    assert wallet.pending == sum(p.points for p in wallet.pending_lots)
    assert wallet.held == sum(h["points"] for h in wallet.holds.values())
    assert all(sum(h["lots"].values()) == h["points"] for h in wallet.holds.values())


def parallel(n, fn):
    """Run fn(0..n-1) in threads like clients that retry 503 RETRY_LATER; returns [("ok", result) | ("err", code)]."""
    import threading

    from chalicelib.errors import LoyaltyError

    results, lock = [], threading.Lock()

    def run(i):
        for _ in range(30):  # a client retries 503 RETRY_LATER
            try:
                out = ("ok", fn(i))
            except LoyaltyError as e:
                if e.code == "RETRY_LATER":
                    continue
                out = ("err", e.code)
            break
        with lock:
            results.append(out)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
