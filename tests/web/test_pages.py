"""The self-service and admin pages in a real browser (Debian's Chromium via Playwright)."""

from __future__ import annotations

import base64
import re

import pyotp

from keyfob.burn.burner import BurnOptions, burn
from keyfob.burn.ui import SilentUi
from keyfob.formats import qr
from keyfob.otp import parse_otpauth, parse_secret
from keyfob.server import accounts, inventory
from keyfob.server.validation import validate
from keyfob.token.emulator import create
from keyfob.token.memory import MemoryConnection
from keyfob.token.models import by_name
from testkit import activate_app, wrong_code

from .conftest import ARTIFACTS, NEW_PASSWORD, PASSWORD, first_sign_in, shot, sign_in


def test_user_adds_an_app_and_signs_in_with_password_and_code(page, live) -> None:
    accounts.create_user(live.ctx, "alice@example.com", password=PASSWORD)
    page.goto(f"{live.url}/login")
    shot(page, "login")
    first_sign_in(page, live, "alice@example.com")
    assert "no sign-in method yet" in page.content()
    shot(page, "home-empty")
    page.get_by_role("button", name="Add authenticator app").click()
    page.wait_for_url(re.compile(r".*/methods/.+/setup"))
    shot(page, "setup-app")
    png = ARTIFACTS / "qr-app.png"
    page.locator("figure.qr").screenshot(path=str(png))
    (uri,) = qr.decode_image(png)  # keyfob's own decoder reads the browser's rendering
    cred = parse_otpauth(uri)
    assert cred.account == "alice@example.com"
    key = page.locator("#manual-key").inner_text().replace(" ", "")
    assert parse_secret(key) == cred.secret
    assert page.locator("[data-expires-in]").inner_text() in ("10:00", "9:59", "9:58")  # countdown
    page.get_by_label("Code shown by the app").fill(cred.code(at=live.clock.now))
    page.get_by_role("button", name="Verify now").click()
    page.wait_for_url(re.compile(r".*/\?notice=added"))
    assert "Authenticator app" in page.content()
    shot(page, "home-with-app")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/login\?notice=signed-out"))
    sign_in(page, live, "alice@example.com", NEW_PASSWORD)
    page.wait_for_url(f"{live.url}/login/code")
    shot(page, "login-code")
    page.get_by_label("Code").fill(cred.code(at=live.clock.now))  # replayed: refused
    page.get_by_role("button", name="Continue").click()
    assert "not accepted" in page.content()
    live.clock.advance(30)
    page.get_by_label("Code").fill(cred.code(at=live.clock.now))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{live.url}/")
    assert "My sign-in methods" in page.content()


def test_hardware_token_enrolment_with_an_emulated_token(page, live) -> None:
    accounts.create_user(live.ctx, "bob@example.com", password=PASSWORD)
    first_sign_in(page, live, "bob@example.com")
    page.get_by_role("button", name="Add hardware token").click()
    page.wait_for_url(re.compile(r".*/methods/.+/setup"))
    shot(page, "setup-hardware")
    png = ARTIFACTS / "qr-hardware.png"
    page.locator("figure.qr").screenshot(path=str(png))
    cred = parse_otpauth(qr.decode_image(png)[0])
    card = create(by_name("C302"), host_clock=live.clock, clock_offset=-3600)
    result = burn(MemoryConnection(card), cred, BurnOptions(), SilentUi(), live.clock)
    page.get_by_label("Token serial number").fill(result.serial)
    page.get_by_label("Code shown by the token").fill(card.press())
    page.get_by_role("button", name="Verify now").click()
    page.wait_for_url(re.compile(r".*/\?notice=added"))
    assert f"serial {result.serial}" in page.content()
    shot(page, "home-with-token")


PSKC_BAD = f"""<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">
  <KeyPackage><DeviceInfo><SerialNo>GOOD-1</SerialNo></DeviceInfo>
    <Key Id="GOOD-1" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp">
      <Data><Secret><PlainValue>{base64.b64encode(b"12345678901234567890").decode()}</PlainValue></Secret>
      <TimeInterval><PlainValue>30</PlainValue></TimeInterval></Data></Key></KeyPackage>
  <KeyPackage><DeviceInfo><SerialNo>BAD-2</SerialNo></DeviceInfo>
    <Key Id="BAD-2" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc#OCRA-1">
      <Data><Secret><PlainValue>{base64.b64encode(b"abcdefghijabcdefghij").decode()}</PlainValue></Secret></Data></Key></KeyPackage>
</KeyContainer>
"""
PSKC_GOOD = PSKC_BAD.split("  <KeyPackage><DeviceInfo><SerialNo>BAD-2")[0] + "</KeyContainer>\n"


