"""The helpdesk's token tickets through the app: the admin pages' lost / found / retire (with its
question) / drift-reset actions, what the user page and the inventory show (lost on DATE, the
drift in steps and seconds, the warning near the resync edge, the history), the same over REST,
and the temporary-passcode page (issued and shown once, listed without it, revoked)."""

from __future__ import annotations

import re

import pyotp
import pytest
from fastapi.testclient import TestClient

from keyfob.server import accounts, helpdesk, inventory
from keyfob.server.store.vocab import TokenStatus
from keyfob.server.web import sessions
from testkit import Clock

USER = "lena@example.com"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
SERIAL = "2300000000001"
CSV = f"upn,serial number,secret key,time interval\n{USER},{SERIAL},{SECRET},30\n"
PASSCODE = re.compile(r"\b\d{4} \d{4} \d{4} \d{4} \d{4}\b")


@pytest.fixture
def fob(sqlite_api, clock: Clock) -> pyotp.TOTP:
    sqlite_api.watch.secrets.add(SECRET)
    accounts.create_user(sqlite_api.ctx, USER)
    assert inventory.import_seeds(sqlite_api.ctx, CSV.encode(), actor="test").ok
    return pyotp.TOTP(SECRET, interval=30)


class Staff:
    """A signed-in page client of one role, with its CSRF token."""

    def __init__(self, api, role: str) -> None:
        user = accounts.create_user(api.ctx, f"{role}@example.com", role=role)
        cookie = sessions.create(api.ctx, user, "full")
        session = sessions.load(api.ctx, cookie)
        assert session is not None
        self.csrf = session.csrf
        self.client = TestClient(api.client.app, follow_redirects=False)
        self.client.cookies.set(sessions.COOKIE, cookie)

    def get(self, url: str):
        return self.client.get(url)

    def post(self, url: str, **form: str):
        return self.client.post(url, data={"csrf": self.csrf, **form})


def _state(api) -> TokenStatus:
    return helpdesk.drift_report(api.ctx, SERIAL).token.state


def test_lost_with_passcode_then_found_on_the_pages(sqlite_api, fob, clock, leak_watch) -> None:
    desk = Staff(sqlite_api, "helpdesk")
    resp = desk.post(f"/admin/tokens/{SERIAL}/lost", issue_tap="true", back=f"/admin/users/{USER}")
    assert resp.status_code == 200, resp.text
    shown = PASSCODE.search(resp.text)
    assert shown, resp.text
    leak_watch.secrets.add(shown[0])
    assert _state(sqlite_api) is TokenStatus.LOST
    assert sqlite_api.validate(USER, shown[0]) == "accept"
    day = sqlite_api.ctx.now_dt().date().isoformat()
    for page in (f"/admin/users/{USER}", "/admin/tokens"):
        text = desk.get(page).text
        assert f"lost on {day}" in text, page
        assert shown[0] not in text  # shown once
    resp = desk.post(f"/admin/tokens/{SERIAL}/found", back=f"/admin/users/{USER}")
    assert resp.status_code == 303
    assert resp.headers["location"] == f"/admin/users/{USER}?notice=token-found"
    assert _state(sqlite_api) is TokenStatus.ACTIVE
    clock.advance(30)
    assert sqlite_api.validate(USER, fob.at(clock.now)) == "accept"


def test_drift_shown_with_warning_and_history_then_reset(sqlite_api, fob, clock) -> None:
    desk = Staff(sqlite_api, "helpdesk")
    clock.advance(30)
    assert sqlite_api.validate(USER, fob.at(clock.now)) == "accept"
    clock.advance(30)
    assert sqlite_api.validate(USER, fob.at(clock.now + 100 * 30)) == "reject"
    assert sqlite_api.validate(USER, fob.at(clock.now + 101 * 30)) == "accept"
    for page in (f"/admin/users/{USER}", "/admin/tokens"):
        text = desk.get(page).text
        assert "+101 steps (+3030 s)" in text, page
        assert "drift-warning" in text and "Drift history" in text, page
    user_page = desk.get(f"/admin/users/{USER}").text
    assert "resync window" in user_page
    resp = desk.post(f"/admin/tokens/{SERIAL}/drift-reset")
    assert resp.status_code == 303 and resp.headers["location"].endswith("notice=drift-reset")
    assert helpdesk.drift_report(sqlite_api.ctx, SERIAL).drift_steps == 0
    assert "drift-warning" not in desk.get("/admin/tokens").text


