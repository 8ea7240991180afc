"""HTTP Basic (a password alone) may add a user's first method only: a lost, disabled or retired
token still counts as the second factor, so whoever holds the password after the token went
missing cannot enrol their own — even after the retired serial was imported again for a new
life (``--allow-retired``), which owes nothing to the old owner. A user who never had a method,
or whose methods were all deleted, may."""

from __future__ import annotations

import base64

import pytest
import sqlalchemy as sa

from keyfob.server import accounts, helpdesk, inventory
from keyfob.server.store.schema import tokens, users
from keyfob.server.store.vocab import TokenStatus

PASSWORD = "correct-horse-battery"
USER = "lena@example.com"
SERIAL = "2300000000001"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
CSV = f"upn,serial number,secret key,time interval\n{USER},{SERIAL},{SECRET},30\n"


def basic(username: str, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _enrol_by_password(api, who: str) -> int:
    resp = api.post(
        f"/api/v1/users/{who}/tokens", role=None, headers=basic(who), json={"kind": "app"}
    )
    if resp.status_code == 201 or resp.status_code == 200:
        api.watch.secrets.add(resp.json()["secret"])
    return resp.status_code


@pytest.mark.parametrize("ending", ["lost", "disabled", "retired"])
def test_a_missing_token_still_counts_as_the_second_factor(api, ending: str) -> None:
    api.watch.secrets.add(SECRET)
    accounts.create_user(api.ctx, USER, password=PASSWORD, one_time=False)
    assert inventory.import_seeds(api.ctx, CSV.encode(), actor="test").ok
    assert _enrol_by_password(api, USER) == 401  # an active token: no password alone
    if ending == "lost":
        helpdesk.mark_lost(api.ctx, SERIAL, actor="hd")
    elif ending == "disabled":
        inventory.set_token_disabled(api.ctx, SERIAL, True, actor="hd")
    else:
        helpdesk.retire(api.ctx, SERIAL, actor="admin")
    resp = api.get(f"/api/v1/users/{USER}/tokens", role=None, headers=basic(USER))
    assert resp.status_code == 401, resp.text
    assert _enrol_by_password(api, USER) == 401


def test_only_a_user_without_methods_may_add_the_first(api) -> None:
    accounts.create_user(api.ctx, USER, password=PASSWORD, one_time=False)
    assert _enrol_by_password(api, USER) in (200, 201)  # never had one: may begin
    listed = api.get(f"/api/v1/users/{USER}/tokens").json()["items"]
    assert len(listed) == 1
    # Every method deleted (by an admin): the password may set up a first one again.
    resp = api.delete(f"/api/v1/users/{USER}/tokens/{listed[0]['id']}")
    assert resp.status_code in (200, 204), resp.text
    assert _enrol_by_password(api, USER) in (200, 201)


NEW_SECRET = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"  # the new seed of the serial's new life


def _csv(upn: str, secret: str = NEW_SECRET) -> bytes:
    return f"upn,serial number,secret key,time interval\n{upn},{SERIAL},{secret},30\n".encode()


def test_a_retired_serial_imported_again_is_a_new_life(api) -> None:
    """``--allow-retired`` replaces the retired row with a new token. The former owner keeps
    the mark of a second factor (their password alone still opens nothing), and the new token
    carries none of it: its next owner, and a user who never had a method, are judged by
    their own tokens only — and retiring it again marks whoever owns it then."""
    api.watch.secrets.update({SECRET, NEW_SECRET})
    accounts.create_user(api.ctx, USER, password=PASSWORD, one_time=False)
    other, fresh = "omar@example.com", "nina@example.com"
    for name in (other, fresh):
        accounts.create_user(api.ctx, name, password=PASSWORD, one_time=False)
    assert inventory.import_seeds(api.ctx, CSV.encode(), actor="test").ok
    helpdesk.retire(api.ctx, SERIAL, actor="admin")
    assert inventory.import_seeds(api.ctx, _csv(""), allow_retired=True, actor="test").ok
    new = helpdesk.drift_report(api.ctx, SERIAL).token
    assert new.state is TokenStatus.ACTIVE and new.owner is None and new.retired_at is None
    with api.ctx.engine.connect() as conn:
        marker = conn.execute(
            sa.select(tokens.c.retired_owner_id).where(tokens.c.id == new.id)
        ).scalar_one()
    assert marker is None  # nothing of the old owner on the new token
    assert _enrol_by_password(api, USER) == 401  # the former owner: still a second factor
    assert _enrol_by_password(api, fresh) in (200, 201)  # never had one: unaffected

    inventory.assign(api.ctx, SERIAL, other, actor="hd")
    assert _enrol_by_password(api, other) == 401  # the new life is omar's second factor now
    helpdesk.retire(api.ctx, SERIAL, actor="admin")
    assert _enrol_by_password(api, other) == 401  # and stays so, retired
    assert _enrol_by_password(api, USER) == 401
    assert inventory.import_seeds(api.ctx, _csv(USER), allow_retired=True, actor="test").ok
    assert helpdesk.drift_report(api.ctx, SERIAL).token.owner == USER  # a third life, hers
    assert _enrol_by_password(api, other) == 401


def test_retiring_marks_the_owner_not_the_row(api) -> None:
    """The mark is on the user (``users.token_retired_at``), set by the retire itself."""
    accounts.create_user(api.ctx, USER, password=PASSWORD, one_time=False)
    api.watch.secrets.add(SECRET)
    assert inventory.import_seeds(api.ctx, CSV.encode(), actor="test").ok
    with api.ctx.engine.connect() as conn:
        assert conn.execute(sa.select(users.c.token_retired_at)).scalar_one() is None
    helpdesk.retire(api.ctx, SERIAL, actor="admin")
    with api.ctx.engine.connect() as conn:
        assert conn.execute(sa.select(users.c.token_retired_at)).scalar_one() == api.ctx.now_dt()
