"""Member routes (SPEC 4.4): enrol, read, patch, close, ledger; exact statuses and error codes."""
import base64
import json


from chalicelib.domain.codes import CROCKFORD
from tests.factories import assert_invariant

NOW = "2026-04-01T09:00:00Z"


def fields_of(r) -> set:
    return {f["field"] for f in r.body["error"]["details"]["fields"]}


class TestEnrol:
    def test_created_with_every_field_of_the_member_shape(self, api):
        r = api.post("/v1/members", {"member_id": "alice", "name": "Alice", "email": "alice@example.com",
                                     "birthday": "02-29", "locale": "en-US", "consents": {"email": True}}, now=NOW)
        assert r.status == 201, r.body
        code = r.body.pop("referral_code")
        assert len(code) == 8 and set(code) <= set(CROCKFORD)
        assert r.body == {
            "member_id": "alice", "name": "Alice", "email": "alice@example.com", "birthday": "02-29",
            "locale": "en-US", "consents": {"email": True, "push": False, "sms": False}, "status": "active",
            "enrolled_at": NOW, "referred_by": None,
            "points": {"available": 0, "pending": 0, "held": 0, "lifetime_earned": 0, "lifetime_spent": 0,
                       "expiring_soon": []},
            "tier": {"tier_id": "bronze", "name": "Bronze", "multiplier": "1.0", "qualifying_spend": 0,
                     "next_tier": "silver", "spend_to_next_tier": 50000, "retained_until": None},
            "segment": None,
        }
        assert api.member("alice") == {**r.body, "referral_code": code}

    def test_defaults(self, api):
        body = api.enrol("bare")
        assert (body["name"], body["email"], body["birthday"], body["locale"]) == (None, None, None, "ja-JP")
        assert body["consents"] == {"email": False, "push": False, "sms": False}

    def test_existing_id_is_409_already_exists(self, api):
        api.enrol("dup", name="First")
        r = api.post("/v1/members", {"member_id": "dup", "name": "Second"})
        assert (r.status, r.error) == (409, "ALREADY_EXISTS")
        assert api.member("dup")["name"] == "First"

    def test_idempotency_key_replays_and_detects_a_different_payload(self, api):
        key = {"Idempotency-Key": "enrol-1"}
        first = api.post("/v1/members", {"member_id": "idem", "name": "I"}, headers=key)
        assert first.status == 201
        again = api.post("/v1/members", {"member_id": "idem", "name": "I"}, headers=key)
        assert again.status == 200 and again.body == first.body
        other = api.post("/v1/members", {"member_id": "idem", "name": "J"}, headers=key)
        assert (other.status, other.error) == (409, "IDEMPOTENCY_MISMATCH")
        no_key = api.post("/v1/members", {"member_id": "idem", "name": "I"})
        assert (no_key.status, no_key.error) == (409, "ALREADY_EXISTS")

    INVALID = [
        ({"member_id": "has/slash"}, "member_id"),
        ({"member_id": "x" * 65}, "member_id"),
        ({"member_id": ""}, "member_id"),
        ({"name": "no id"}, "member_id"),
        ({"member_id": "v1", "birthday": "13-01"}, "birthday"),
        ({"member_id": "v1", "birthday": "02-30"}, "birthday"),
        ({"member_id": "v1", "email": "not-an-email"}, "email"),
        ({"member_id": "v1", "consents": {"email": "maybe"}}, "consents.email"),
        ({"member_id": "v1", "consents": {"fax": True}}, "consents.fax"),
        ({"member_id": "v1", "nickname": "unknown field"}, "nickname"),
    ]

    def test_invalid_bodies_are_400_with_field_details(self, api, subtests):
        for body, field in self.INVALID:
            with subtests.test(body=body):
                r = api.post("/v1/members", body)
                assert (r.status, r.error) == (400, "VALIDATION_ERROR"), r.body
                assert field in fields_of(r)
        assert api.get("/v1/members/v1").error == "MEMBER_NOT_FOUND"

    def test_a_body_that_is_not_a_json_object_is_400(self, api, subtests):
        for raw in (b"{not json", b"[1, 2]", "\"text\"", b"\xff\xfe", b""):
            with subtests.test(raw=raw):
                r = api.post("/v1/members", raw)
                assert (r.status, r.error) == (400, "VALIDATION_ERROR"), r.body

    def test_a_member_token_may_enrol_only_its_own_sub(self, api):
        r = api.post("/v1/members", {"member_id": "someone-else"}, role="member", sub="me")
        assert (r.status, r.error) == (403, "FORBIDDEN")
        assert api.get("/v1/members/someone-else").error == "MEMBER_NOT_FOUND"
        assert api.post("/v1/members", {"member_id": "me"}, role="member", sub="me").status == 201

    def test_unknown_referral_code_is_400(self, api):
        r = api.post("/v1/members", {"member_id": "ref", "referral_code": "ZZZZZZZZ"})
        assert (r.status, r.error) == (400, "VALIDATION_ERROR") and fields_of(r) == {"referral_code"}
        assert api.get("/v1/members/ref").status == 404


