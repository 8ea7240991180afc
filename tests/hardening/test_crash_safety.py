"""``kill -9`` of a real ``keyfob serve`` during a burst of validations and enrolments, several
times, on SQLite and PostgreSQL; afterwards the database must agree with what the clients saw:

- every accept a client saw is in the audit and in the token's ``last_step``, and resending
  its code to a restarted server is refused (no accepted code lost);
- no code is accepted twice: a user's accepts in the audit are the client's plus at most the
  requests whose answer the kill swallowed;
- each token's ``fail_count`` is what its audit rows add up to (docs/design.md §4.8);
- every stored secret opens with a freshly started key ring, and an enrolment a client saw
  activated is active with the secret the client was given.

Bounded: 2 kills per database, each mid-burst (after a first few accepts, up to 0.3 s on)."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pyotp
import sqlalchemy as sa

from keyfob.server import accounts, enrolment
from keyfob.server.context import ServerContext, open_context
from keyfob.server.settings import Settings
from keyfob.server.store.schema import tokens, users
from testkit import fail_counts, serve, validation_audit, wrong_code

CYCLES, USERS_PER_CYCLE, THREADS = 2, 8, 4


@dataclass
class Seen:
    """What the clients observed, under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    accepts: list[tuple[str, int, str]] = field(default_factory=list)  # user, step, code
    lost: Counter[str] = field(default_factory=Counter)  # user -> requests without an answer
    active: dict[str, pyotp.TOTP] = field(default_factory=dict)  # enrolled user -> totp


def _get(obj: object, name: str) -> str:
    return obj[name] if isinstance(obj, dict) else getattr(obj, name)


def _enrol(ctx: ServerContext, names: list[str]) -> dict[str, pyotp.TOTP]:
    out = {}
    for name in names:
        accounts.create_user(ctx, name)
        begun = enrolment.begin(ctx, name, "app", actor="t")
        totp = pyotp.parse_uri(_get(begun, "otpauth_uri"))
        enrolment.verify_enrolment(
            ctx, name, _get(begun, "id"), totp.at(time.time() - 30), actor="t"
        )
        out[name] = totp
    return out


