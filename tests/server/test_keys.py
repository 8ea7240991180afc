"""The master key ring: file created 0600, env keys, AES-GCM bound to the token id, and rotation
that never loses a key which sealed anything — beside running servers, killed at every step,
retried, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pyotp
import pytest
import sqlalchemy as sa

from keyfob.server import accounts, enrolment
from keyfob.server.context import ServerContext, open_context
from keyfob.server.errors import ServiceError
from keyfob.server.keyrotation import rotate_key
from keyfob.server.nodes import NodeHeartbeat
from keyfob.server.settings import Settings
from keyfob.server.store.keys import KeyRing, MasterKeyError, blob_kid, key_id, read_key_file
from keyfob.server.store.schema import tokens
from keyfob.server.validation import validate
from testkit import KEYFOB, Clock, http_enrol, serve


def _ctx(tmp_path, clock, **kw):
    return open_context(Settings(db=f"sqlite:///{tmp_path / 'k.db'}", **kw), clock=clock)


class Fleet:
    """Users enrolled with app tokens, each validated once per time step by whoever asks."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.users: dict[str, pyotp.TOTP] = {}

    def enrol(self, ctx: ServerContext, n: int = 1) -> None:
        for _ in range(n):
            name = f"u{len(self.users)}@example.com"
            accounts.create_user(ctx, name)
            b = enrolment.begin(ctx, name, "app", actor="t")
            totp = pyotp.parse_uri(b.otpauth_uri)
            enrolment.verify_enrolment(ctx, name, b.id, totp.at(self.clock.now - 30), actor="t")
            self.users[name] = totp

    def all_validate(self, ctx: ServerContext) -> None:
        """Every user's current code is accepted by ``ctx`` (the clock moves on a step first)."""
        self.clock.advance(30)
        refused = [
            u for u, t in self.users.items() if not validate(ctx, u, t.at(self.clock.now)).accepted
        ]
        assert refused == []


def _every_secret_opens(ctx: ServerContext) -> set[str]:
    """Opens every stored secret with a freshly started ring; returns the key ids in use."""
    fresh = open_context(ctx.settings, clock=ctx.clock)
    with fresh.engine.connect() as conn:
        rows = conn.execute(sa.select(tokens.c.id, tokens.c.secret_enc)).all()
    for tid, blob in rows:
        assert len(fresh.ring.open(bytes(blob), tid)) == 20
    fresh.engine.dispose()
    return {blob_kid(bytes(b)) for _, b in rows}


# --- the ring itself ------------------------------------------------------------------------


def test_key_file_is_created_private_and_next_to_the_database(tmp_path, clock) -> None:
    ctx = _ctx(tmp_path, clock)
    path = tmp_path / "k.key"
    assert ctx.key_created and path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = _ctx(tmp_path, clock)
    assert not again.key_created and again.ring.kids() == ctx.ring.kids()


def test_env_master_keys_win(tmp_path, clock) -> None:
    key, nxt = os.urandom(32), os.urandom(32)
    ctx = _ctx(tmp_path, clock, master_key=key.hex())
    assert ctx.ring.kids() == [key_id(key)]
    assert not (tmp_path / "k.key").exists()
    both = _ctx(tmp_path, clock, master_key=f"{nxt.hex()},{key.hex()}")
    assert set(both.ring.kids()) == {key_id(key), key_id(nxt)}
    with pytest.raises(MasterKeyError, match="not a 32-byte key"):
        _ctx(tmp_path, clock, master_key="abc")


def test_a_server_without_the_sealing_key_refuses_to_start(tmp_path, clock) -> None:
    _ctx(tmp_path, clock, master_key=os.urandom(32).hex())
    with pytest.raises(MasterKeyError, match="seals its secrets with master key") as info:
        _ctx(tmp_path, clock, master_key=os.urandom(32).hex())
    assert "KEYFOB_MASTER_KEY" in (info.value.hint or "")


def test_ciphertext_is_bound_to_its_token(tmp_path) -> None:
    ring = KeyRing.of(os.urandom(32))
    blob = ring.seal(b"secret-one", "token-a")
    assert ring.open(blob, "token-a") == b"secret-one"
    with pytest.raises(MasterKeyError, match="tampered or moved"):
        ring.open(blob, "token-b")
    with pytest.raises(MasterKeyError, match="does not hold"):
        KeyRing.of(os.urandom(32)).open(blob, "token-a")


def test_swapped_rows_do_not_validate(tmp_path, clock) -> None:
    ctx = _ctx(tmp_path, clock)
    fleet = Fleet(clock)
    fleet.enrol(ctx, 2)
    with ctx.engine.begin() as conn:
        (_, b1), (id2, _) = conn.execute(sa.select(tokens.c.id, tokens.c.secret_enc)).all()
        conn.execute(sa.update(tokens).where(tokens.c.id == id2).values(secret_enc=b1))
    right = fleet.users["u1@example.com"].at(clock.now)
    with pytest.raises(MasterKeyError):  # even u1's right code: the moved row does not open
        validate(ctx, "u1@example.com", right)


