"""The web sign-in, end to end through the app (the real forms, their CSRF, the session cookie),
on SQLite and PostgreSQL: the session remembers which method signed it in; a temporary access
passcode signs in once and is then refused; a user whose token is lost is asked for a code (a
passcode), not let in by the password alone; and from the self-service page a user marks their
*other* tokens lost — never the one this session signed in with — through the helpdesk's own
service, audited with the user as actor, which signs out whatever that token had signed in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from keyfob.server import accounts, helpdesk, inventory, tap
from keyfob.server.store import repo
from keyfob.server.store.schema import audit, web_sessions
from keyfob.server.store.vocab import TokenStatus
from keyfob.server.web import sessions
from testkit import Clock, activate_app

USER = "lena@example.com"
PASSWORD = "correct-horse-battery"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
SERIAL = "2300000000001"
CSV = f"upn,serial number,secret key,time interval\n{USER},{SERIAL},{SECRET},30\n"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """One browser on the pages: its own cookies, the forms filled in as a person would."""

    def __init__(self, api: Any) -> None:
        self.ctx = api.ctx
        self.client = TestClient(api.client.app, follow_redirects=False)

    def _csrf(self, path: str) -> str:
        found = CSRF.search(self.client.get(path).text)
        assert found, path
        return found.group(1)

    def sign_in(self, username: str = USER, password: str = PASSWORD) -> Any:
        """The password form; its answer (a 303 to /login/code or to /, or the form again)."""
        data = {"username": username, "password": password, "csrf": self._csrf("/login")}
        return self.client.post("/login", data=data)

    def code(self, code: str) -> Any:
        """The code form of a half signed-in session; its answer."""
        csrf = self._csrf("/login/code")
        return self.client.post("/login/code", data={"code": code, "csrf": csrf})

    def post(self, path: str, **form: str) -> Any:
        """A form of the signed-in pages, with the session's CSRF token."""
        return self.client.post(path, data={"csrf": self._csrf("/"), **form})

    @property
    def signed_in_with(self) -> str | None:
        session = sessions.load(self.ctx, self.client.cookies.get(sessions.COOKIE))
        assert session is not None and session.full
        return session.signed_in_with


@dataclass(frozen=True)
class Methods:
    """Lena's two methods: what makes their codes, and their ids."""

    app: pyotp.TOTP
    fob: pyotp.TOTP
    app_id: str
    fob_id: str


@pytest.fixture
def lena(api, clock: Clock) -> Methods:
    """Lena with a password of her own, an authenticator app and a hardware token (imported
    with her name)."""
    api.watch.secrets.update({SECRET, PASSWORD})
    accounts.create_user(api.ctx, USER, password=PASSWORD, one_time=False)
    app = activate_app(api.ctx, clock, USER)
    assert inventory.import_seeds(api.ctx, CSV.encode(), actor="test").ok
    with api.ctx.engine.connect() as conn:
        _, tokens = repo.active_tokens_of(conn, USER)
    ids = {("fob_id" if t.serial == SERIAL else "app_id"): t.id for t in tokens}
    return Methods(app, pyotp.TOTP(SECRET, interval=30), **ids)


def _signed_in(api, code: str) -> Browser:
    browser = Browser(api)
    assert browser.sign_in().headers["location"] == "/login/code"
    resp = browser.code(code)
    assert resp.status_code == 303 and resp.headers["location"] == "/", resp.text
    return browser


def _state(api, token_id: str) -> TokenStatus:
    with api.ctx.engine.connect() as conn:
        token = repo.get_token(conn, token_id)
    assert token is not None
    return token.state


def _lost_rows(api) -> list[Any]:
    with api.ctx.engine.connect() as conn:
        return conn.execute(sa.select(audit).where(audit.c.action == "token.lost")).all()


def test_signed_in_with_the_app_marks_the_token_lost(api, lena: Methods, clock: Clock) -> None:
    browser = _signed_in(api, lena.app.at(clock.now))
    assert browser.signed_in_with == lena.app_id
    home = browser.client.get("/").text
    assert f'action="/methods/{lena.fob_id}/lost"' in home
    assert f'action="/methods/{lena.app_id}/lost"' not in home
    assert "You signed in with this one." in home

    refused = browser.post(f"/methods/{lena.app_id}/lost")
    assert refused.status_code == 409
    assert "you signed in with this token" in refused.text
    assert "temporary access passcode" in refused.text  # the hint: what to do instead
    assert _state(api, lena.app_id) is TokenStatus.ACTIVE
    no_csrf = browser.client.post(f"/methods/{lena.fob_id}/lost", data={"csrf": "forged"})
    assert no_csrf.status_code == 403
    assert _state(api, lena.fob_id) is TokenStatus.ACTIVE and _lost_rows(api) == []

    done = browser.post(f"/methods/{lena.fob_id}/lost")
    assert done.status_code == 303 and done.headers["location"] == "/?notice=lost"
    assert _state(api, lena.fob_id) is TokenStatus.LOST
    (row,) = _lost_rows(api)
    assert (row.actor, row.target_user, row.target_serial) == (USER, USER, SERIAL)
    assert row.outcome == "success" and row.client == "testclient"
    home = browser.client.get("/?notice=lost").text
    day = api.ctx.now_dt().date().isoformat()
    assert f"lost on {day}" in home and "marked lost" in home
    assert f'action="/methods/{lena.fob_id}/lost"' not in home  # lost already: no button
    clock.advance(30)
    assert api.validate(USER, lena.fob.at(clock.now)) == "reject"  # its codes are refused
    again = browser.post(f"/methods/{lena.fob_id}/lost")
    assert again.status_code == 409 and "is lost" in again.text


