"""The command line starts light: a command loads only its own module, and every command's
``--help`` works (the lazy table in ``keyfob.cli.main`` names modules that really exist)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer
from typer.core import TyperGroup

from keyfob.cli.main import COMMANDS, app, main

HEAVY = ("sqlalchemy", "fastapi", "alembic", "uvicorn", "jinja2", "pydantic_settings", "smartcard")


def _modules_after(argv: list[str]) -> set[str]:
    """The modules a fresh interpreter holds after running ``keyfob ARGV``."""
    script = (
        "import sys, json\n"
        "from keyfob.cli.main import main\n"
        f"code = main({argv!r})\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "argv",
    [
        ["code", "JBSWY3DPEHPK3PXP"],
        ["uri", "inspect", "otpauth://totp/A:b?secret=JBSWY3DPEHPK3PXP"],
        ["--help"],
    ],
    ids=["code", "uri-inspect", "help"],
)
def test_light_commands_import_no_server_stack(argv: list[str]) -> None:
    loaded = _modules_after(argv)
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == []
    # nor the QR image stack, unless an image is given
    assert not {"zxingcpp", "PIL", "segno"} & loaded


def _every_command(command: typer.core.TyperCommand, path: list[str]) -> list[list[str]]:
    found = [path]
    if isinstance(command, TyperGroup):
        ctx = typer.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, f"{' '.join([*path, name])} is listed but does not load"
            found += _every_command(sub, [*path, name])
    return found


def test_every_command_and_subcommand_has_help(capsys) -> None:
    root = typer.main.get_command(app)
    paths = _every_command(root, [])
    assert len(paths) > len(COMMANDS) + 10  # the groups' subcommands were walked too
    for path in paths:
        assert main([*path, "--help"]) == 0, path
        out = capsys.readouterr().out
        assert "Usage: keyfob" in out and (path[-1] if path else "Commands") in out, path


def test_root_help_lists_the_table_without_loading_it(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, spec in COMMANDS.items():
        assert name in out and spec.summary in out


def test_every_option_has_help() -> None:
    """Every visible option of every command says what it does in --help."""
    root = typer.main.get_command(app)
    missing = []
    for path in _every_command(root, []):
        command = root
        ctx = typer.Context(root)
        for name in path:
            command = command.get_command(ctx, name)
            ctx = typer.Context(command, parent=ctx)
        for param in command.params:
            shown = param.param_type_name == "option" and not getattr(param, "hidden", False)
            if shown and param.name != "help" and not (getattr(param, "help", "") or "").strip():
                missing.append(f"keyfob {' '.join(path)} {param.opts[0]}")
    assert missing == []
