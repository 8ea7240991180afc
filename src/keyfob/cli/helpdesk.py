"""``keyfob admin tokens lost|found|retire|show|drift-reset`` (server/helpdesk.py, issue 13).

Registered on the ``tokens`` group by ``cli/admin.py`` (:func:`register`). The CLI runs with the
database and the key file, as the server's operator; the operations are the table's
(permissions.Op.TOKENS_LOST, TOKENS_RETIRE, TOKENS_READ, TOKENS_REPAIR)."""

from __future__ import annotations

from typing import Annotated

import typer

from keyfob.cli.admin_common import ACTOR, JsonOpt, admin_context, said, token_action
from keyfob.cli.common import print_json
from keyfob.server import helpdesk
from keyfob.server.views import token_view

RefArg = Annotated[
    str, typer.Argument(metavar="SERIAL_OR_ID", help="The token's serial (an app method: its id).")
]


def tokens_lost(
    ctx: typer.Context,
    ref: RefArg,
    issue_tap: Annotated[
        bool,
        typer.Option("--issue-tap", help="Also give the owner a temporary access passcode."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Mark a token lost: every code is refused until it is found."""
    server = admin_context(ctx)
    token, passcode = helpdesk.mark_lost(server, ref, actor=ACTOR, issue_tap=issue_tap)
    data = token_view(token, server.now()) | {"passcode": passcode}
    lines = [f"marked {ref} lost" + (f" (owner {token.owner})" if token.owner else "")]
    if passcode:
        lines.append(f"temporary access passcode for {token.owner}; shown once: {passcode}")
    said(as_json, data, "\n".join(lines))


def tokens_found(ctx: typer.Context, ref: RefArg, as_json: JsonOpt = False) -> None:
    """A lost token is back: active again, its next code re-learns its drift."""
    token_action(ctx, as_json, f"{ref} found: active again", helpdesk.mark_found, ref)


def tokens_retire(ctx: typer.Context, ref: RefArg, as_json: JsonOpt = False) -> None:
    """Retire a token for good: its secret is overwritten and its serial cannot be imported
    again without --allow-retired."""
    line = f"retired {ref}: its secret is destroyed"
    token_action(ctx, as_json, line, helpdesk.retire, ref)


def tokens_show(ctx: typer.Context, ref: RefArg, as_json: JsonOpt = False) -> None:
    """A token's learned drift, its drift history, last use and any warning."""
    report = helpdesk.drift_report(admin_context(ctx), ref)
    data = report.as_dict()
    if as_json:
        print_json(data)
        return
    t = report.token
    typer.echo(f"token    {t.serial or t.id} ({t.kind}, {t.type}, {t.period} s)")
    typer.echo(f"owner    {t.owner or '(inventory)'}")
    lost = f" on {t.lost_at:%Y-%m-%d}" if t.lost_at else ""
    typer.echo(f"state    {t.state}{lost}")
    typer.echo(f"drift    {report.drift_steps:+d} steps ({report.drift_seconds:+d} s)")
    if report.rate_seconds_per_day is not None:
        typer.echo(f"rate     {report.rate_seconds_per_day:+.1f} s/day")
    used = f"{report.last_used_at:%Y-%m-%d %H:%M} UTC" if report.last_used_at else "never"
    typer.echo(f"last use {used}")
    for run in data["history"]:
        typer.echo(
            f"  {run['first_at'][:16]} … {run['last_at'][:16]}  "
            f"{run['drift_steps']:+d} steps ({run['drift_seconds']:+d} s), "
            f"{run['accepts']} accept(s)"
        )
    if report.warning:
        typer.echo(f"WARNING: {report.warning}")


def tokens_drift_reset(ctx: typer.Context, ref: RefArg, as_json: JsonOpt = False) -> None:
    """Set a token's learned drift to zero (audited)."""
    token_action(ctx, as_json, f"reset the drift of {ref} to 0", helpdesk.reset_drift, ref)


def register(tokens_app: typer.Typer) -> None:
    tokens_app.command("lost")(tokens_lost)
    tokens_app.command("found")(tokens_found)
    tokens_app.command("retire")(tokens_retire)
    tokens_app.command("show")(tokens_show)
    tokens_app.command("drift-reset")(tokens_drift_reset)