def test_admin_imports_assigns_unlocks_and_audits(page, live, tmp_path) -> None:
    _, admin_pw = accounts.ensure_first_admin(live.ctx)
    accounts.create_user(live.ctx, "carol@example.com", password=PASSWORD)
    first_sign_in(page, live, "admin", admin_pw, screenshot=None)

    bad, good = tmp_path / "vendor-bad.pskcxml", tmp_path / "vendor.pskcxml"
    bad.write_text(PSKC_BAD)
    good.write_text(PSKC_GOOD)
    page.goto(f"{live.url}/admin/import")
    page.get_by_label("Seed file").set_input_files(str(bad))
    page.get_by_role("button", name="Preview (dry run)").click()
    row = page.locator("tr.row-error")
    assert row.count() == 1
    assert "key 2" in row.inner_text() and "not HOTP or TOTP" in row.inner_text()
    assert "nothing was imported" in page.content()
    shot(page, "admin-import-preview")
    page.get_by_label("Seed file").set_input_files(str(good))
    page.get_by_role("button", name="Import", exact=True).click()
    assert "Imported 1 token(s)" in page.content()

    page.goto(f"{live.url}/admin/tokens")
    page.get_by_label("Assign GOOD-1 to").fill("carol@example.com")
    page.get_by_role("button", name="Assign").click()
    page.wait_for_url(re.compile(r".*notice=assigned"))
    assert "carol@example.com" in page.locator("table.tokens").inner_text()
    shot(page, "admin-tokens")

    wrong = wrong_code(b"12345678901234567890", at=live.clock.now)  # GOOD-1's seed
    for _ in range(5):  # carol's token gets locked by wrong codes
        assert validate(live.ctx, "carol@example.com", wrong).reason == "wrong_code"
    page.goto(f"{live.url}/admin/users/carol@example.com")
    assert "locked" in page.content()
    shot(page, "admin-user-locked")
    page.get_by_role("button", name="Unlock").click()
    page.wait_for_url(re.compile(r".*notice=unlocked"))
    assert "locked (" not in page.content()

    page.goto(f"{live.url}/admin/audit")
    log = page.locator("table.audit").inner_text()
    for action in ("token.import", "token.assign", "token.lockout", "token.unlock"):
        assert action in log, action
    shot(page, "admin-audit")
    page.goto(f"{live.url}/admin/users")
    shot(page, "admin-users")
    page.goto(f"{live.url}/admin/apikeys")
    page.get_by_label("What it is for").fill("VPN")
    page.get_by_role("button", name="Create key").click()
    vpn_key = page.locator("#new-key").inner_text()
    assert vpn_key.startswith("kf_")
    shot(page, "admin-apikeys")
    assert accounts.check_api_key(live.ctx, vpn_key) is not None
    page.get_by_role("button", name="Revoke VPN").click()
    page.wait_for_url(re.compile(r".*notice=key-revoked"))
    assert "revoked 20" in page.locator("table.apikeys").inner_text()
    assert accounts.check_api_key(live.ctx, vpn_key) is None


def test_csrf_and_cookie_flags(page, live) -> None:
    accounts.create_user(live.ctx, "dave@example.com", password=PASSWORD)
    first_sign_in(page, live, "dave@example.com")
    cookie = next(c for c in page.context.cookies() if c["name"] == "kf_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # plain http on loopback; https sets Secure (below)
    # A form post without the CSRF token, with a valid session: refused, nothing done.
    resp = page.request.post(f"{live.url}/methods/new", form={"kind": "app"})
    assert resp.status == 403
    resp = page.request.post(f"{live.url}/methods/new", form={"kind": "app", "csrf": "forged"})
    assert resp.status == 403
    page.goto(f"{live.url}/")
    assert "no sign-in method yet" in page.content()
    # Security headers on every page
    resp = page.request.get(f"{live.url}/")
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert resp.headers["x-frame-options"] == "DENY"


def test_secure_cookie_behind_tls(live) -> None:
    from fastapi.testclient import TestClient

    from keyfob.server.api.app import create_app

    accounts.create_user(live.ctx, "erin@example.com", password=PASSWORD)
    client = TestClient(create_app(live.ctx), base_url="https://keyfob.example")
    form = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    resp = client.post(
        "/login",
        data={"username": "erin@example.com", "password": PASSWORD, "csrf": token},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert "Secure" in resp.headers["set-cookie"] and "HttpOnly" in resp.headers["set-cookie"]


def test_login_rate_limit(page, live) -> None:
    accounts.create_user(live.ctx, "frank@example.com", password=PASSWORD)
    for _ in range(5):
        sign_in(page, live, "frank@example.com", "wrong-password-x")
        assert "wrong" in page.content()
    sign_in(page, live, "frank@example.com", PASSWORD)
    assert "Too many attempts" in page.content()


def test_phone_layout(browser, live) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    pg = context.new_page()
    pg.goto(f"{live.url}/login")
    width = pg.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / "login-phone.png"), full_page=True)
    context.close()


