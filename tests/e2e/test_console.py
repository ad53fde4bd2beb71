"""The console (SPEC 5) in a real headless Chromium against the real local server.

Journeys: sign in with the token the local stage offers, read the overview, find a
member by id, adjust points through the confirmation and see the ledger and the audit
log change, create a coupon campaign and issue it, dry-run and send a broadcast, and
see the API's validation error at a settings field. Screenshots are kept in
build/console-screenshots/ as test artefacts. Without Chromium the tests skip, except
in CI (CI=true), where a missing browser fails them.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest
import requests

from tests.e2e.conftest import ROOT, free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SHOTS = os.path.join(ROOT, "build", "console-screenshots")
RUN = uuid.uuid4().hex[:6]


def _browser_or_skip():
    missing = [name for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not path]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        message = "the console's browser tests need " + " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI must install them: .ci/run)")
        pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1366,900", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    os.makedirs(SHOTS, exist_ok=True)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def console_server():
    """A local server of its own: the session's shared one is judged by tests that count
    everything in its emulator (expire-points totals), which the console's data would change."""
    port, emulator_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "LOYALTY_JWT_SECRET")}
    env["LOYALTY_STAGE"] = "local"
    proc = subprocess.Popen([sys.executable, "-m", "chalicelib.local", "run", "--port", str(port),
                             "--emulator-port", str(emulator_port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        assert proc.poll() is None, "the local server exited"
        try:
            if requests.get(base + "/v1/health", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.2)
        if time.time() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise RuntimeError("the local server did not start in 90 s")
    yield {"base": base}
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def api(console_server, admin_token):
    """Seeds data through the public API, as the shop and the admin would."""
    from chalicelib.auth import mint_token

    base = console_server["base"] + "/v1"
    service = {"Authorization": "Bearer " + mint_token("service", "pos-console")}
    admin = {"Authorization": "Bearer " + admin_token}
    member_id = f"console-{RUN}"
    r = requests.post(base + "/members", headers=service, timeout=30,
                      json={"member_id": member_id, "name": "Hana Console", "email": f"{member_id}@example.com",
                            "consents": {"email": True}})
    assert r.status_code == 201, r.text
    r = requests.post(f"{base}/members/{member_id}/accruals", headers=service, timeout=30,
                      json={"order_id": f"o-{RUN}", "total_amount": 50000, "currency": "JPY"})
    assert r.status_code == 201, r.text
    r = requests.post(base + "/admin/jobs", headers=admin, json={"job": "score-rfm"}, timeout=60)
    assert r.status_code == 202, r.text
    return {"base": console_server["base"], "member_id": member_id, "admin": admin, "service": service}


def wait(driver, css, timeout=20, text=None):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def found(d):
        for el in d.find_elements(By.CSS_SELECTOR, css):
            if el.is_displayed() and (text is None or text in el.text):
                return el
        return False

    # Pages re-render after every action: an element found just before may be replaced.
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(found, f"no visible {css!r}" + (f" with {text!r}" if text else ""))


def fill(driver, css, value):
    el = wait(driver, css)
    el.clear()
    el.send_keys(str(value))
    return el


def confirm(driver):
    wait(driver, "dialog.confirm [data-confirm=yes]").click()


def shot(driver, name):
    driver.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def csp_violations(driver):
    return [e["message"] for e in driver.get_log("browser")
            if "Content Security Policy" in e["message"] or "Refused to" in e["message"]]


@pytest.fixture(autouse=True)
def no_csp_violations(request):
    """Every browser test ends with Chromium's log free of Content-Security-Policy refusals."""
    yield
    if "browser" in request.fixturenames:
        assert csp_violations(request.getfixturevalue("browser")) == []


def test_console_is_served_with_a_strict_csp(console_server):
    base = console_server["base"]
    r = requests.get(base + "/console", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp and "<script>" not in r.text and "style=" not in r.text
    assert requests.get(base + "/console/assets/app.js", timeout=10).headers["Content-Type"].startswith("text/javascript")
    assert requests.get(base + "/console/assets/nope.js", timeout=10).status_code == 404
    config = requests.get(base + "/console/config.json", timeout=10)
    assert config.headers["Cache-Control"] == "no-store" and config.json()["stage"] == "local"


def test_config_offers_a_token_only_in_the_local_stage(monkeypatch):
    import json
    from types import SimpleNamespace

    from chalicelib import config
    from chalicelib.api import console

    monkeypatch.setattr(config, "get_settings", lambda: SimpleNamespace(is_local=False))
    response = console.console_config()
    assert json.loads(response.body) == {"api_base": "", "stage": "production"}
    assert console.console_asset("../app.py").status_code == 404
    assert console.console_page("..%2f..%2fapp.py").status_code == 404


def test_sign_in_and_overview(browser, api):
    browser.get(api["base"] + "/console")
    wait(browser, "#use-local-token").click()
    wait(browser, "#sign-in").click()
    wait(browser, "[data-page=overview] h1", text="Program overview")
    segments = requests.get(api["base"] + "/v1/admin/segments", headers=api["admin"], timeout=30).json()
    scored = wait(browser, ".stat", text="Members scored")
    assert f"{segments['scored']:,}" in scored.text
    assert "token" not in browser.current_url.lower()
    shot(browser, "overview")


def test_member_page_adjust_points_ledger_and_audit(browser, api):
    member_id = api["member_id"]
    browser.get(api["base"] + "/console#/members")
    fill(browser, "input[name=member_id]", member_id)
    wait(browser, "#find-member").click()
    wait(browser, "[data-page=member] h1", text="Hana Console")
    before = requests.get(f"{api['base']}/v1/members/{member_id}", headers=api["admin"], timeout=30).json()["points"]["available"]
    assert f"{before:,}" in wait(browser, "#points").text

    fill(browser, "#adjust-form input[name=points]", 250)
    fill(browser, "#adjust-form input[name=reason]", "goodwill after a late delivery")
    wait(browser, "#adjust-form button[type=submit]").click()
    wait(browser, "dialog.confirm", text="Add 250 points")
    confirm(browser)
    wait(browser, "td", text="+250", timeout=30)
    assert f"{before + 250:,}" in wait(browser, "#points").text
    entries = requests.get(f"{api['base']}/v1/members/{member_id}/ledger", headers=api["admin"], timeout=30).json()["items"]
    assert entries[0]["type"] == "adjust" and entries[0]["points"] == 250
    shot(browser, "member")

    browser.get(api["base"] + "/console#/audit")
    wait(browser, "#audit td", text=member_id)


def test_find_member_by_email_or_say_it_is_not_available(browser, api):
    paths = requests.get(api["base"] + "/v1/openapi.json", timeout=30).json()["paths"]
    browser.get(api["base"] + "/console#/members")
    if "get" not in paths.get("/v1/admin/members", {}):  # SPEC 4.5's route is not on this server yet
        wait(browser, "[data-not-available]", text="Not available on this server")
        return
    fill(browser, "input[name=email]", f"{api['member_id'].upper()}@EXAMPLE.COM")
    wait(browser, "#find-email").click()
    wait(browser, ".results a", text=api["member_id"]).click()
    wait(browser, "[data-page=member] h1", text="Hana Console")


def test_start_a_job_and_see_its_counts(browser, api):
    browser.get(api["base"] + "/console#/jobs")
    select = wait(browser, "#job-form select[name=job]")
    from selenium.webdriver.support.ui import Select

    Select(select).select_by_value("score-rfm")
    wait(browser, "#job-form button[type=submit]").click()
    wait(browser, "#job-current [data-status=succeeded]", timeout=60, text="scored")


def test_coupon_campaign_create_and_issue(browser, api):
    campaign_id = f"spring-{RUN}"
    browser.get(api["base"] + "/console#/coupons")
    fill(browser, "#coupon-create input[name=campaign_id]", campaign_id)
    fill(browser, "#coupon-create input[name=name]", "Spring ten percent")
    wait(browser, "#coupon-create button[type=submit]").click()
    wait(browser, "[data-page=coupon] h1", text="Spring ten percent")
    fill(browser, "#codes-form input[name=count]", 5)
    wait(browser, "#codes-form button[type=submit]").click()
    wait(browser, "#coupon-stats", text="5")
    fill(browser, "#issue-form textarea[name=member_ids]", api["member_id"])
    wait(browser, "#issue-form button[type=submit]").click()
    confirm(browser)
    wait(browser, "#issue-result", text="issued")
    coupons = requests.get(f"{api['base']}/v1/members/{api['member_id']}/coupons", headers=api["admin"], timeout=30).json()
    assert [c["campaign_id"] for c in coupons["items"]] == [campaign_id]
    shot(browser, "coupon")


def test_broadcast_dry_run_then_send(browser, api):
    browser.get(api["base"] + "/console#/messages")
    fill(browser, "#message-form input[name=name]", f"Spring news {RUN}")
    fill(browser, "#message-form input[name=template]", "spring_news")
    fill(browser, "#message-form input[name='audience.member_ids']", api["member_id"])
    wait(browser, "#dry-run").click()
    wait(browser, "#dry-run-result .stat", text="Audience")
    assert "1" in wait(browser, "#dry-run-result .stat").text
    wait(browser, "#send").click()
    confirm(browser)
    wait(browser, "[data-page=message] h1", text=f"Spring news {RUN}", timeout=30)
    wait(browser, "[data-page=message]", text="Results")
    shot(browser, "message")


def test_settings_validation_error_is_shown_at_the_field(browser, api):
    browser.get(api["base"] + "/console#/settings")
    fill(browser, "#settings-form input[name=pending_days]", -5)
    wait(browser, "#save-settings").click()
    confirm(browser)
    error = wait(browser, "[data-error-for=pending_days]")
    assert error.text, "the API's message is shown at the field"
    assert wait(browser, "input[name=pending_days]").get_attribute("aria-invalid") == "true"
    shot(browser, "settings-error")
    settings = requests.get(api["base"] + "/v1/admin/settings", headers=api["admin"], timeout=30).json()
    assert settings["pending_days"] >= 0


def test_tablet_layout(browser, api):
    browser.set_window_size(820, 1180)
    try:
        browser.get(api["base"] + f"/console#/members/{api['member_id']}")
        wait(browser, "[data-page=member] h1", text="Hana Console")
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 820, "no horizontal scrolling on a tablet"
        shot(browser, "member-tablet")
    finally:
        browser.set_window_size(1366, 900)