def test_old_single_key_file_and_its_staged_key_both_open(tmp_path, clock) -> None:
    """keyfob before key ids wrote a bare key, and a ``.new`` beside it during a rotation; a
    server may have sealed rows with either. Both load; a rotation folds them in, loses none."""
    ctx = _ctx(tmp_path, clock)
    fleet = Fleet(clock)
    fleet.enrol(ctx, 1)
    path = tmp_path / "k.key"
    ((old_kid, old_key),) = read_key_file(path).items()
    path.write_text(old_key.hex() + "\n")  # the old format: one bare key
    staged = os.urandom(32)
    path.with_name("k.key.new").write_text(staged.hex() + "\n")
    legacy = _ctx(tmp_path, clock)
    legacy.ring.preferred = key_id(staged)
    with legacy.engine.begin() as conn:  # as the old server did: sealed with the staged key
        conn.execute(sa.text("UPDATE key_state SET current_kid = :k"), {"k": key_id(staged)})
    fleet.enrol(legacy, 1)
    assert _every_secret_opens(legacy) == {old_kid, key_id(staged)}
    report = rotate_key(legacy, wait=0)
    assert report.reencrypted == 2 and set(report.dropped) == {old_kid, key_id(staged)}
    assert not path.with_name("k.key.new").exists()
    assert _every_secret_opens(legacy) == {report.new_kid}
    fleet.all_validate(_ctx(tmp_path, clock))


# --- rotation beside a running server -------------------------------------------------------


def test_rotation_beside_a_running_server(db_url, tmp_path, clock) -> None:
    """A server started before the rotation goes on validating, enrols with the new key, and
    a second rotation (which prunes the first key) loses nothing it sealed."""
    settings = Settings(db=db_url, key_file=tmp_path / "shared.key")
    server = open_context(settings, clock=clock)
    fleet = Fleet(clock)
    fleet.enrol(server, 2)
    admin = open_context(settings, clock=clock)  # the CLI, another process in real life
    first = rotate_key(admin, wait=0)
    assert first.reencrypted == 2 and len(first.dropped) == 1
    fleet.all_validate(server)  # the running server learns the new key from the file
    fleet.enrol(server, 1)  # ... and seals with it, not with the key the rotation dropped
    assert _every_secret_opens(server) == {first.new_kid}
    second = rotate_key(admin, wait=0)
    assert second.reencrypted == 3 and second.dropped == [first.new_kid]
    fleet.all_validate(server)
    fleet.enrol(server, 1)
    assert _every_secret_opens(server) == {second.new_kid}
    assert list(read_key_file(tmp_path / "shared.key")) == [second.new_kid]


def test_rotation_waits_for_servers_that_cannot_hold_the_new_key(db_url, tmp_path, clock) -> None:
    """Servers with keys from the environment cannot learn a new key: rotate-key refuses and
    changes nothing until they run with both keys."""
    old, new = os.urandom(32), os.urandom(32)
    settings = Settings(db=db_url, master_key=old.hex(), node_heartbeat=0.1)
    server = open_context(settings, clock=clock)
    fleet = Fleet(clock)
    fleet.enrol(server, 2)
    beat = NodeHeartbeat(server)
    beat.start()
    try:
        with pytest.raises(ServiceError, match="do not hold the new master key") as info:
            rotate_key(open_context(settings, clock=clock), new_env_key=new.hex(), wait=0.5)
        assert "KEYFOB_MASTER_KEY=<new>,<old>" in (info.value.hint or "")
        assert _every_secret_opens(server) == {key_id(old)}
    finally:
        beat.stop()
    both = Settings(db=db_url, master_key=f"{new.hex()},{old.hex()}", node_heartbeat=0.1)
    restarted = open_context(both, clock=clock)
    beat = NodeHeartbeat(restarted)
    beat.start()
    try:
        report = rotate_key(open_context(settings, clock=clock), new_env_key=new.hex(), wait=5)
        assert report.reencrypted == 2 and report.still_in_env == [key_id(old)]
        fleet.all_validate(restarted)
        fleet.enrol(restarted, 1)
        assert _every_secret_opens(restarted) == {key_id(new)}
    finally:
        beat.stop()


# --- kill -9 at every step ------------------------------------------------------------------


