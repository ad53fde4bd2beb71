"""Property-based fuzzing of every route against the real local server (`make run`):

- schemathesis over the project's own OpenAPI document, with valid data (every response
  matches its documented status, content type and schema) and with negative data
  (invalid bodies, parameters and headers are refused with a documented 4xx);
- hypothesis over what no schema describes: unknown paths and methods, bodies nested
  thousands deep, huge strings and arrays, hostile headers.

Every run fails on any 5xx and on any error body outside SPEC 4.2's shape
(`{"error": {"code", "message", "details"}}`). Budgets are fixed and derandomised so
the whole file stays within a few minutes of `make test`.
"""
from __future__ import annotations

import json
import re

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

import app  # noqa: F401 - registers every route
from chalicelib.api.openapi import document

pytestmark = pytest.mark.e2e

SENT = {"requests": 0, "statuses": set(), "negative": 0, "negative_statuses": set()}
CODE = re.compile(r"^[A-Z][A-Z_]+$")


def error_shape_problem(status: int, text: str):
    """None when a response body is fine: an error must be exactly SPEC 4.2's shape."""
    if status < 400:
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return f"{status}: not JSON: {text[:200]!r}"
    if not (isinstance(body, dict) and set(body) == {"error"} and isinstance(body["error"], dict)
            and set(body["error"]) == {"code", "message", "details"}
            and isinstance(body["error"]["code"], str) and CODE.match(body["error"]["code"])
            and isinstance(body["error"]["message"], str) and isinstance(body["error"]["details"], dict)):
        return f"{status}: not the 4.2 error shape: {text[:300]!r}"
    return None


@schemathesis.check
def error_body_in_the_spec_shape(ctx, response, case):
    problem = error_shape_problem(response.status_code, response.text)
    if problem:
        raise AssertionError(problem)
    return None


def load(mode: GenerationMode):
    schema = schemathesis.openapi.from_dict(document())
    # The coverage phase multiplies requests (every boundary of every field); the fuzzing
    # phase with a fixed budget per operation keeps `make test` within minutes.
    schema.config.phases.coverage.enabled = False
    # The token is the fixture's, sent with every case: no generated (or removed) security
    # parameters, or a negative case "without Authorization" would really carry one.
    schema.config.generation.update(modes=[mode], with_security_parameters=False)
    return schema


positive = load(GenerationMode.POSITIVE)
negative = load(GenerationMode.NEGATIVE)
CHECKS = [not_a_server_error, error_body_in_the_spec_shape, status_code_conformance, content_type_conformance,
          response_schema_conformance]
NEGATIVE_CHECKS = [not_a_server_error, error_body_in_the_spec_shape, status_code_conformance,
                   content_type_conformance, negative_data_rejection]


@positive.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_documented_responses(case, live_server, admin_token):
    response = case.call_and_validate(base_url=live_server["base"],
                                      headers={"Authorization": f"Bearer {admin_token}"}, checks=CHECKS, timeout=30)
    SENT["requests"] += 1
    SENT["statuses"].add(response.status_code)


@negative.parametrize()
@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_negative_data_is_refused_with_a_documented_4xx(case, live_server, admin_token):
    response = case.call_and_validate(base_url=live_server["base"],
                                      headers={"Authorization": f"Bearer {admin_token}"}, checks=NEGATIVE_CHECKS,
                                      timeout=30)
    SENT["negative"] += 1
    SENT["negative_statuses"].add(response.status_code)


# --- what no schema describes ------------------------------------------------------

OPERATIONS = [(method.upper(), path) for path, ops in document()["paths"].items() for method in ops]
BODY_OPERATIONS = [(m, p) for m, p in OPERATIONS
                   if "requestBody" in document()["paths"][p][m.lower()]]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~%", min_size=0, max_size=12)


def fill(path: str, value: str) -> str:
    return re.sub(r"{\w+}", value, path)


def assert_sane(r: requests.Response, method: str) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if method != "HEAD":
        problem = error_shape_problem(r.status_code, r.text)
        assert problem is None, problem
        assert "Bearer" not in r.text and "eyJ" not in r.text, r.text[:300]  # no token echoed


@given(method=st.sampled_from(METHODS), parts=st.lists(segment, min_size=0, max_size=8),
       known=st.sampled_from(OPERATIONS), param=st.sampled_from(["", "x" * 200, "m-1", "%20", "a%2Fb"]),
       use_known=st.booleans(), with_token=st.booleans())
@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_any_path_and_method_answers_in_the_error_shape(live_server, admin_token, method, parts, known, param,
                                                        use_known, with_token):
    path = fill(known[1], param) if use_known else "/" + "/".join(parts)
    headers = {"Authorization": f"Bearer {admin_token}"} if with_token else {}
    r = requests.request(method, live_server["base"] + path, headers=headers, timeout=30)
    assert_sane(r, method)


def nested(depth: int, leaf) -> object:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
hostile_body = st.one_of(
    st.integers(min_value=1, max_value=5000).map(lambda d: "[" * d + "]" * d),
    st.integers(min_value=1, max_value=5000).map(lambda d: '{"a":' * d + "1" + "}" * d),
    st.tuples(st.integers(min_value=50, max_value=1500), json_leaf).map(lambda t: json.dumps(nested(*t))),
    st.integers(min_value=100_000, max_value=600_000).map(lambda n: json.dumps({"member_id": "x" * n})),
    st.integers(min_value=1000, max_value=60_000).map(lambda n: json.dumps({"items": [{"sku": "s", "amount": 1}] * n})),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    st.dictionaries(st.text(max_size=10), json_leaf, max_size=20).map(json.dumps),
)
hostile_headers = st.fixed_dictionaries({}, optional={
    "Idempotency-Key": st.one_of(st.just(""), st.text(alphabet="ab-", min_size=129, max_size=6000),
                                 st.just("with space"), st.just("k")),
    "X-Loyalty-Now": st.sampled_from(["9999-12-31T23:59:59Z", "0001-01-01", "nonsense", "2026-01-01T00:00:00Z",
                                      "2100-01-01", "1999-12-31T23:59:59Z"]),
    "Content-Type": st.sampled_from(["application/json", "text/plain", "application/xml", "multipart/form-data"]),
})


@given(op=st.sampled_from(BODY_OPERATIONS), body=hostile_body, headers=hostile_headers,
       role=st.sampled_from(["admin", "service", "member"]))
@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_nested_huge_and_malformed_bodies_never_reach_a_5xx(live_server, tokens, op, body, headers, role):
    method, path = op
    r = requests.request(method, live_server["base"] + fill(path, "fuzz-member"), data=body.encode("utf-8"),
                         headers={"Authorization": f"Bearer {tokens[role]}", **headers}, timeout=60)
    assert_sane(r, method)


@pytest.fixture(scope="module")
def tokens():
    from chalicelib.auth import mint_token

    return {"admin": mint_token("admin", "fuzzer"), "service": mint_token("service", "fuzz-pos"),
            "member": mint_token("member", "fuzz-member")}


def test_zz_the_fuzzer_really_exercised_the_server():
    """Guards against a vacuous run: many requests went out, with both successes and 4xx."""
    operations = len(OPERATIONS)
    assert SENT["requests"] >= 3 * operations
    assert any(200 <= s < 300 for s in SENT["statuses"]) and any(400 <= s < 500 for s in SENT["statuses"])
    assert SENT["negative"] >= operations
    assert any(400 <= s < 500 for s in SENT["negative_statuses"])
