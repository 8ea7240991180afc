"""Issue 15, items 7-9 in a real browser: the admin's everyday tickets from the pages (remove a
lost phone, reset a password, disable a token, revoke an API key), the first admin's nudge to a
second factor, sign-ins in the audit log, the import's "would be created", the employee's
wording — and the layout test: at 1280x800 no table on an admin page overflows its box."""

from __future__ import annotations

import re

from keyfob.server import accounts, auditlog, enrolment, inventory
from keyfob.server.store.records import AuditFilter
from keyfob.server.validation import validate
from testkit import activate_app, wrong_code

from .conftest import NEW_PASSWORD, PASSWORD, first_sign_in, shot, sign_in

SEED = b"12345678901234567890"


def _admin_signed_in(page, live, admin_pw: str | None = None) -> None:
    """The first admin of a new server, through the first sign-in (password changed)."""
    if admin_pw is None:
        first = accounts.ensure_first_admin(live.ctx)
        if first is None:  # other users came first
            accounts.create_user(live.ctx, "admin", password=PASSWORD, role="admin")
        admin_pw = first[1] if first else PASSWORD
    first_sign_in(page, live, "admin", admin_pw, screenshot=None)


def _actions(live, action: str, user: str | None = None) -> list:
    where = AuditFilter(user, None, action)
    return auditlog.query(live.ctx, where, limit=100, offset=0).items


def _entra_csv(rows: list[tuple[str, str]]) -> bytes:
    """Classic tokens, each assigned to a UPN ("" for stock)."""
    lines = ["upn,serial number,secret key,time interval,manufacturer,model"]
    lines += [
        f"{upn},{serial},GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,30,Token2,C202" for upn, serial in rows
    ]
    return ("\n".join(lines) + "\n").encode()


def test_first_admin_is_nudged_and_every_sign_in_is_audited(page, live) -> None:
    _, admin_pw = accounts.ensure_first_admin(live.ctx)
    sign_in(page, live, "admin", "not-the-password")
    assert "wrong" in page.content()
    _admin_signed_in(page, live, admin_pw)
    nudge = page.locator(".nudge")
    assert "password alone" in nudge.inner_text()
    shot(page, "admin-nudge-home")
    page.goto(f"{live.url}/admin/users")
    assert page.locator(".nudge").count() == 1  # on every page until there is a second factor
    nudge.get_by_role("link", name="Add a second factor now").click()
    page.wait_for_url(f"{live.url}/#add-method")

    app = activate_app(live.ctx, live.clock, "admin")
    page.goto(f"{live.url}/admin/users")
    assert page.locator(".nudge").count() == 0

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, live, "admin", NEW_PASSWORD)
    page.wait_for_url(f"{live.url}/login/code")
    # Half signed in: no menu, whose links would all lead back to the sign-in page.
    assert page.locator("nav[aria-label=Main]").count() == 0
    assert page.locator("header a").count() == 0  # not even the logo: "/" is the sign-in page
    shot(page, "login-code-no-menu")
    page.get_by_label("Code").fill("000000" if app.now() != "000000" else "111111")
    page.get_by_role("button", name="Continue").click()
    assert "not accepted" in page.content()
    page.get_by_label("Code").fill(app.at(live.clock.now))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{live.url}/")

    rows = [(e.outcome, e.reason, (e.details or {})) for e in _actions(live, "web.signin")]
    rows.reverse()  # oldest first
    assert [(o, r) for o, r, _ in rows] == [
        ("failure", "bad_password"),
        ("success", None),  # the one-time password, no method yet
        ("failure", "bad_code"),
        ("success", None),
    ]
    assert rows[1][2] == {"second_factor": False} and rows[3][2] == {"second_factor": True}
    assert all(e.target_user == "admin" for e in _actions(live, "web.signin"))