def _rotate_key(db_url: str, env: dict[str, str], wait: int = 0) -> subprocess.CompletedProcess:
    """`keyfob admin rotate-key` in its own process (one a crash point may kill -9)."""
    return subprocess.run(
        [*KEYFOB, "admin", "--db", db_url, "rotate-key", "--wait", str(wait), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _rotate_in_subprocess(db_url: str, key_file: Path, crash_at: str | None) -> int:
    env = dict(os.environ, KEYFOB_KEY_FILE=str(key_file))
    env.pop("KEYFOB_CRASHPOINT", None)
    if crash_at:
        env["KEYFOB_CRASHPOINT"] = crash_at
    proc = _rotate_key(db_url, env)
    assert proc.returncode in (0, -9), proc.stderr
    return proc.returncode


@pytest.mark.parametrize("step", ["key-added", "resealed", "switched", "pruned"])
def test_rotation_killed_at_every_step_then_retried(db_url, tmp_path, step, clock) -> None:
    """``kill -9`` at a step, a running server enrols someone, killed again at the same step
    (the case that once overwrote a staged key), then a clean retry: nothing is lost."""
    key_file = tmp_path / "k.key"
    server = open_context(Settings(db=db_url, key_file=key_file), clock=clock)
    fleet = Fleet(clock)
    fleet.enrol(server, 2)
    for _ in range(2):
        assert _rotate_in_subprocess(db_url, key_file, step) == -9
        _every_secret_opens(server)
        fleet.all_validate(server)
        fleet.enrol(server, 1)
    assert _rotate_in_subprocess(db_url, key_file, None) == 0
    kids = _every_secret_opens(server)
    assert len(kids) == 1 and list(read_key_file(key_file)) == list(kids)
    fleet.all_validate(server)
    fleet.all_validate(open_context(server.settings, clock=clock))


# --- the same with real processes: `keyfob serve` and `keyfob admin rotate-key` --------------


def test_rotate_key_command_beside_a_serving_process(db_url, tmp_path, leak_watch) -> None:
    key_file = tmp_path / "srv.key"
    env = dict(os.environ, KEYFOB_KEY_FILE=str(key_file), KEYFOB_NODE_HEARTBEAT="0.2")
    setup = open_context(Settings(db=db_url, key_file=key_file))
    _, api_key = accounts.create_api_key(setup, "rotation-test", "admin")
    leak_watch.secrets.add(api_key)
    auth = {"Authorization": f"Bearer {api_key}"}
    users: dict[str, tuple[pyotp.TOTP, int]] = {}  # user -> (totp, next step offset to use)

    def enrol(url: str, name: str) -> None:
        resp = httpx.post(f"{url}/api/v1/users", headers=auth, json={"username": name})
        assert resp.status_code == 201, resp.text
        users[name] = (http_enrol(url, auth, name, leak_watch), 0)

    def everyone_validates(url: str) -> None:
        for name, (totp, offset) in users.items():
            code = totp.at(time.time() + 30 * offset)  # one step further each time: no replay
            leak_watch.codes.add(code)
            r = httpx.post(
                f"{url}/api/v1/validate", headers=auth, json={"username": name, "code": code}
            )
            assert r.json() == {"result": "accept"}, (name, r.text)
            users[name] = (totp, offset + 1)

    def rotate() -> dict[str, object]:
        out = _rotate_key(db_url, env, wait=20)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    with serve(db_url, env=env) as server:
        enrol(server.url, "a@example.com")
        enrol(server.url, "b@example.com")
        first = rotate()
        assert first["reencrypted"] == 2
        everyone_validates(server.url)
        enrol(server.url, "c@example.com")  # sealed by the running server after the rotation
        second = rotate()
        assert second["reencrypted"] == 3 and second["dropped_keys"] == [first["key_id"]]
        everyone_validates(server.url)
    leak_watch.log.write(server.output)
    with serve(db_url, env=env) as restarted:  # a restart reads only what is in the key file
        everyone_validates(restarted.url)
    leak_watch.log.write(restarted.output)


def test_rotation_reencrypts_radius_client_secrets(db_url, tmp_path, clock) -> None:
    """RADIUS shared secrets are sealed like token secrets: rotate-key re-encrypts them and
    drops the old key, and a running RADIUS server's client table still opens them."""
    from keyfob.server.radius import clients
    from keyfob.server.radius.clients import ClientTable

    settings = Settings(db=db_url, key_file=tmp_path / "shared.key")
    server = open_context(settings, clock=clock)
    clients.add_client(server, "nas", "192.0.2.0/24", secret="s" * 20)
    table = ClientTable(server, ttl=0)
    old = table.clients()[0].record.secret_enc
    report = rotate_key(open_context(settings, clock=clock), wait=0)
    assert report.reencrypted == 1 and len(report.dropped) == 1
    (known,) = table.clients()
    assert blob_kid(known.record.secret_enc) == report.new_kid != blob_kid(old)
    assert known.secret == b"s" * 20
    assert table.match("192.0.2.7") == known
