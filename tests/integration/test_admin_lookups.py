"""Admin lookups (SPEC 4.5): members by email (exact, case-insensitive; the sparse by-email
index follows enrolment, profile changes and closing) and the whole rewards catalogue."""
from __future__ import annotations

M = "/v1/admin/members"


def ids(resp):
    assert resp.status == 200, resp.body
    return [m["member_id"] for m in resp.body["items"]]


def test_exact_case_insensitive_match_returns_members(api):
    api.enrol("e1", email="Hanako@Example.com", name="Hanako")
    api.enrol("e2", email="hanako@example.com")
    api.enrol("e3", email="hanako@example.co")
    api.enrol("e4")  # no email: not in the index
    r = api.get(M + "?email=HANAKO%40example.COM", role="admin")
    assert sorted(ids(r)) == ["e1", "e2"]
    member = [m for m in r.body["items"] if m["member_id"] == "e1"][0]
    assert (member["name"], member["email"], member["points"]["available"]) == ("Hanako", "Hanako@Example.com", 0)
    assert r.body["next_cursor"] is None
    assert ids(api.get(M + "?email=hanako", role="admin")) == []  # exact, not a prefix
    assert ids(api.get(M + "?email=%20hanako%40example.co%20", role="admin")) == ["e3"]  # trimmed


def test_a_changed_email_moves_in_the_index_and_closing_erases_it(api):
    api.enrol("c1", email="old@example.com")
    r = api.patch("/v1/members/c1", {"email": "New@example.com"})
    assert r.status == 200, r.body
    assert ids(api.get(M + "?email=old%40example.com", role="admin")) == []
    assert ids(api.get(M + "?email=new%40example.com", role="admin")) == ["c1"]
    assert api.post("/v1/members/c1/close", role="admin").status == 200
    assert ids(api.get(M + "?email=new%40example.com", role="admin")) == []
    from chalicelib.store.models import MemberRecord

    rec = MemberRecord.get("c1")
    assert rec.email_key is None and rec.profile["email"] is None  # nothing personal left in the index


def test_pages_and_cursors(api):
    for i in range(5):
        api.enrol(f"p{i}", email="shared@example.com")
    first = api.get(M + "?email=shared%40example.com&limit=2", role="admin")
    assert len(ids(first)) == 2 and first.body["next_cursor"]
    seen = ids(first)
    cursor = first.body["next_cursor"]
    while cursor:
        page = api.get(f"{M}?email=shared%40example.com&limit=2&cursor={cursor}", role="admin")
        seen += ids(page)
        cursor = page.body["next_cursor"]
    assert sorted(seen) == [f"p{i}" for i in range(5)]
    # a cursor of another email's list is refused
    api.enrol("q1", email="other@example.com")
    bad = api.get(f"{M}?email=other%40example.com&limit=2&cursor={first.body['next_cursor']}", role="admin")
    assert bad.error == "VALIDATION_ERROR"


def test_member_lookup_4xx(api):
    assert api.get(M, role="admin").error == "VALIDATION_ERROR"  # email is required
    assert api.get(M + "?email=", role="admin").error == "VALIDATION_ERROR"
    assert api.get(M + "?email=" + "a" * 255, role="admin").error == "VALIDATION_ERROR"
    assert api.get(M + "?email=a%40b.c&limit=0", role="admin").error == "VALIDATION_ERROR"
    assert api.get(M + "?email=a%40b.c&cursor=forged", role="admin").error == "VALIDATION_ERROR"
    assert api.get(M + "?name=x", role="admin").error == "VALIDATION_ERROR"
    assert api.get(M + "?email=a%40b.c", role="service").error == "FORBIDDEN"
    assert api.get(M + "?email=a%40b.c", role="member", sub="m1").error == "FORBIDDEN"
    assert api.get(M + "?email=a%40b.c", role=None).error == "UNAUTHENTICATED"


def _reward(api, reward_id, **fields):
    body = {"reward_id": reward_id, "name": reward_id, "cost_points": 10, "kind": "voucher", **fields}
    r = api.post("/v1/admin/rewards", body, role="admin")
    assert r.status == 201, r.body