def test_admin_removes_a_method_resets_a_password_disables_a_token_revokes_a_key(
    page, live
) -> None:
    accounts.create_user(live.ctx, "dan@example.com", password=PASSWORD, display_name="Dan")
    phone = activate_app(live.ctx, live.clock, "dan@example.com")
    inventory.import_seeds(live.ctx, _entra_csv([("dan@example.com", "C2-100")]), actor="t")
    _admin_signed_in(page, live)
    activate_app(live.ctx, live.clock, "admin")  # no nudge in the screenshots below

    page.goto(f"{live.url}/admin/users/dan@example.com")
    command = page.locator("#burn-command").inner_text()
    assert command == (f'keyfob burn --enroll {live.url} --user dan@example.com --api-key "$KEY"')
    shot(page, "admin-user")

    # Disable the classic token: its codes are refused; enable it again.
    page.get_by_role("button", name="Disable Hardware token").click()
    page.wait_for_url(re.compile(r".*/admin/users/dan@example.com\?notice=token-disabled"))
    assert "disabled" in page.locator(".methods").inner_text()
    assert _actions(live, "token.disable", "dan@example.com")
    page.get_by_role("button", name="Enable Hardware token").click()
    page.wait_for_url(re.compile(r".*notice=token-enabled"))

    # The lost phone: remove the app method, after a confirmation.
    page.get_by_role("link", name="Remove Authenticator app").click()
    page.wait_for_url(re.compile(r".*/methods/.+/remove"))
    assert "Remove “Authenticator app”" in page.locator("h1").inner_text()
    shot(page, "admin-remove-method-confirm")
    page.get_by_role("button", name="Remove method").click()
    page.wait_for_url(re.compile(r".*notice=method-removed"))
    kinds = [m.kind for m in enrolment.list_methods(live.ctx, "dan@example.com")]
    assert kinds == ["classic"]
    assert not validate(live.ctx, "dan@example.com", phone.at(live.clock.now)).accepted
    assert _actions(live, "token.delete", "dan@example.com")[0].actor == "admin"

    # Reset the password: asked first, then shown once.
    page.get_by_role("link", name="Reset password…").click()
    page.wait_for_url(f"{live.url}/admin/users/dan@example.com/password")
    shot(page, "admin-reset-password-confirm")
    page.get_by_role("link", name="Cancel").click()
    page.wait_for_url(f"{live.url}/admin/users/dan@example.com")
    assert accounts.authenticate(live.ctx, "dan@example.com", PASSWORD) is not None
    page.get_by_role("link", name="Reset password…").click()
    page.get_by_role("button", name="Reset password").click()
    new_pw = page.locator("#otp-pw").inner_text()
    shot(page, "admin-reset-password-shown")
    assert accounts.authenticate(live.ctx, "dan@example.com", PASSWORD) is None
    assert accounts.authenticate(live.ctx, "dan@example.com", new_pw) is not None
    assert _actions(live, "user.password", "dan@example.com")

    # Revoke an API key from its page.
    _, secret = accounts.create_api_key(live.ctx, "old VPN", "validate", actor="t")
    page.goto(f"{live.url}/admin/apikeys")
    page.get_by_role("button", name="Revoke old VPN").click()
    page.wait_for_url(re.compile(r".*notice=key-revoked"))
    assert accounts.check_api_key(live.ctx, secret) is None


def test_inventory_unlock_only_when_locked_and_disable_from_the_menu(page, live) -> None:
    accounts.create_user(live.ctx, "erin@example.com", password=PASSWORD)
    csv = _entra_csv([("erin@example.com", "C2-200"), ("", "C2-201")])
    inventory.import_seeds(live.ctx, csv, actor="t")
    _admin_signed_in(page, live)
    activate_app(live.ctx, live.clock, "admin")
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    wrong = wrong_code(secret, at=live.clock.now)
    assert validate(live.ctx, "erin@example.com", wrong).reason == "wrong_code"
    page.goto(f"{live.url}/admin/tokens")
    assert page.get_by_role("button", name="Unlock C2-200").count() == 0  # one wrong code
    for _ in range(4):
        validate(live.ctx, "erin@example.com", wrong)
    page.goto(f"{live.url}/admin/tokens")
    assert page.get_by_role("button", name="Unlock C2-201").count() == 0
    page.get_by_role("button", name="Unlock C2-200").click()
    page.wait_for_url(re.compile(r".*notice=unlocked"))

    page.locator("summary[aria-label='More for C2-200']").click()
    shot(page, "admin-tokens-menu-open")
    page.get_by_role("button", name="Disable C2-200").click()
    page.wait_for_url(re.compile(r".*notice=token-disabled"))
    assert "disabled" in page.locator("table.tokens tr", has_text="C2-200").inner_text()


def test_import_dry_run_says_would_be_created_and_the_import_audits_new_users(
    page, live, tmp_path
) -> None:
    _admin_signed_in(page, live)
    csv = tmp_path / "entra.csv"
    csv.write_bytes(_entra_csv([("new.person@example.com", "C2-300"), ("", "C2-301")]))
    page.goto(f"{live.url}/admin/import")
    page.get_by_label("Seed file").set_input_files(str(csv))
    page.get_by_role("button", name="Preview (dry run)").click()
    summary = page.locator("section p").first.inner_text()
    assert "2 token(s) would be created" in summary
    assert "1 new user(s) would be created (new.person@example.com)" in summary
    table = page.locator("section table").inner_text()
    assert "would be created and assigned to new.person@example.com" in table
    shot(page, "admin-import-dry-run")
    assert not _actions(live, "user.create", "new.person@example.com")
    page.get_by_label("Seed file").set_input_files(str(csv))
    page.get_by_role("button", name="Import", exact=True).click()
    assert "1 new user(s) created" in page.content()
    (row,) = _actions(live, "user.create", "new.person@example.com")
    assert row.actor == "admin" and row.details == {"source": "entra.csv", "role": "user"}