class TestRead:
    def test_unknown_member_is_404(self, api):
        r = api.get("/v1/members/ghost")
        assert (r.status, r.error) == (404, "MEMBER_NOT_FOUND")
        assert r.body["error"]["details"] == {"member_id": "ghost"}

    def test_owner_service_admin_may_read_another_member_may_not(self, api):
        api.enrol("owner")
        api.enrol("other")
        assert api.get("/v1/members/owner", role="member", sub="owner").status == 200
        assert api.get("/v1/members/owner", role="service").status == 200
        assert api.get("/v1/members/owner", role="admin").status == 200
        r = api.get("/v1/members/owner", role="member", sub="other")
        assert (r.status, r.error) == (403, "FORBIDDEN")


class TestPatch:
    def test_consents_merge_and_profile_fields_update(self, api):
        api.enrol("p1", name="Old", consents={"email": True})
        r = api.patch("/v1/members/p1", {"consents": {"push": True}}, role="member", sub="p1")
        assert r.status == 200 and r.body["consents"] == {"email": True, "push": True, "sms": False}
        r = api.patch("/v1/members/p1", {"consents": {"email": False}, "name": "New", "birthday": "12-31"})
        assert r.body["consents"] == {"email": False, "push": True, "sms": False}
        assert (r.body["name"], r.body["birthday"], r.body["email"]) == ("New", "12-31", None)
        assert api.member("p1")["consents"] == {"email": False, "push": True, "sms": False}

    def test_status_is_for_service_and_admin_and_suspension_blocks_earning(self, api):
        api.enrol("p2")
        r = api.patch("/v1/members/p2", {"status": "suspended"}, role="member", sub="p2")
        assert (r.status, r.error) == (400, "VALIDATION_ERROR") and fields_of(r) == {"status"}
        assert api.patch("/v1/members/p2", {"status": "closed"}).status == 400  # only through /close
        r = api.patch("/v1/members/p2", {"status": "suspended"}, role="admin", sub="ops", now=NOW)
        assert r.status == 200 and r.body["status"] == "suspended"
        r = api.accrue("p2", 1000)
        assert (r.status, r.error) == (422, "MEMBER_INACTIVE")
        assert api.patch("/v1/members/p2", {"status": "active"}).body["status"] == "active"
        assert api.accrue("p2", 1000).status == 201
        audit = api.get("/v1/admin/audit", role="admin").body["items"]
        assert [(a["action"], a["actor"], a["details"]) for a in audit if a["target"] == "p2"] == [
            ("member.status", "service:svc", {"from": "suspended", "to": "active"}),
            ("member.status", "admin:ops", {"from": "active", "to": "suspended"}),
        ]
        assert_invariant("p2")

    def test_patch_errors(self, api):
        assert api.patch("/v1/members/ghost", {"name": "x"}).error == "MEMBER_NOT_FOUND"
        api.enrol("p3")
        api.enrol("p4")
        assert api.patch("/v1/members/p3", {"name": "x"}, role="member", sub="p4").status == 403
        r = api.patch("/v1/members/p3", {"email": "bad"})
        assert (r.status, fields_of(r)) == (400, {"email"})


