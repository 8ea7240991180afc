"""HTTP Basic and the shared sign-in limiter (security issue items 2, 3 and 10).

Basic acts as role ``user`` on the caller's own methods only, never with a one-time password,
never once a method is active; every refusal is the same 401; the limiter runs before argon2,
and lives in the database so that two servers on one database share one count.
"""

from __future__ import annotations

import base64
import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from keyfob.server import accounts
from keyfob.server.api.app import create_app
from keyfob.server.context import ServerContext, open_context
from keyfob.server.store.schema import rate_events
from testkit import Clock

from .conftest import Api

PASSWORD = "correct-horse-battery"
WRONG = "wrong-password-0000"
MOST_HASHES_AT_ONCE = 4  # argon2 takes 64 MiB a run: a flood must not run 40 at once


class CountingHasher(PasswordHasher):
    """A real argon2 hasher (the default parameters) that counts its verifications and the
    most that ran at once."""

    def __init__(self) -> None:
        super().__init__()
        self.verifies = 0
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._lock:
            self.verifies += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            return super().verify(hash, password)
        finally:
            with self._lock:
                self.running -= 1


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def counting(ctx: ServerContext) -> CountingHasher:
    hasher = CountingHasher()
    ctx.hasher = hasher
    return hasher


def _user(ctx: ServerContext, name: str, *, role: str = "user", one_time: bool = False) -> None:
    accounts.create_user(ctx, name, password=PASSWORD, role=role, one_time=one_time)


def _activate_method(api: Api, clock: Clock, username: str) -> pyotp.TOTP:
    begun = api.post(f"/api/v1/users/{username}/tokens", json={"kind": "app"}).json()
    api.watch.secrets.add(begun["secret"])
    totp = pyotp.parse_uri(begun["otpauth_uri"])
    resp = api.post(
        f"/api/v1/users/{username}/tokens/{begun['id']}/verify",
        json={"code": totp.at(clock.now)},
    )
    assert resp.status_code == 200, resp.text
    return totp


def _rows(ctx: ServerContext) -> int:
    with ctx.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(rate_events)).scalar_one()


# --- item 2: what a password alone may do ------------------------------------------------------


def test_an_admin_users_password_opens_no_admin_route(api: Api) -> None:
    _user(api.ctx, "root@example.com", role="admin")
    _user(api.ctx, "alice@example.com")
    hasher = counting(api.ctx)
    root = basic("root@example.com", PASSWORD)
    admin_calls = [
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/users", {"username": "evil@example.com", "role": "admin"}),
        ("POST", "/api/v1/tokens/export", {"format": "azure-csv"}),
        ("GET", "/api/v1/tokens", None),
        ("GET", "/api/v1/audit", None),
        ("POST", "/api/v1/users/alice@example.com/tokens", {"kind": "app"}),
    ]
    for method, path, body in admin_calls:
        resp = api.request(method, path, role=None, headers=root, json=body)
        assert resp.status_code == 403, (path, resp.text)
        assert resp.json()["error"]["hint"]
    # Refused on the header alone: not one of these hashed the password.
    assert hasher.verifies == 0
    # Its own methods it may still set up, as role "user".
    resp = api.get("/api/v1/users/root@example.com/tokens", role=None, headers=root)
    assert resp.status_code == 200 and resp.json() == {"items": []}
    assert [u["username"] for u in api.get("/api/v1/users").json()["items"]].count(
        "evil@example.com"
    ) == 0


def test_a_one_time_password_opens_nothing(api: Api) -> None:
    first = accounts.ensure_first_admin(api.ctx)
    assert first is not None
    name, password = first
    api.watch.secrets.add(password)
    _user(api.ctx, "new@example.com", one_time=True)
    for who, secret in ((name, password), ("new@example.com", PASSWORD)):
        resp = api.get(f"/api/v1/users/{who}/tokens", role=None, headers=basic(who, secret))
        assert resp.status_code == 401, resp.text
    resp = api.get("/api/v1/users", role=None, headers=basic(name, password))
    assert resp.status_code == 403