def _validator(url: str, key: str, mine: dict[str, pyotp.TOTP], seen: Seen) -> None:
    """Per user: a wrong code, the codes of steps now-1, now, now+1 (each above the last), a
    replay; until the server dies."""
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    for _ in range(3):
        for name, totp in mine.items():
            now = time.time()
            plan = [(None, wrong_code(totp, at=now))]
            plan += [(s, totp.at(now + 30 * s)) for s in (-1, 0, 1)]
            plan.append((None, totp.at(now + 30)))  # the replay of the last one
            for offset, code in plan:
                try:
                    r = client.post("/api/v1/validate", json={"username": name, "code": code})
                except httpx.HTTPError:
                    with seen.lock:
                        seen.lost[name] += 1
                    return
                if r.json()["result"] == "accept":
                    assert offset is not None, (name, "a wrong code or a replay was accepted")
                    with seen.lock:
                        seen.accepts.append((name, int(now // 30) + offset, code))


def _enroller(url: str, key: str, prefix: str, seen: Seen) -> None:
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    for i in range(50):
        name = f"{prefix}-{i}@example.com"
        try:
            client.post("/api/v1/users", json={"username": name})
            begun = client.post(f"/api/v1/users/{name}/tokens", json={"kind": "app"}).json()
            totp = pyotp.parse_uri(begun["otpauth_uri"])
            done = client.post(
                f"/api/v1/users/{name}/tokens/{begun['id']}/verify",
                json={"code": totp.at(time.time() - 30)},
            )
        except httpx.HTTPError:
            return
        if done.status_code == 200 and done.json()["state"] == "active":
            with seen.lock:
                seen.active[name] = totp


def _burst_then_kill(db_url: str, env: dict[str, str], cycle: int, group, key, seen) -> None:
    with serve(db_url, env=env) as server:
        names = list(group)
        workers = [
            threading.Thread(
                target=_validator,
                args=(server.url, key, {n: group[n] for n in names[i::THREADS]}, seen),
            )
            for i in range(THREADS)
        ]
        workers.append(
            threading.Thread(target=_enroller, args=(server.url, key, f"e{cycle}", seen))
        )
        for w in workers:
            w.start()
        before, enrolled = len(seen.accepts), len(seen.active)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (
            len(seen.accepts) < before + USERS_PER_CYCLE or len(seen.active) <= enrolled
        ):
            time.sleep(0.01)  # mid-burst: some accepts are in, most requests still to come
        time.sleep(random.uniform(0, 0.3))
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=10)
        for w in workers:
            w.join(timeout=30)
        assert server.proc.returncode == -signal.SIGKILL


def _check_database(settings: Settings, seen: Seen, everyone: dict[str, pyotp.TOTP]) -> None:
    fresh = open_context(settings)  # a fresh ring: every secret must open with the key file
    with fresh.engine.connect() as conn:
        rows = validation_audit(conn)
        toks = conn.execute(
            sa.select(
                users.c.username,
                tokens.c.id,
                tokens.c.secret_enc,
                tokens.c.state,
                tokens.c.last_step,
                tokens.c.fail_count,
            ).join(users, users.c.id == tokens.c.owner_id)
        ).all()
    fresh.engine.dispose()
    by_user = {t.username: t for t in toks}
    for t in toks:
        secret = fresh.ring.open(bytes(t.secret_enc), t.id)
        if t.username in seen.active:
            assert t.state == "active" and secret == seen.active[t.username].byte_secret()
        if t.username in everyone:
            assert secret == everyone[t.username].byte_secret()
    audited = Counter(r.target_user for r in rows if r.outcome == "success")
    client = Counter(name for name, _, _ in seen.accepts)
    assert len(set(seen.accepts)) == len(seen.accepts)
    for name in everyone:
        assert client[name] <= audited[name] <= client[name] + seen.lost[name], name
        steps = [s for n, s, _ in seen.accepts if n == name]
        if steps:
            assert by_user[name].last_step >= max(steps), name
    counted = fail_counts(rows)  # replays the audit: an accept clears, a counted failure adds
    for name in everyone:
        assert by_user[name].fail_count == counted[name], (name, by_user[name].fail_count)


def test_kill_9_during_validations_and_enrolments(db_url, tmp_path, leak_watch) -> None:
    key_file = tmp_path / "keyfob.key"
    settings = Settings(db=db_url, key_file=key_file)
    setup = open_context(settings)
    _, key = accounts.create_api_key(setup, "crash-test", "admin")
    names = [f"v{i}@example.com" for i in range(CYCLES * USERS_PER_CYCLE)]
    everyone = _enrol(setup, names)
    setup.engine.dispose()
    leak_watch.secrets.add(key)
    env = dict(os.environ, KEYFOB_KEY_FILE=str(key_file))
    seen = Seen()
    for cycle in range(CYCLES):
        group = {n: everyone[n] for n in names[cycle::CYCLES]}
        _burst_then_kill(db_url, env, cycle, group, key, seen)
    _check_database(settings, seen, everyone)
    assert seen.accepts, "the bursts accepted nothing: the kill came too early every time"
    with serve(db_url, env=env) as server:  # restarted: no accepted code is accepted again
        auth = {"Authorization": f"Bearer {key}"}
        for name, _, code in seen.accepts:
            r = httpx.post(
                f"{server.url}/api/v1/validate",
                headers=auth,
                json={"username": name, "code": code},
                timeout=10,
            )
            assert r.json()["result"] == "reject", (name, "accepted twice")
    figures = {"accepts": len(seen.accepts), "lost": sum(seen.lost.values())}
    print(f"crash-safety {db_url.split(':')[0]}: {figures}, enrolled {len(seen.active)}")
