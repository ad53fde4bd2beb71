def test_job_runs_via_api(api):
    api.enrol("j1")
    r = api.post("/v1/admin/jobs", {"job": "expire-points", "as_of": "2030-01-01"}, role="admin")
    assert r.status == 202, r.body
    job = api.get(f"/v1/admin/jobs/{r.body['job_id']}", role="admin").body
    assert job["status"] == "succeeded", job
    assert job["counts"]["scanned"] == 1
    r = api.post("/v1/admin/jobs", {"job": "nope"}, role="admin")
    assert r.status == 400 and r.error == "VALIDATION_ERROR"
