"""Bearer tokens (SPEC 4.1): HS256 with a shared secret in `local`, RS256 from a JWKS elsewhere."""
from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Optional

import warnings

import jwt

# The local stage's default secret is short on purpose (SPEC 4.1); it is refused elsewhere.
warnings.filterwarnings("ignore", category=jwt.warnings.InsecureKeyLengthWarning)

from chalicelib.config import get_settings
from chalicelib.errors import Forbidden, Unauthenticated

ROLES = ("member", "service", "admin")


@dataclass(frozen=True)
class Principal:
    sub: str
    roles: frozenset

    @property
    def actor(self) -> str:
        """How the audit trail and the ledger name whoever acted."""
        role = "admin" if "admin" in self.roles else "service" if "service" in self.roles else "member"
        return f"{role}:{self.sub}"

    def has(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)


@functools.lru_cache(maxsize=4)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=3600)


# Verified tokens, so a warm container checks a client's token's signature once, not on
# every call: token -> (settings it was checked under, principal, exp, checked at). A hit
# still honours `exp`, and is re-verified after VERIFIED_TTL_SECONDS (JWKS key rotation).
VERIFIED_TTL_SECONDS = 300
_verified: dict = {}
_verified_lock = threading.Lock()


def verify_token(header: Optional[str]) -> Principal:
    if not header or header[:7].lower() != "bearer ":  # the scheme is case-insensitive (RFC 7235)
        raise Unauthenticated()
    token = header[7:].strip()
    if not token:
        raise Unauthenticated()
    settings = get_settings()
    now = time.time()
    hit = _verified.get(token)
    if hit is not None and hit[0] is settings and now < hit[2] and now - hit[3] < VERIFIED_TTL_SECONDS:
        return hit[1]
    principal, exp = _verify(token, settings)
    with _verified_lock:
        if len(_verified) >= 1024:
            _verified.clear()
        _verified[token] = (settings, principal, exp, now)
    return principal


def _verify(token: str, settings) -> tuple[Principal, float]:
    options = {"require": ["exp", "sub"]}
    try:
        if settings.is_local:
            claims = jwt.decode(token, settings.jwt_secret, algorithms=["HS256"], options=options)
        else:
            key = _jwks_client(settings.jwks_url).get_signing_key_from_jwt(token).key
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=settings.jwt_audience,
                issuer=settings.jwt_issuer,
                options={**options, "verify_aud": settings.jwt_audience is not None},
            )
    except (jwt.PyJWTError, ValueError) as exc:
        raise Unauthenticated(f"invalid token: {exc.__class__.__name__}")
    roles = claims.get("roles") or []
    groups = claims.get("cognito:groups") or []
    if isinstance(roles, str):
        roles = [roles]
    granted = frozenset(r for r in [*roles, *groups] if r in ROLES)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise Unauthenticated("the token has no subject")
    return Principal(sub=sub, roles=granted), float(claims["exp"])


def authorize(principal: Principal, roles: Iterable[str], owner: Optional[str] = None) -> None:
    """Allow any role in `roles` (admin may do everything, SPEC 4.1); a member passes
    only for their own `owner` id."""
    roles = tuple(roles)
    if principal.has("admin", *[r for r in roles if r != "member"]):
        return
    if "member" in roles and principal.has("member"):
        if owner is None or owner == principal.sub:
            return
    raise Forbidden()


def mint_token(role: str, sub: str, ttl_seconds: int = 30 * 24 * 3600, secret: Optional[str] = None) -> str:
    """A local-stage HS256 token (the CLI's `token` command)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    settings = get_settings()
    if not settings.is_local and secret is None:
        raise ValueError("tokens are minted only in the local stage; production uses the identity provider")
    now = int(time.time())
    return jwt.encode({"sub": sub, "roles": [role], "iat": now, "exp": now + ttl_seconds},
                      secret or settings.jwt_secret, algorithm="HS256")
