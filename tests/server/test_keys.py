"""The master key: file created 0600, env override, AES-GCM bound to the token id, rotation."""

from __future__ import annotations

import os
import stat

import pytest
import sqlalchemy as sa

from keyfob.server import accounts, enrolment
from keyfob.server.context import open_context
from keyfob.server.keyrotation import rotate_key
from keyfob.server.settings import Settings
from keyfob.server.store.keys import KeyRing, MasterKeyError
from keyfob.server.store.schema import tokens
from keyfob.server.validation import validate

from .conftest import Clock


def _ctx(tmp_path, clock, **kw):
    return open_context(Settings(db=f"sqlite:///{tmp_path / 'k.db'}", **kw), clock=clock)


def _two_tokens(ctx, clock):
    import pyotp

    accounts.create_user(ctx, "a@example.com")
    out = []
    for _ in range(2):
        b = enrolment.begin(ctx, "a@example.com", "app", actor="t")
        t = pyotp.parse_uri(b["otpauth_uri"])
        enrolment.verify_enrolment(ctx, "a@example.com", b["id"], t.at(clock.now - 30), actor="t")
        out.append((b["id"], t))
    return out


def test_key_file_is_created_private_and_next_to_the_database(tmp_path) -> None:
    ctx = _ctx(tmp_path, Clock())
    path = tmp_path / "k.key"
    assert ctx.key_created and path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = _ctx(tmp_path, Clock())
    assert not again.key_created and again.ring.current == ctx.ring.current


def test_env_master_key_wins(tmp_path) -> None:
    key = os.urandom(32)
    ctx = _ctx(tmp_path, Clock(), master_key=key.hex())
    assert ctx.ring.current == key
    assert not (tmp_path / "k.key").exists()
    with pytest.raises(MasterKeyError, match="not a 32-byte key"):
        _ctx(tmp_path, Clock(), master_key="abc")


def test_ciphertext_is_bound_to_its_token(tmp_path) -> None:
    ring = KeyRing(os.urandom(32))
    blob = ring.seal(b"secret-one", "token-a")
    assert ring.open(blob, "token-a") == b"secret-one"
    with pytest.raises(MasterKeyError, match="tampered or moved"):
        ring.open(blob, "token-b")
    with pytest.raises(MasterKeyError, match="another master key"):
        KeyRing(os.urandom(32)).open(blob, "token-a")


def test_swapped_rows_do_not_validate(tmp_path) -> None:
    clock = Clock()
    ctx = _ctx(tmp_path, clock)
    (id1, _), (id2, _) = _two_tokens(ctx, clock)
    with ctx.engine.begin() as conn:
        b1 = conn.execute(sa.select(tokens.c.secret_enc).where(tokens.c.id == id1)).scalar_one()
        conn.execute(sa.update(tokens).where(tokens.c.id == id2).values(secret_enc=b1))
    with pytest.raises(MasterKeyError):
        validate(ctx, "a@example.com", "123456")


def test_rotate_key_reencrypts_everything(tmp_path) -> None:
    clock = Clock()
    ctx = _ctx(tmp_path, clock)
    pairs = _two_tokens(ctx, clock)
    old_key = ctx.ring.current
    with ctx.engine.connect() as conn:
        before = dict(conn.execute(sa.select(tokens.c.id, tokens.c.secret_enc)).all())
    assert rotate_key(ctx) == 2
    fresh = _ctx(tmp_path, clock)  # a restart reads only the new key file
    assert fresh.ring.current != old_key
    assert not (tmp_path / "k.key.new").exists()
    with fresh.engine.connect() as conn:
        after = dict(conn.execute(sa.select(tokens.c.id, tokens.c.secret_enc)).all())
    assert all(after[i] != before[i] and fresh.ring.is_current(after[i]) for i in before)
    clock.advance(30)
    assert validate(fresh, "a@example.com", pairs[0][1].at(clock.now)).accepted


def test_interrupted_rotation_still_opens_every_row(tmp_path) -> None:
    clock = Clock()
    ctx = _ctx(tmp_path, clock)
    _two_tokens(ctx, clock)
    # a crash after the new key was staged but before any row changed
    (tmp_path / "k.key.new").write_text(os.urandom(32).hex() + "\n")
    restarted = _ctx(tmp_path, clock)
    with restarted.engine.connect() as conn:
        for tid, blob in conn.execute(sa.select(tokens.c.id, tokens.c.secret_enc)):
            assert len(restarted.ring.open(blob, tid)) == 20
    assert rotate_key(restarted) == 2
    assert not (tmp_path / "k.key.new").exists()