def test_every_basic_refusal_is_the_same_401(api: Api, clock: Clock) -> None:
    _user(api.ctx, "factor@example.com")
    _activate_method(api, clock, "factor@example.com")
    _user(api.ctx, "onetime@example.com", one_time=True)
    _user(api.ctx, "off@example.com")
    accounts.set_disabled(api.ctx, "off@example.com", True, actor="test")
    _user(api.ctx, "plain@example.com")
    cases = {
        "right password, active method": ("factor@example.com", PASSWORD),
        "wrong password, active method": ("factor@example.com", WRONG),
        "wrong password": ("plain@example.com", WRONG),
        "right one-time password": ("onetime@example.com", PASSWORD),
        "disabled": ("off@example.com", PASSWORD),
        "unknown user": ("nobody@example.com", PASSWORD),
    }
    answers = {}
    for case, (who, password) in cases.items():
        resp = api.get(f"/api/v1/users/{who}/tokens", role=None, headers=basic(who, password))
        assert resp.status_code == 401, (case, resp.text)
        answers[case] = (resp.content, resp.headers.get("www-authenticate"))
    assert len(set(answers.values())) == 1, answers
    assert b"second factor" not in next(iter(answers.values()))[0]


# --- item 3: the limiter runs before argon2, and argon2 runs a few at a time -------------------


def test_a_basic_flood_is_refused_before_hashing(api: Api) -> None:
    names = [f"user{i}@example.com" for i in range(40)]
    _user(api.ctx, names[0])
    hasher = counting(api.ctx)

    def one(i: int) -> Any:
        who = names[i % len(names)]
        return api.client.get(f"/api/v1/users/{who}/tokens", headers=basic(who, WRONG))

    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(pool.map(one, range(200)))
    statuses = Counter(r.status_code for r in answers)
    # 30 failures per address per window, then 429s that hash nothing.
    assert statuses == {401: 30, 429: 170}, statuses
    assert hasher.verifies == 30
    assert hasher.most_at_once <= MOST_HASHES_AT_ONCE
    limited = next(r for r in answers if r.status_code == 429)
    assert 1 <= int(limited.headers["retry-after"]) <= 301
    assert limited.json()["error"]["code"] == "rate_limited"
    # Even the right password is not checked now.
    resp = api.client.get(f"/api/v1/users/{names[0]}/tokens", headers=basic(names[0], PASSWORD))
    assert resp.status_code == 429 and hasher.verifies == 30


def test_five_wrong_passwords_for_one_user_then_429_until_the_window_passes(
    api: Api, clock: Clock
) -> None:
    _user(api.ctx, "bob@example.com")
    hasher = counting(api.ctx)
    path = "/api/v1/users/bob@example.com/tokens"
    for _ in range(5):
        assert api.get(path, role=None, headers=basic("bob@example.com", WRONG)).status_code == 401
    resp = api.get(path, role=None, headers=basic("bob@example.com", PASSWORD))
    assert resp.status_code == 429 and hasher.verifies == 5
    clock.advance(301)
    resp = api.get(path, role=None, headers=basic("bob@example.com", PASSWORD))
    assert resp.status_code == 200 and hasher.verifies == 6
    # A success forgives this user's failures; expired rows are gone.
    assert _rows(api.ctx) == 0


def test_password_hashes_run_a_few_at_a_time(sqlite_ctx: ServerContext) -> None:
    hasher = counting(sqlite_ctx)
    with ThreadPoolExecutor(max_workers=12) as pool:
        found = list(
            pool.map(lambda i: accounts.authenticate(sqlite_ctx, f"u{i}", WRONG), range(12))
        )
    assert found == [None] * 12 and hasher.verifies == 12
    assert 1 <= hasher.most_at_once <= MOST_HASHES_AT_ONCE


# --- item 10: one count in the database, shared by every server ---------------------------------


def _web_login(client: TestClient, username: str, password: str) -> Any:
    form = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf": token.group(1)},
        follow_redirects=False,
    )