class TestClose:
    def test_close_erases_personal_data_and_keeps_the_ledger_amounts(self, api):
        code = api.enrol("c1", name="Carol", email="carol@example.com", birthday="07-04",
                         consents={"email": True, "sms": True})["referral_code"]
        api.accrue("c1", 10000, order_id="c1-o1")
        assert api.adjust("c1", 25, reason="goodwill").status == 201
        before = api.ledger("c1")
        r = api.post("/v1/members/c1/close", role="member", sub="c1", now=NOW)
        assert r.status == 200
        assert (r.body["status"], r.body["name"], r.body["email"], r.body["birthday"], r.body["referral_code"]) == \
            ("closed", None, None, None, None)
        assert r.body["consents"] == {"email": False, "push": False, "sms": False}
        assert r.body["points"]["available"] == 125
        after = api.ledger("c1")
        assert [(e["type"], e["points"], e["balance_after"], e["reference"]) for e in after] == \
            [(e["type"], e["points"], e["balance_after"], e["reference"]) for e in before]
        stored = json.dumps(after) + json.dumps(api.member("c1"))
        assert "Carol" not in stored and "carol@example.com" not in stored and "07-04" not in stored
        # closed is final: no earning, no profile changes, the referral code is released
        assert api.accrue("c1", 1000).error == "MEMBER_INACTIVE"
        assert api.patch("/v1/members/c1", {"name": "Back"}).error == "MEMBER_INACTIVE"
        r = api.post("/v1/members", {"member_id": "new", "referral_code": code})
        assert (r.status, r.error) == (400, "VALIDATION_ERROR")
        again = api.post("/v1/members/c1/close", role="admin")
        assert again.status == 200 and again.body == api.member("c1")
        audit = [a for a in api.get("/v1/admin/audit", role="admin").body["items"] if a["action"] == "member.close"]
        assert [(a["actor"], a["target"], a["at"]) for a in audit] == [("member:c1", "c1", NOW)]
        assert_invariant("c1")

    def test_close_roles(self, api):
        api.enrol("c2")
        assert api.post("/v1/members/c2/close", role="service").status == 403
        assert api.post("/v1/members/c2/close", role="member", sub="c3").status == 403
        assert api.post("/v1/members/ghost/close", role="admin").error == "MEMBER_NOT_FOUND"
        assert api.post("/v1/members/c2/close", role="admin").body["status"] == "closed"


class TestLedger:
    def test_pages_newest_first_with_cursor(self, api):
        api.enrol("l1")
        for i in range(1, 26):
            assert api.accrue("l1", 100 * i, order_id=f"l1-o{i}").status == 201
        seen, cursor, pages = [], None, 0
        while True:
            r = api.get("/v1/members/l1/ledger?limit=10" + (f"&cursor={cursor}" if cursor else ""),
                        role="member", sub="l1")
            assert r.status == 200
            seen += r.body["items"]
            pages += 1
            cursor = r.body["next_cursor"]
            if not cursor:
                break
        assert pages == 3
        assert [e["reference"]["order_id"] for e in seen] == [f"l1-o{i}" for i in range(25, 0, -1)]
        assert [e["points"] for e in seen] == list(range(25, 0, -1))
        assert seen[0]["balance_after"] == sum(range(1, 26)) and seen[-1]["balance_after"] == 1
        assert seen[0] == {"entry_id": "le_l1_25", "member_id": "l1", "type": "earn", "points": 25,
                           "balance_after": 325, "occurred_at": seen[0]["recorded_at"],
                           "recorded_at": seen[0]["recorded_at"], "reference": {"order_id": "l1-o25"},
                           "actor": "service:svc", "note": None}
        assert len(api.get("/v1/members/l1/ledger").body["items"]) == 20  # default limit
        assert_invariant("l1")

    def test_bad_limit_or_cursor_is_400(self, api, subtests):
        api.enrol("l2")
        for query in ("limit=0", "limit=101", "limit=abc", "limit=-1", "limit=", "cursor=!!!"):
            with subtests.test(query=query):
                r = api.get(f"/v1/members/l2/ledger?{query}")
                assert (r.status, r.error) == (400, "VALIDATION_ERROR"), r.body

    def test_a_cursor_of_another_member_or_forged_is_400_not_500(self, api):
        api.enrol("l3")
        api.enrol("l4")
        for i in range(3):
            api.accrue("l3", 1000)
            api.accrue("l4", 1000)
        cursor = api.get("/v1/members/l4/ledger?limit=1").body["next_cursor"]
        r = api.get(f"/v1/members/l3/ledger?limit=1&cursor={cursor}")
        assert (r.status, r.error) == (400, "VALIDATION_ERROR")
        forged = base64.urlsafe_b64encode(json.dumps({"member_id": {"S": "l3"}, "seq": {"S": "x"}}).encode())
        assert api.get(f"/v1/members/l3/ledger?cursor={forged.decode().rstrip('=')}").status == 400
        own = api.get("/v1/members/l3/ledger?limit=1").body["next_cursor"]
        assert [e["entry_id"] for e in api.get(f"/v1/members/l3/ledger?limit=5&cursor={own}").body["items"]] == \
            ["le_l3_2", "le_l3_1"]

    def test_unknown_member_and_other_members_ledger(self, api):
        assert api.get("/v1/members/ghost/ledger").error == "MEMBER_NOT_FOUND"
        api.enrol("l5")
        assert api.get("/v1/members/l5/ledger", role="member", sub="l6").status == 403