def test_every_reward_with_remaining_inactive_ones_too(api):
    _reward(api, "b-on", stock=3)
    _reward(api, "a-off", active=False)
    _reward(api, "c-later", starts_at="2099-01-01T00:00:00Z", stock=1)
    api.enrol("rw", email=None)
    assert api.adjust("rw", 50).status == 201
    r = api.post("/v1/members/rw/redemptions", {"reward_id": "b-on"})
    assert r.status == 201, r.body
    public = api.get("/v1/rewards").body["items"]
    assert [x["reward_id"] for x in public] == ["b-on"]
    r = api.get("/v1/admin/rewards", role="admin")
    assert r.status == 200, r.body
    got = {x["reward_id"]: (x["active"], x["stock"], x["remaining"]) for x in r.body["items"]}
    assert list(got) == ["a-off", "b-on", "c-later"]
    assert got == {"a-off": (False, None, None), "b-on": (True, 3, 2), "c-later": (True, 1, 1)}
    first = api.get("/v1/admin/rewards?limit=2", role="admin").body
    assert [x["reward_id"] for x in first["items"]] == ["a-off", "b-on"]
    rest = api.get(f"/v1/admin/rewards?limit=2&cursor={first['next_cursor']}", role="admin").body
    assert [x["reward_id"] for x in rest["items"]] == ["c-later"] and rest["next_cursor"] is None


def test_rewards_list_4xx(api):
    assert api.get("/v1/admin/rewards", role="service").error == "FORBIDDEN"
    assert api.get("/v1/admin/rewards", role="member", sub="x").error == "FORBIDDEN"
    assert api.get("/v1/admin/rewards?limit=101", role="admin").error == "VALIDATION_ERROR"
    assert api.get("/v1/admin/rewards?cursor=abc", role="admin").error == "VALIDATION_ERROR"
    assert api.get("/v1/admin/rewards?active=true", role="admin").error == "VALIDATION_ERROR"


def test_members_written_before_the_index_are_found_after_the_backfill(api):
    from chalicelib.jobs import framework
    from chalicelib.store.models import MemberRecord

    api.enrol("old1", email="Old.One@example.com")
    api.enrol("old2")
    rec = MemberRecord.get("old1")
    rec.update(actions=[MemberRecord.email_key.remove()])  # as written before the index existed
    assert ids(api.get(M + "?email=old.one%40example.com", role="admin")) == []
    version = int(MemberRecord.get("old1").version)
    job = framework.create("index-member-emails", framework.parse_as_of(None), actor="test", segments=2)
    done = framework.execute(job["job_id"])
    assert (done["status"], done["counts"].get("reindexed")) == ("succeeded", 1)  # old2 has no email
    assert ids(api.get(M + "?email=old.one%40example.com", role="admin")) == ["old1"]
    assert int(MemberRecord.get("old1").version) == version + 1
    again = framework.execute(framework.create("index-member-emails", framework.parse_as_of(None),
                                               actor="test")["job_id"])
    assert again["counts"].get("reindexed", 0) == 0  # nothing left to do
    from tests.factories import assert_invariant

    assert_invariant("old1")


def test_bootstrap_adds_the_index_to_a_members_table_kept_from_before(aws_env):
    from moto import mock_aws

    with mock_aws():
        from chalicelib.bootstrap import bootstrap
        from chalicelib.store.base import dynamodb_client
        from chalicelib.store.models import MemberRecord

        client = dynamodb_client()
        name = MemberRecord.table_name()
        client.create_table(TableName=name, KeySchema=[{"AttributeName": "member_id", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "member_id", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")  # the table as an older version made it
        created = bootstrap()["tables"]
        assert f"{name}/by-email" in created and f"{name}/by-segment" in created and name not in created
        indexes = {i["IndexName"] for i in client.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"]}
        assert indexes == {"by-email", "by-segment"}
        assert bootstrap()["tables"] == []  # nothing more to add
