"""``keyfob admin tap issue|list|revoke``: temporary access passcodes (server/tap.py, issue 13).

The CLI runs with the database and the key file, as the server's operator; the operations are
the table's (permissions.Op.TAP_ISSUE, TAP_READ), written down there like the routes' and
pages'."""

from __future__ import annotations

from typing import Annotated

import typer

from keyfob.cli.admin_common import ACTOR, JsonOpt, admin_context
from keyfob.cli.common import print_json
from keyfob.server import tap

app = typer.Typer(help="Temporary access passcodes (the helpdesk's).", no_args_is_help=True)


@app.command("issue")
def tap_issue(
    ctx: typer.Context,
    username: str,
    hours: Annotated[float, typer.Option(help="How long it lives: 10 minutes to 7 days.")] = 8.0,
    uses: Annotated[int, typer.Option(help="How many sign-ins it allows.")] = 1,
    reason: Annotated[str, typer.Option(help="A ticket reference, for the audit log.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Issue a passcode for USERNAME (revokes their previous one); shown this once."""
    made, passcode = tap.issue(
        admin_context(ctx),
        username,
        seconds=round(hours * 3600),
        uses=uses,
        reason=reason,
        actor=ACTOR,
    )
    if as_json:
        print_json(
            {"passcode": passcode, "expires_at": made.expires_at.isoformat(), "uses": made.uses}
        )
        return
    typer.echo(f"temporary access passcode for {made.username}; shown once, read it out:")
    typer.echo(f"  {passcode}")
    typer.echo(f"valid until {made.expires_at:%Y-%m-%d %H:%M} UTC, {made.uses} use(s)")


@app.command("list")
def tap_list(
    ctx: typer.Context,
    username: Annotated[str | None, typer.Option(help="Only this user's passcodes.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List passcodes (never the passcodes themselves), newest first."""
    server = admin_context(ctx)
    now = server.now_dt()
    passes = tap.list_passes(server, username)
    if as_json:
        print_json([p.as_dict(now) for p in passes])
        return
    for p in passes:
        state = "live" if p.live(now) else ("revoked" if p.revoked_at else "spent/expired")
        typer.echo(
            f"{p.username:<32} {state:<14} until {p.expires_at:%Y-%m-%d %H:%M} "
            f"uses {p.uses_left}/{p.uses} by {p.issued_by} {p.reason}"
        )


@app.command("revoke")
def tap_revoke(ctx: typer.Context, username: str) -> None:
    """Revoke USERNAME's live passcode."""
    tap.revoke(admin_context(ctx), username, actor=ACTOR)
    typer.echo(f"revoked the live passcode of {username}")