def test_signed_in_with_the_token_marks_the_app_lost(api, lena: Methods, clock: Clock) -> None:
    """A token with a serial is found by it; the app (no serial) is then the other one."""
    browser = _signed_in(api, lena.fob.at(clock.now))
    assert browser.signed_in_with == lena.fob_id
    assert browser.post(f"/methods/{lena.fob_id}/lost").status_code == 409
    assert browser.post(f"/methods/{lena.app_id}/lost").status_code == 303
    assert _state(api, lena.app_id) is TokenStatus.LOST
    assert _state(api, lena.fob_id) is TokenStatus.ACTIVE


def test_a_passcode_signs_in_once_and_may_mark_any_token(api, lena: Methods, clock: Clock) -> None:
    _, passcode = tap.issue(api.ctx, USER, actor="helpdesk@example.com", reason="INC-1")
    api.watch.secrets.add(passcode)
    browser = _signed_in(api, passcode)
    assert browser.signed_in_with == sessions.TAP
    home = browser.client.get("/").text
    assert "You signed in with this one." not in home
    for name in ("app", "fob"):
        assert f'action="/methods/{getattr(lena, f"{name}_id")}/lost"' in home
    assert browser.post(f"/methods/{lena.fob_id}/lost").status_code == 303
    assert browser.post(f"/methods/{lena.app_id}/lost").status_code == 303
    assert _state(api, lena.app_id) is _state(api, lena.fob_id) is TokenStatus.LOST

    again = Browser(api)  # the same passcode in another sign-in: used up
    assert again.sign_in().headers["location"] == "/login/code"
    refused = again.code(passcode)
    assert refused.status_code == 401 and "not accepted" in refused.text
    assert again.client.get("/").headers["location"] == "/login"
    with api.ctx.engine.connect() as conn:
        rows = conn.execute(sa.select(audit).order_by(audit.c.id)).all()
    assert [r.action for r in rows if r.action.startswith("tap.")] == ["tap.issue", "tap.use"]
    checks = [
        (r.action, r.outcome, r.reason) for r in rows if r.action in ("validate", "web.signin")
    ]
    assert checks[-4:] == [
        ("validate", "success", "tap"),
        ("web.signin", "success", None),
        ("validate", "failure", "no_tokens"),  # used up, and both her tokens are lost now
        ("web.signin", "failure", "bad_code"),
    ]


def test_a_lost_token_asks_for_a_passcode_not_the_password_alone(
    api, lena: Methods, clock: Clock
) -> None:
    """Her only methods lost: the password leads to the code form, where nothing but a
    passcode from the helpdesk lets her in (once) — to add a new method."""
    for ref in (SERIAL, lena.app_id):
        helpdesk.mark_lost(api.ctx, ref, actor="helpdesk@example.com")
    browser = Browser(api)
    assert browser.sign_in().headers["location"] == "/login/code"
    assert browser.client.get("/").headers["location"] == "/login"  # not signed in yet
    page = browser.client.get("/login/code").text
    assert "temporary access passcode" in page
    assert browser.code(lena.fob.at(clock.now)).status_code == 401
    _, passcode = tap.issue(api.ctx, USER, actor="helpdesk@example.com")
    api.watch.secrets.add(passcode)
    resp = browser.code(passcode.replace(" ", ""))  # without its spaces, too
    assert resp.status_code == 303 and resp.headers["location"] == "/"
    assert browser.signed_in_with == sessions.TAP
    assert "You have no working sign-in method" in browser.client.get("/").text


def test_marking_a_token_lost_signs_out_what_it_signed_in(api, lena: Methods, clock: Clock) -> None:
    finder = _signed_in(api, lena.fob.at(clock.now))  # whoever has the fob now
    clock.advance(30)
    owner = _signed_in(api, lena.app.at(clock.now))
    assert owner.post(f"/methods/{lena.fob_id}/lost").status_code == 303
    assert finder.client.get("/").headers["location"] == "/login"
    assert owner.client.get("/").status_code == 200
    (row,) = _lost_rows(api)
    assert row.details["sessions_ended"] == 1
    # The same from the helpdesk's side, and for a retired token.
    clock.advance(30)
    third = _signed_in(api, lena.app.at(clock.now))
    helpdesk.mark_found(api.ctx, SERIAL, actor="hd")
    helpdesk.retire(api.ctx, lena.app_id, actor="admin")
    assert third.client.get("/").headers["location"] == "/login"
    assert owner.client.get("/").headers["location"] == "/login"


