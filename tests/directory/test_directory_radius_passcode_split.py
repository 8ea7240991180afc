"""A directory user over RADIUS password+otp whose password ends in 14 digits or more: with a
6-digit code after it, the text ends in 20 digits, shaped like a temporary access passcode.

``_Call.code_then_password`` checks one split only (one validation a request). Were the
passcode's split tried for a user without a live passcode, the last 20 digits would go to
``validate`` as a (malformed) code, the right 6-digit code would never be tried, the answer
would be a reject and the token's failure count would grow (five sign-ins lock it): the
passcode's split is considered only for a user who holds a live pass (``tap.holds_live_pass``).
"""

from __future__ import annotations

from slapdkit import Slapd, Tree
from test_directory_radius_failover import ACCEPT, SECRET, radius_request

from conftest import AddDirectory
from keyfob.server.context import ServerContext
from keyfob.server.radius import clients
from keyfob.server.radius.clients import ClientSettings
from keyfob.server.radius.server import RadiusServer
from keyfob.server.store import repo
from testkit import Clock, activate_app

DIGIT_PW = "pw-20240101123456"  # ends in 14 digits


def test_a_directory_password_ending_in_digits_still_signs_in(
    ctx: ServerContext, clock: Clock, slapd: Slapd, tree: Tree, add_directory: AddDirectory
) -> None:
    tree.add_user("jo", DIGIT_PW)
    add_directory(tree)
    app = activate_app(ctx, clock, "jo")
    clients.add_client(
        ctx, "nas", "127.0.0.1", secret=SECRET, settings=ClientSettings(mode="password+otp")
    )
    server = RadiusServer(ctx)
    try:
        answer = radius_request(server, "jo", DIGIT_PW + app.at(clock.now), 1)
    finally:
        server.close()
    with ctx.engine.connect() as conn:
        _, tokens = repo.active_tokens_of(conn, "jo")
    assert (answer, tokens[0].verification.fail_count) == (ACCEPT, 0)
