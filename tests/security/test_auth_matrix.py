"""Every registered route proves its role and ownership rules (SPEC 4.1), so a new route
cannot ship unprotected: the matrix is built from the live route table."""
import re
import time

import jwt
import pytest

from chalicelib.api.http import ENDPOINTS

PUBLIC = {("GET", "/v1/health"), ("GET", "/v1/openapi.json")}
# SPEC 4.4's role column, for the routes whose roles are fixed by the spec.
SERVICE_ONLY_PREFIXES = ("/v1/coupons/", "/v1/vouchers/")
SERVICE_ONLY = {"accruals", "refunds", "activities", "events"}


def fill(path: str, member: str = "alice") -> str:
    return re.sub(r"{(\w+)}", lambda m: member if m.group(1) == "member_id" else "x1", path)


def routes():
    import app  # noqa: F401 - registers every blueprint

    return sorted({(e.method, e.path, e.roles, e.owner_param) for e in ENDPOINTS})


def test_every_route_but_health_and_openapi_requires_a_role():
    for method, path, roles, _owner in routes():
        if (method, path) in PUBLIC:
            assert roles == ()
        else:
            assert roles, f"{method} {path} is unprotected"


def test_admin_routes_are_admin_only_and_member_routes_check_ownership():
    for method, path, roles, owner in routes():
        if path.startswith("/v1/admin/"):
            assert roles == ("admin",), (method, path)
        if "member" in roles and "{member_id}" in path:
            assert owner == "member_id", f"{method} {path}: a member token could reach other members"
        last = path.rstrip("/").split("/")[-1]
        if path.startswith(SERVICE_ONLY_PREFIXES) or (last in SERVICE_ONLY and method == "POST"):
            assert "member" not in roles, (method, path)


@pytest.mark.parametrize("role", ["member", "service", "admin"])
def test_matrix(api, role):
    api.enrol("alice")
    api.enrol("bob")
    for method, path, roles, owner in routes():
        if (method, path) in PUBLIC:
            r = api.call(method, fill(path), role=None)
            assert r.status == 200, (method, path)
            continue
        r = api.call(method, fill(path), {}, role=None)
        assert r.status == 401 and r.error == "UNAUTHENTICATED", (method, path, r.body)
        allowed = role == "admin" or role in roles
        r = api.call(method, fill(path, "bob"), {}, role=role, sub="alice")
        if not allowed:
            assert r.status == 403 and r.error == "FORBIDDEN", (role, method, path, r.body)
        elif role == "member" and owner:
            assert r.status == 403 and r.error == "FORBIDDEN", ("member reached bob's data", method, path)
        else:
            assert r.status not in (401, 403), (role, method, path, r.body)
        if allowed and role == "member" and owner:
            r = api.call(method, fill(path, "alice"), {}, role=role, sub="alice")
            assert r.status not in (401, 403), ("owner refused", method, path, r.body)


def _hmac_token(claims, secret: bytes) -> str:
    """An HS256 token keyed with the RSA public key: the classic algorithm-confusion attack
    (PyJWT refuses to build it, so it is assembled by hand)."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(sig)


def _forge(claims, key="local-dev-secret", alg="HS256", headers=None):
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


@pytest.mark.parametrize("token_kind", ["alg_none", "expired", "wrong_secret", "no_sub", "garbage", "no_exp"])
def test_bad_tokens_are_401(api, token_kind):
    now = int(time.time())
    good = {"sub": "admin", "roles": ["admin"], "exp": now + 60}
    token = {
        "alg_none": jwt.encode(good, None, algorithm="none"),
        "expired": _forge({**good, "exp": now - 10}),
        "wrong_secret": _forge(good, key="another-secret-of-sufficient-length!!"),
        "no_sub": _forge({"roles": ["admin"], "exp": now + 60}),
        "garbage": "not.a.jwt",
        "no_exp": _forge({"sub": "admin", "roles": ["admin"]}),
    }[token_kind]
    r = api.call("GET", "/v1/admin/settings", role=None, headers={"Authorization": f"Bearer {token}"})
    assert r.status == 401 and r.error == "UNAUTHENTICATED", r.body


def test_production_rejects_hs256_and_checks_issuer_and_audience(aws_env, monkeypatch):
    """Outside `local`, only RS256 tokens from the JWKS verify: an HS256 token signed with the
    public key (algorithm confusion) or with the local secret is refused; iss/aud are checked."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from chalicelib import auth
    from chalicelib.errors import Unauthenticated
    from tests.factories import reset_caches

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    monkeypatch.setenv("LOYALTY_STAGE", "prod")
    monkeypatch.setenv("LOYALTY_JWKS_URL", "https://issuer.example/.well-known/jwks.json")
    monkeypatch.setenv("LOYALTY_JWT_ISSUER", "https://issuer.example")
    monkeypatch.setenv("LOYALTY_JWT_AUDIENCE", "loyalty-api")
    reset_caches()

    class FakeJwks:
        def get_signing_key_from_jwt(self, token):
            return type("K", (), {"key": key.public_key()})()

    monkeypatch.setattr(auth, "_jwks_client", lambda url: FakeJwks())
    now = int(time.time())
    claims = {"sub": "u1", "cognito:groups": ["admin"], "exp": now + 60, "iss": "https://issuer.example",
              "aud": "loyalty-api"}
    good = jwt.encode(claims, key, algorithm="RS256")
    assert auth.verify_token(f"Bearer {good}").roles == frozenset({"admin"})
    bad = {
        "hs256_with_public_key": _hmac_token(claims, public_pem),
        "hs256_local_secret": _forge(claims, key="local-dev-secret"),
        "wrong_issuer": jwt.encode({**claims, "iss": "https://evil.example"}, key, algorithm="RS256"),
        "wrong_audience": jwt.encode({**claims, "aud": "other"}, key, algorithm="RS256"),
        "expired": jwt.encode({**claims, "exp": now - 5}, key, algorithm="RS256"),
    }
    for name, token in bad.items():
        with pytest.raises(Unauthenticated):
            auth.verify_token(f"Bearer {token}")
    # the local secret is refused outright outside the local stage
    monkeypatch.setenv("LOYALTY_JWT_SECRET", "local-dev-secret")
    reset_caches()
    with pytest.raises(ValueError):
        from chalicelib.config import get_settings

        get_settings()