def test_another_users_token_or_an_unknown_session(api, lena: Methods, clock: Clock) -> None:
    other = "omar@example.com"
    accounts.create_user(api.ctx, other, password=PASSWORD, one_time=False)
    browser = Browser(api)
    assert browser.sign_in(other).headers["location"] == "/"  # never had a method
    assert browser.signed_in_with == sessions.PASSWORD
    resp = browser.post(f"/methods/{lena.fob_id}/lost")
    assert resp.status_code == 404 and _state(api, lena.fob_id) is TokenStatus.ACTIVE
    # A session from before the server recorded the method (revision 0009): refused, with
    # what to do; the page offers no button.
    user = accounts.get_user(api.ctx, USER)
    legacy = Browser(api)
    legacy.client.cookies.set(sessions.COOKIE, sessions.create(api.ctx, user, "full"))
    assert f'action="/methods/{lena.fob_id}/lost"' not in legacy.client.get("/").text
    resp = legacy.post(f"/methods/{lena.fob_id}/lost")
    assert resp.status_code == 409 and "sign in again" in resp.text
    assert _lost_rows(api) == []


def test_a_new_password_keeps_the_sign_in_method(api, lena: Methods, clock: Clock) -> None:
    browser = _signed_in(api, lena.app.at(clock.now))
    new = "another-long-password-7"
    api.watch.secrets.add(new)
    resp = browser.post("/password", current_password=PASSWORD, new=new, repeat=new)
    assert resp.status_code == 303, resp.text
    assert browser.signed_in_with == lena.app_id
    with api.ctx.engine.connect() as conn:
        kept = conn.execute(sa.select(web_sessions.c.signed_in_with)).scalars().all()
    assert kept == [lena.app_id]


def test_two_apps_are_told_apart(api, lena: Methods, clock: Clock) -> None:
    """Neither app has a serial: the one whose accepted step moved signed the session in."""
    second = activate_app(api.ctx, clock, USER)
    with api.ctx.engine.connect() as conn:
        _, tokens = repo.active_tokens_of(conn, USER)
    (second_id,) = {t.id for t in tokens} - {lena.app_id, lena.fob_id}
    assert _signed_in(api, second.at(clock.now)).signed_in_with == second_id
    clock.advance(30)
    assert _signed_in(api, lena.app.at(clock.now)).signed_in_with == lena.app_id


def test_a_token_lost_while_its_code_signs_in_opens_no_session(
    api, lena: Methods, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race: the code is accepted, the helpdesk marks the token lost (no session of it to
    end yet), then the sign-in writes its session. That session must not let anyone in."""
    from keyfob.server.web import auth_pages

    real_promote = sessions.promote

    def promote_after_the_helpdesk(ctx: Any, session: Any, signed_in_with: str | None) -> str:
        helpdesk.mark_lost(ctx, SERIAL, actor="helpdesk@example.com")
        return real_promote(ctx, session, signed_in_with)

    monkeypatch.setattr(auth_pages.sessions, "promote", promote_after_the_helpdesk)
    browser = Browser(api)
    assert browser.sign_in().headers["location"] == "/login/code"
    assert browser.code(lena.fob.at(clock.now)).status_code == 303
    assert browser.client.get("/").headers["location"] == "/login"
    with api.ctx.engine.connect() as conn:  # the row is there; load() refuses it
        assert conn.execute(sa.select(web_sessions.c.signed_in_with)).scalars().all() == [
            lena.fob_id
        ]
    monkeypatch.undo()
    clock.advance(30)
    assert _signed_in(api, lena.app.at(clock.now)).signed_in_with == lena.app_id  # the app: yes


def test_a_session_that_does_not_say_how_it_signed_in_ends_with_a_lost_token(
    api, lena: Methods, clock: Clock
) -> None:
    """A full session from before revision 0009 might have been opened by the lost token:
    marking any of its user's tokens lost (or retiring one) signs it out; another user's
    session of that kind stays."""
    other = "omar@example.com"
    accounts.create_user(api.ctx, other, password=PASSWORD, one_time=False)
    legacy, bystander = Browser(api), Browser(api)
    user, omar = accounts.get_user(api.ctx, USER), accounts.get_user(api.ctx, other)
    legacy.client.cookies.set(sessions.COOKIE, sessions.create(api.ctx, user, "full"))
    bystander.client.cookies.set(sessions.COOKIE, sessions.create(api.ctx, omar, "full"))
    current = _signed_in(api, lena.app.at(clock.now))
    assert legacy.client.get("/").status_code == 200
    helpdesk.mark_lost(api.ctx, SERIAL, actor="helpdesk@example.com")
    assert legacy.client.get("/").headers["location"] == "/login"
    assert bystander.client.get("/").status_code == 200
    assert current.client.get("/").status_code == 200  # it says it was the app
    (row,) = _lost_rows(api)
    assert row.details["sessions_ended"] == 1
