"""HTTP Basic (a password alone) may add a user's first method only: a lost, disabled or retired
token still counts as the second factor, so whoever holds the password after the token went
missing cannot enrol their own. A user who never had a method, or whose methods were all
deleted, may."""

from __future__ import annotations

import base64

import pytest

from keyfob.server import accounts, helpdesk, inventory

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