def test_two_servers_on_one_database_share_the_count(ctx: ServerContext, clock: Clock) -> None:
    _user(ctx, "carol@example.com")
    second = open_context(ctx.settings, clock=clock)  # another worker, or another node
    try:
        one, two = TestClient(create_app(ctx)), TestClient(create_app(second))
        path = "/api/v1/users/carol@example.com/tokens"
        for _ in range(3):
            resp = one.get(path, headers=basic("carol@example.com", WRONG))
            assert resp.status_code == 401
        for _ in range(2):
            assert _web_login(two, "carol@example.com", WRONG).status_code == 401
        # Five failures across the two servers: both refuse now, the API and the web alike.
        assert two.get(path, headers=basic("carol@example.com", PASSWORD)).status_code == 429
        resp = _web_login(one, "carol@example.com", PASSWORD)
        assert resp.status_code == 429 and "Too many attempts" in resp.text
        assert int(resp.headers["retry-after"]) > 0
        clock.advance(301)
        assert _web_login(two, "carol@example.com", PASSWORD).status_code == 303
    finally:
        second.engine.dispose()


def test_a_restart_forgets_nothing(ctx: ServerContext, clock: Clock) -> None:
    _user(ctx, "dave@example.com")
    client = TestClient(create_app(ctx))
    for _ in range(5):
        assert _web_login(client, "dave@example.com", WRONG).status_code == 401
    restarted = open_context(ctx.settings, clock=clock)
    try:
        again = TestClient(create_app(restarted))
        assert _web_login(again, "dave@example.com", PASSWORD).status_code == 429
    finally:
        restarted.engine.dispose()


def test_expired_rows_are_deleted_as_the_limiter_goes(ctx: ServerContext, clock: Clock) -> None:
    client = TestClient(create_app(ctx))
    for i in range(4):
        assert _web_login(client, f"nobody{i}@example.com", WRONG).status_code == 401
    assert _rows(ctx) == 8  # one per (user, address) and one per address, per failure
    clock.advance(301)
    assert _web_login(client, "someone@example.com", WRONG).status_code == 401
    assert _rows(ctx) == 2
    # Nothing typed is stored: buckets are hashes.
    with ctx.engine.connect() as conn:
        buckets = conn.execute(sa.select(rate_events.c.bucket)).scalars().all()
    assert all(re.fullmatch(r"[ua]:[0-9a-f]{64}", b) for b in buckets), buckets


def _signed_in(ctx: ServerContext, username: str) -> tuple[TestClient, str]:
    """A full web session for a user without methods, and its CSRF token."""
    client = TestClient(create_app(ctx))
    assert _web_login(client, username, PASSWORD).status_code == 303
    page = client.get("/password")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    return client, token.group(1)


def test_the_password_change_form_is_rate_limited(ctx: ServerContext) -> None:
    _user(ctx, "erin@example.com")
    client, csrf = _signed_in(ctx, "erin@example.com")
    hasher = counting(ctx)
    new = {"new": "another-password-1", "repeat": "another-password-1", "csrf": csrf}
    for _ in range(5):
        resp = client.post("/password", data=new | {"current_password": WRONG})
        assert resp.status_code == 400 and "current password is wrong" in resp.text
    resp = client.post(
        "/password", data=new | {"current_password": PASSWORD}, follow_redirects=False
    )
    assert resp.status_code == 429 and "Too many attempts" in resp.text
    assert hasher.verifies == 5


def test_removing_a_method_with_the_password_is_rate_limited(api: Api, clock: Clock) -> None:
    _user(api.ctx, "fay@example.com")
    client, csrf = _signed_in(api.ctx, "fay@example.com")
    begun = api.post("/api/v1/users/fay@example.com/tokens", json={"kind": "app"}).json()
    api.watch.secrets.add(begun["secret"])
    hasher = counting(api.ctx)
    path = f"/methods/{begun['id']}/remove"
    for _ in range(5):
        resp = client.post(path, data={"csrf": csrf, "password": WRONG})
        assert resp.status_code == 401
    resp = client.post(path, data={"csrf": csrf, "password": PASSWORD}, follow_redirects=False)
    assert resp.status_code == 429 and "Too many attempts" in resp.text
    assert hasher.verifies == 5
    clock.advance(301)
    resp = client.post(path, data={"csrf": csrf, "password": PASSWORD}, follow_redirects=False)
    assert resp.status_code == 303