def test_claim_resync_and_remove_a_classic_token_keyboard_only(page, live) -> None:
    from keyfob.otp import hotp
    from keyfob.server import inventory
    from keyfob.server.store.records import TokenFilter

    key = b"classic-token-seed!!"
    inventory.import_seeds(
        live.ctx, f"HW-77, {key.hex()}, totp, 6, 30\n".encode(), source="stock.csv", actor="test"
    )
    accounts.create_user(live.ctx, "gina@example.com", password=PASSWORD)
    # Keyboard only: the username field has focus, Tab moves on, Enter submits.
    page.goto(f"{live.url}/login")
    page.keyboard.type("gina@example.com")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live.url}/password")
    page.keyboard.type(NEW_PASSWORD)
    page.keyboard.press("Tab")
    page.keyboard.type(NEW_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/\?notice=password"))

    step = int(live.clock.now // 30)
    page.goto(f"{live.url}/methods/claim")
    shot(page, "claim")
    page.get_by_label("Serial number").fill("HW-77")
    page.get_by_label("Code shown").fill(wrong_code(key, step=step))
    page.get_by_role("button", name="Add token").click()
    assert "serial or code not accepted" in page.content()
    page.get_by_label("Code shown").fill(hotp(key, step))
    page.get_by_role("button", name="Add token").click()
    page.wait_for_url(re.compile(r".*/\?notice=added"))
    assert "serial HW-77" in page.content()

    # The token's clock ran 20 minutes fast: resync with two consecutive codes.
    method_id = page.get_by_role("link", name="Codes not working?").get_attribute("href")
    method_id = method_id.split("/")[2]
    page.goto(f"{live.url}/methods/{method_id}/resync")
    shot(page, "resync")
    page.get_by_label("First code").fill(hotp(key, step + 40))
    page.get_by_label("Next code").fill(hotp(key, step + 41))
    page.get_by_role("button", name="Fix my codes").click()
    page.wait_for_url(re.compile(r".*/\?notice=resynced"))

    page.goto(f"{live.url}/methods/{method_id}/remove")
    shot(page, "remove")
    page.get_by_label("or your password").fill("not my password")
    page.get_by_role("button", name="Remove").click()
    assert "to confirm" in page.content()
    page.get_by_label("or your password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Remove").click()
    page.wait_for_url(re.compile(r".*/\?notice=removed"))
    assert "no sign-in method yet" in page.content()
    # A classic token goes back to the inventory, it is not destroyed.
    stock = inventory.list_inventory(live.ctx, TokenFilter(serial="HW-77")).items
    assert stock[0].owner is None and stock[0].verification.drift == 41


def test_user_marks_a_lost_token_from_the_page(page, live) -> None:
    """Signed in with the key-fob, the user marks the phone's app lost: a button beside every
    method but the one just used, and the lost one listed as such."""
    accounts.create_user(live.ctx, "erin@example.com", password=NEW_PASSWORD, one_time=False)
    activate_app(live.ctx, live.clock, "erin@example.com")
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    csv = f"upn,serial number,secret key,time interval\nerin@example.com,C2-7,{secret},30\n"
    assert inventory.import_seeds(live.ctx, csv.encode(), actor="test").ok
    sign_in(page, live, "erin@example.com", NEW_PASSWORD)
    page.wait_for_url(f"{live.url}/login/code")
    page.get_by_label("Code").fill(pyotp.TOTP(secret).at(live.clock.now))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{live.url}/")
    lost = page.get_by_role("button", name=re.compile(r"^I lost this token"))
    assert lost.count() == 1  # the app's; the key-fob says it signed this session in
    assert "You signed in with this one." in page.content()
    shot(page, "home-lost-button")
    lost.click()
    page.wait_for_url(re.compile(r".*/\?notice=lost"))
    assert "marked lost" in page.content() and "lost on " in page.content()
    shot(page, "home-lost")
