"""The directories admin page in Chromium: the add form (the bind password never shown back),
a test of an unreachable server with its step and time, remove — and no script or CSP error.
The LDAP side against a real slapd is in tests/directory/test_directory_page.py."""

from __future__ import annotations

import socket

from keyfob.server import accounts

from .conftest import shot, sign_in

ADMIN_PW = "directory-page-admin-pw"
BIND_PW = "bind-pw-never-shown-again"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_admin_adds_tests_and_removes_a_directory(page, live) -> None:
    accounts.create_user(
        live.ctx, "root@example.com", password=ADMIN_PW, role="admin", one_time=False
    )
    sign_in(page, live, "root@example.com", ADMIN_PW)
    page.wait_for_url(f"{live.url}/")
    page.get_by_role("link", name="Directories").click()
    page.wait_for_url(f"{live.url}/admin/directories")
    page.get_by_label("Name").fill("corp")
    page.get_by_label("Kind").select_option("openldap")
    page.get_by_label("Servers (failover order, comma-separated)").fill(
        f"ldaps://127.0.0.1:{_closed_port()}"
    )
    page.get_by_label("Base DN").fill("dc=example,dc=com")
    page.get_by_label("Bind DN (service account)").fill("cn=keyfob,dc=example,dc=com")
    page.get_by_label("Bind password").fill(BIND_PW)
    page.get_by_role("button", name="Add directory").click()
    page.get_by_text("Directory “corp” added").wait_for()
    assert BIND_PW not in page.content()
    assert page.get_by_label("Bind password").input_value() == ""
    page.get_by_label("User to look up in corp").fill("alice")
    page.get_by_role("button", name="Test corp").click()
    page.get_by_text("a step failed").wait_for()
    report = page.locator("#test-report").inner_text()
    assert "connect + bind ldaps://127.0.0.1" in report and " ms" in report
    shot(page, "admin-directories")
    page.get_by_role("button", name="Remove corp").click()
    page.get_by_text("The directory was removed").wait_for()
    assert "No directory yet" in page.content()