def test_employee_pages_speak_plainly(page, live) -> None:
    accounts.create_user(live.ctx, "fay@example.com", password=PASSWORD)
    first_sign_in(page, live, "fay@example.com")
    home = page.locator("main").inner_text()
    assert "Bring the key-fob to your IT team" in home
    page.get_by_role("button", name="Add hardware token").click()
    page.wait_for_url(re.compile(r".*/methods/.+/setup"))
    text = page.locator("main").inner_text()
    assert "This setup expires in" in text and "code expires" not in text
    assert "No phone with NFC?" in text and "bring the token to your IT team" in text
    assert "keyfob burn" not in text
    shot(page, "setup-hardware-plain")
    page.goto(f"{live.url}/")
    activate_app(live.ctx, live.clock, "fay@example.com")
    page.goto(f"{live.url}/")
    page.get_by_role("link", name="Codes not working?").click()
    text = page.locator("main").inner_text()
    for jargon in ("Resync", "resync", "Time step", "drift"):
        assert jargon not in text, jargon
    for url in ("/", "/methods/claim"):
        page.goto(f"{live.url}{url}")
        text = page.locator("main").inner_text()
        assert "Time step" not in text and "Resync" not in text, url


# --- layout --------------------------------------------------------------------------------

_OVERFLOWS = """() => {
  const out = [];
  for (const table of document.querySelectorAll('main table')) {
    const box = table.closest('.table-wrap') || table.parentElement;
    if (box.scrollWidth > box.clientWidth + 1) {
      out.push({box: box.className, scroll: box.scrollWidth, client: box.clientWidth});
    }
    const right = box.getBoundingClientRect().right;
    for (const th of table.querySelectorAll('th')) {
      if (th.getBoundingClientRect().right > right + 1) out.push({clipped: th.textContent});
    }
  }
  if (document.documentElement.scrollWidth > window.innerWidth) {
    out.push({page: document.documentElement.scrollWidth});
  }
  return out;
}"""

_WRAPPED_TIMES = """() => Array.from(document.querySelectorAll('main table time'))
  .filter(t => t.getClientRects().length > 1).map(t => t.textContent)"""


def test_no_admin_table_overflows_at_1280x800(browser, live, tmp_path) -> None:
    # A full page of realistic, long values: long UPNs, locked, disabled and used tokens, keys.
    long = "firstname.with-a-long-lastname@subsidiary.example-company.com"
    accounts.create_user(live.ctx, long, password=PASSWORD, display_name="A Very Long Name Indeed")
    rows = [(long if i % 3 == 0 else "", f"C2-{4000 + i}") for i in range(12)]
    inventory.import_seeds(live.ctx, _entra_csv(rows), actor="t")
    activate_app(live.ctx, live.clock, long)
    for _ in range(5):
        validate(live.ctx, long, wrong_code("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", at=live.clock.now))
    inventory.set_token_disabled(live.ctx, "C2-4003", True, actor="t")
    accounts.create_api_key(
        live.ctx, "VPN gateway in the second data centre", "validate", actor="t"
    )
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        _admin_signed_in(page, live)
        activate_app(live.ctx, live.clock, "admin")
        page.goto(f"{live.url}/admin/tokens")
        # Every admin page in the menu (so a new one is measured too), one user's page, and an
        # import preview.
        links = page.locator("nav[aria-label=Main] a[href^='/admin']")
        urls = sorted({links.nth(i).get_attribute("href") for i in range(links.count())})
        urls.append(f"/admin/users/{long}")
        measured = 0
        for url in urls:
            page.goto(f"{live.url}{url}")
            measured += page.locator("main table").count()
            assert page.evaluate(_OVERFLOWS) == [], url
            assert page.evaluate(_WRAPPED_TIMES) == [], url
            shot(page, "layout-1280" + url.replace("/", "-").replace("@", "_"))
        csv = tmp_path / "stock.csv"
        csv.write_bytes(_entra_csv([(long, "C2-9000"), ("", "C2-9001")]))
        page.goto(f"{live.url}/admin/import")
        page.get_by_label("Seed file").set_input_files(str(csv))
        page.get_by_role("button", name="Preview (dry run)").click()
        measured += page.locator("main table").count()
        assert page.evaluate(_OVERFLOWS) == [], "import preview"
        assert measured >= 5
        # The actions column's last control is inside the visible box.
        page.goto(f"{live.url}/admin/tokens")
        wrap = page.locator(".table-wrap").bounding_box()
        for summary in page.locator("td.actions summary").all():
            box = summary.bounding_box()
            assert box["x"] + box["width"] <= wrap["x"] + wrap["width"]
    finally:
        context.close()
