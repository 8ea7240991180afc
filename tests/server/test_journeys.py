"""The README's first hour as a new admin lives it, from fresh temporary folders and a fresh
home: `make run` (``keyfob serve --save-config``) in one folder, `keyfob admin …` in a new
terminal elsewhere, and admin commands that find no database and say so, creating nothing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx

from testkit import KEYFOB, free_port, healthy, keyfob, running


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYFOB_")}
    env.pop("XDG_CONFIG_HOME", None)
    return env | {"HOME": str(home), "PYTHONUNBUFFERED": "1"}


def _in(folder: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KEYFOB, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )


def test_admin_without_a_database_says_where_it_looked_and_creates_nothing(tmp_path) -> None:
    home, here = tmp_path / "home", tmp_path / "somewhere"
    home.mkdir()
    here.mkdir()
    env = _env(home)
    for args in (
        ["admin", "user", "add", "alice@example.com"],
        ["admin", "apikey", "create", "--role", "admin"],
        ["admin", "user", "list", "--db", f"sqlite:///{here / 'typo.db'}"],
    ):
        done = _in(here, *args, env=env)
        assert done.returncode == 1, done
        err = done.stderr
        assert err.startswith("keyfob: error: no keyfob database at "), err
        assert "--db" in err and "KEYFOB_DB" in err and ".config/keyfob/keyfob.toml" in err
        assert "keyfob admin init" in err
    assert "./keyfob.db in " + str(here) in _in(here, "admin", "user", "list", env=env).stderr
    assert list(here.iterdir()) == [] and list(home.iterdir()) == []


def test_make_run_then_admin_from_another_folder(tmp_path) -> None:
    """`make run` in the clone writes the config file; a new terminal in $HOME finds the
    server's database through it, and the API key it makes works on the running server."""
    home, clone, elsewhere = tmp_path / "home", tmp_path / "clone", tmp_path / "home" / "docs"
    for folder in (home, clone, elsewhere):
        folder.mkdir()
    env = _env(home)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [*KEYFOB, "serve", "--save-config", "--port", str(port), "--log-level", "warning"]
    log = tmp_path / "serve.log"
    with running(argv, lambda: healthy(url), what="keyfob serve", log=log, cwd=clone, env=env):
        printed = log.read_text()
        config = home / ".config" / "keyfob" / "keyfob.toml"
        assert f"wrote {config}" in printed and "one-time password" in printed
        assert f'db = "sqlite:///{clone / "keyfob.db"}"' in config.read_text()
        assert oct(config.stat().st_mode & 0o777) == "0o600"

        done = _in(elsewhere, "admin", "user", "add", "alice@example.com", env=env)
        assert done.returncode == 0, done.stderr
        made = _in(elsewhere, "admin", "apikey", "create", "--role", "admin", "--json", env=env)
        key = json.loads(made.stdout)["key"]
        users = httpx.get(f"{url}/api/v1/users", headers={"Authorization": f"Bearer {key}"})
        assert users.status_code == 200
        assert "alice@example.com" in users.text
        # --db after the subcommand, as people type it
        db = f"sqlite:///{clone / 'keyfob.db'}"
        listed = _in(elsewhere, "admin", "user", "list", "--json", "--db", db, env=env)
        assert listed.returncode == 0 and "alice@example.com" in listed.stdout
        assert list(elsewhere.iterdir()) == []  # nothing was created here

        # a second server on the same port stops before it says "serving on"
        again = _in(clone, "serve", "--port", str(port), env=env)
        assert again.returncode == 1
        assert "cannot listen on 127.0.0.1 port" in again.stderr
        assert "serving on" not in again.stdout

    # the next `make run` serves the same database and keeps the config file as it is
    before = config.read_text()
    with running(argv, lambda: healthy(url), what="keyfob serve", log=log, cwd=clone, env=env):
        assert "first start" not in log.read_text() and str(config) in log.read_text()
    assert config.read_text() == before


def test_config_file_issuer_reaches_enrolment(tmp_path) -> None:
    """The organisation's name in the config file is the issuer authenticator apps show."""
    home = tmp_path / "home"
    (home / ".config" / "keyfob").mkdir(parents=True)
    (home / ".config" / "keyfob" / "keyfob.toml").write_text(
        'db = "state/keyfob.db"\nissuer = "Contoso IT"\n'
    )
    (home / ".config" / "keyfob" / "state").mkdir()
    env = _env(home)
    assert _in(tmp_path, "admin", "init", env=env).returncode == 0
    assert (home / ".config" / "keyfob" / "state" / "keyfob.db").exists()
    _in(tmp_path, "admin", "user", "add", "bob@example.com", env=env)
    key = json.loads(
        _in(tmp_path, "admin", "apikey", "create", "--role", "admin", "--json", env=env).stdout
    )["key"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [*KEYFOB, "serve", "--port", str(port), "--log-level", "warning"]
    with running(argv, lambda: healthy(url), what="keyfob serve", cwd=tmp_path, env=env):
        begun = httpx.post(
            f"{url}/api/v1/users/bob@example.com/tokens",
            headers={"Authorization": f"Bearer {key}"},
            json={"kind": "app"},
        )
        assert begun.status_code == 201
        assert "issuer=Contoso%20IT" in begun.json()["otpauth_uri"]


def test_bad_config_file_is_one_line(tmp_path) -> None:
    config = tmp_path / "k.toml"
    config.write_text('databse = "x"\n')
    done = keyfob("admin", "--config", str(config), "user", "list", check=False)
    assert done.returncode == 1
    assert "unknown setting(s) databse" in done.stderr and "known settings: " in done.stderr
