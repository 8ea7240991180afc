"""Decoy work: what a refusal costs when there is nothing real to check.

Only real users have tokens that lock, so if an unknown user, a disabled one, one without
methods or a locked token answered faster (or slower) than a wrong code, a few validations would
tell which usernames exist. A wrong code for a real token costs one AES-GCM open of its sealed
secret, the steady-window check, the resync scan that a miss triggers (docs/design.md §4), one
compare-and-set UPDATE and one audit INSERT. This module supplies the same work where there is
no real token, or where the rules refuse without looking at the code:

- :func:`open_secret` opens a sealed decoy secret of the size a real SHA-1 token's blob has,
  through the same :class:`KeyRing` code path, under a throw-away key;
- :data:`RECORD` is a token row that cannot exist (real ids are 32 hex digits): :func:`write`
  is the compare-and-set of a refused code against it, a real UPDATE that matches nothing;
  :func:`parse` spends on its row the parsing that a user and a token found by the validation
  SELECT cost; :func:`check` checks a code against its secret;
- :func:`burn` runs both verification passes (steady window, then the resync scan) against a
  random secret of the given token's shape, with a well-formed code: the HMAC count of a miss,
  whatever the code that was typed looked like.

The decoy's answers are never used: it is work, not a decision.
"""

from __future__ import annotations

import dataclasses
import secrets
from datetime import UTC, datetime

from sqlalchemy import Connection

from keyfob.otp import Algorithm, OtpType
from keyfob.otp.verify import Mode, Policy, TokenParams, TokenState, verify
from keyfob.server.store import repo
from keyfob.server.store.keys import KeyRing
from keyfob.server.store.records import TokenRecord, UserRecord, state_values
from keyfob.server.store.schema import tokens, users
from keyfob.server.store.vocab import Role, TokenKind, TokenStatus

_RING = KeyRing.of(secrets.token_bytes(32))
_SECRET_BYTES = secrets.token_bytes(128)  # sliced to the length of the secret it stands in for
_ID = "decoy"  # never a token id: those are uuid4().hex

RECORD = TokenRecord(
    id=_ID,
    serial=None,
    kind=TokenKind.APP,
    type=OtpType.TOTP,
    algorithm=Algorithm.SHA1,
    digits=6,
    period=30,
    secret_enc=_RING.seal(secrets.token_bytes(20), _ID),  # 20 bytes: a SHA-1 app secret
    owner_id=None,
    owner=None,
    label="",
    state=TokenStatus.ACTIVE,
    verification=TokenState(),
    version=0,
    imported_drift=0,
    manufacturer=None,
    model=None,
    source="decoy",
    created_at=datetime.fromtimestamp(0, UTC),
    activated_at=None,
    last_used_at=None,
    expires_at=None,
)


def _row() -> repo.Row:
    """RECORD as the validation SELECT returns a user and its token (token columns ``t_``)."""
    user = {
        "id": _ID,
        "username": "decoy",
        "username_key": "decoy",
        "display_name": "",
        "password_hash": None,
        "must_change_password": False,
        "role": Role.USER,
        "disabled": False,
        "created_at": RECORD.created_at,
    }
    token = {**vars(RECORD), **state_values(RECORD.verification), "owner_id": _ID}
    token.update(type=RECORD.type.value, algorithm=RECORD.algorithm.value)
    values = {c.name: user.get(c.name) for c in users.c}
    values.update({f"t_{c.name}": token.get(c.name) for c in tokens.c})
    return repo.Row(values)


_ROW = _row()


def parse(*, user: bool, token_rows: int) -> None:
    """Parse a user row (when ``user``) and ``token_rows`` token rows that the SELECT did not
    find."""
    if user:
        UserRecord.from_row(_ROW)
    for _ in range(token_rows):
        repo.active_token(_ROW, "decoy")


def open_secret() -> bytes:
    """Decrypt the decoy blob: the cost of opening one real token's secret."""
    return _RING.open(RECORD.secret_enc, RECORD.id)


def burn(params: TokenParams, now: float, policy: Policy) -> None:
    """The verification work of a wrong code on a token shaped like ``params``.

    Used where the rules answer without computing anything (a locked token, a malformed code,
    a replay), so that such answers take as long as a plain wrong code.
    """
    shaped = dataclasses.replace(params, secret=_SECRET_BYTES[: max(len(params.secret), 1)])
    code = "0" * params.digits
    verify(shaped, TokenState(), code, now, policy, allow_resync=False)
    verify(shaped, TokenState(), code, now, policy)


def check(code: str, now: float, policy: Policy, mode: Mode = Mode.STEADY) -> None:
    """Open the decoy's secret and check ``code`` against it: the cost of checking one real
    token (steady or assignment window, then the resync scan). The answer is thrown away."""
    verify(RECORD.params(open_secret()), TokenState(), code, now, policy, mode)


FAILED = TokenState(fail_count=1)  # the state a refused code leaves on a fresh token


def write(conn: Connection, now: datetime) -> None:
    """The compare-and-set UPDATE of a refused code, against a row that does not exist."""
    repo.apply_state(conn, RECORD, FAILED, accepted_step=None, now=now)