def test_retire_asks_first_and_is_for_admins(sqlite_api, fob) -> None:
    desk = Staff(sqlite_api, "helpdesk")
    assert desk.get(f"/admin/tokens/{SERIAL}/retire").status_code == 403
    assert desk.post(f"/admin/tokens/{SERIAL}/retire").status_code == 403
    assert "Retire…" not in desk.get("/admin/tokens").text
    boss = Staff(sqlite_api, "admin")
    question = boss.get(f"/admin/tokens/{SERIAL}/retire?back=/admin/users/{USER}")
    assert question.status_code == 200
    assert f"Retire token {SERIAL}" in question.text and "cannot be undone" in question.text
    assert f'action="/admin/tokens/{SERIAL}/retire"' in question.text
    assert _state(sqlite_api) is TokenStatus.ACTIVE  # asking did nothing
    resp = boss.post(f"/admin/tokens/{SERIAL}/retire")
    assert resp.status_code == 303 and resp.headers["location"].endswith("notice=token-retired")
    assert _state(sqlite_api) is TokenStatus.RETIRED
    again = boss.post(f"/admin/tokens/{SERIAL}/retire")  # a refusal page, not a 500
    assert again.status_code == 409


def test_the_same_over_rest(sqlite_api, fob, clock, leak_watch) -> None:
    _, desk_key = accounts.create_api_key(sqlite_api.ctx, "desk", "helpdesk")
    leak_watch.secrets.add(desk_key)
    desk = {"Authorization": f"Bearer {desk_key}"}
    base = f"/api/v1/tokens/{SERIAL}"
    lost = sqlite_api.post(f"{base}/lost", role=None, headers=desk)
    assert lost.status_code == 200 and lost.json()["state"] == "lost"
    assert lost.json()["lost_at"] and "passcode" not in lost.json()
    assert sqlite_api.post(f"{base}/found", role=None, headers=desk).json()["state"] == "active"
    with_tap = sqlite_api.post(f"{base}/lost", role=None, headers=desk, json={"issue_tap": True})
    passcode = with_tap.json()["passcode"]
    leak_watch.secrets.add(passcode)
    assert PASSCODE.fullmatch(passcode)
    assert sqlite_api.post(f"{base}/found", role=None, headers=desk).status_code == 200
    clock.advance(30)
    assert sqlite_api.validate(USER, fob.at(clock.now + 30)) == "accept"
    drift = sqlite_api.get(f"{base}/drift", role=None, headers=desk).json()
    assert drift["drift_steps"] == 1 and drift["drift_seconds"] == 30
    assert drift["history"][-1]["drift_steps"] == 1 and drift["warning"] is None
    reset = sqlite_api.post(f"{base}/drift-reset", role=None, headers=desk)
    assert reset.status_code == 200 and reset.json()["drift_steps"] == 0
    assert sqlite_api.post(f"{base}/retire", role=None, headers=desk).status_code == 403
    retired = sqlite_api.post(f"{base}/retire")  # admin key
    assert retired.status_code == 200 and retired.json()["state"] == "retired"
    assert retired.json()["owner"] is None
    assert sqlite_api.post(f"{base}/found").status_code == 409


def test_passcode_page_issue_list_revoke(sqlite_api, fob, leak_watch) -> None:
    desk = Staff(sqlite_api, "helpdesk")
    page = desk.get(f"/admin/tap/{USER}")
    assert page.status_code == 200 and "None issued" in page.text
    assert f'href="/admin/tap/{USER}"' in desk.get(f"/admin/users/{USER}").text
    issued = desk.post(f"/admin/tap/{USER}/issue", hours="2", uses="1", reason="INC-42")
    assert issued.status_code == 200, issued.text
    passcode = PASSCODE.search(issued.text)
    assert passcode
    leak_watch.secrets.add(passcode[0])
    listed = desk.get(f"/admin/tap/{USER}").text
    assert passcode[0] not in listed  # shown once
    assert "INC-42" in listed and "live" in listed
    bad = desk.post(f"/admin/tap/{USER}/issue", hours="forever")
    assert bad.status_code == 400 and "10 minutes to 7 days" in bad.text
    revoked = desk.post(f"/admin/tap/{USER}/revoke")
    assert revoked.status_code == 303 and revoked.headers["location"].endswith("tap-revoked")
    assert "revoked" in desk.get(f"/admin/tap/{USER}").text
    assert sqlite_api.validate(USER, passcode[0]) == "reject"
    user = Staff(sqlite_api, "user")
    assert user.get(f"/admin/tap/{USER}").status_code == 403
    assert user.post(f"/admin/tap/{USER}/issue").status_code == 403
