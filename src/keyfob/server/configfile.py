"""keyfob's one config file: where its state lives, read by ``keyfob serve`` and every
``keyfob admin`` command, so that a server and the commands run later from any folder agree.

Looked for in this order (the first that exists wins; nothing is merged):

1. ``--config FILE`` or ``$KEYFOB_CONFIG`` (must exist)
2. ``$XDG_CONFIG_HOME/keyfob/keyfob.toml`` (default ``~/.config/keyfob/keyfob.toml``)
3. ``/etc/keyfob/keyfob.toml``

The file is TOML with the names of :class:`~keyfob.server.settings.Settings` as keys
(``db``, ``key_file``, ``issuer``, ``host``, ``port``, …); a relative path in it is relative to
the file's folder. A value given as an option or a ``KEYFOB_*`` variable wins over the file.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyfob.server.settings import Settings, SettingsError

CONFIG_ENV = "KEYFOB_CONFIG"
SYSTEM_CONFIG = Path("/etc/keyfob/keyfob.toml")
# master_key stays out of a file that others may read: KEYFOB_MASTER_KEY or key_file
KNOWN = sorted(set(Settings.model_fields) - {"master_key"})


def user_config() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "keyfob" / "keyfob.toml"


def search_paths() -> list[Path]:
    return [user_config(), SYSTEM_CONFIG]


@dataclass(frozen=True)
class Config:
    """The config file that was found (``path`` None: none) and its values."""

    path: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def settings(self, **given: Any) -> Settings:
        """Settings from ``given`` (options; None means not given), else ``KEYFOB_*``
        variables, else this file, else the defaults."""
        explicit = {k: v for k, v in given.items() if v is not None}
        from_file = {
            k: v
            for k, v in self.values.items()
            if k not in explicit and f"KEYFOB_{k.upper()}" not in os.environ
        }
        try:
            return Settings(**from_file, **explicit)
        except ValueError as exc:  # pydantic's ValidationError
            raise SettingsError(
                f"bad setting in {self.path or 'the options'}: {exc}".replace("\n", "; "),
                hint="see the README's 'Configuration' for the settings and their ranges",
            ) from None

    def describe(self) -> str:
        return str(self.path) if self.path else "no config file"


def find_config(explicit: Path | None = None) -> Config:
    """The config file to use: ``explicit`` (``--config``), ``$KEYFOB_CONFIG``, else the first
    of :func:`search_paths` that exists; an empty :class:`Config` when there is none."""
    chosen = explicit or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    if chosen is not None:
        if not chosen.is_file():
            raise SettingsError(
                f"config file {chosen} does not exist",
                hint="give the path of a keyfob.toml (--config or KEYFOB_CONFIG), or leave both "
                "out to use ~/.config/keyfob/keyfob.toml or /etc/keyfob/keyfob.toml",
            )
        return read_config(chosen)
    for path in search_paths():
        if path.is_file():
            return read_config(path)
    return Config()


def read_config(path: Path) -> Config:
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise SettingsError(
            f"cannot read the config file {path}: {exc.strerror}",
            hint="check its permissions, or point elsewhere with --config",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(
            f"config file {path} is not valid TOML: {exc}",
            hint='write one setting per line, e.g. db = "sqlite:////srv/keyfob/keyfob.db"',
        ) from None
    unknown = sorted(set(raw) - set(KNOWN))
    if unknown:
        raise SettingsError(
            f"config file {path}: unknown setting(s) {', '.join(unknown)}",
            hint="known settings: " + ", ".join(KNOWN),
        )
    values = dict(raw)
    base = path.parent
    if isinstance(values.get("db"), str):
        values["db"] = _absolute_db(values["db"], base)
    if isinstance(values.get("key_file"), str):
        values["key_file"] = str(base / Path(values["key_file"]).expanduser())
    return Config(path, values)


def _absolute_db(url: str, base: Path) -> str:
    """A SQLite path in the file is relative to the file's folder, not to where a command runs."""
    if "://" not in url:
        return f"sqlite:///{base / Path(url).expanduser()}"
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rest = url.removeprefix("sqlite:///")
        if rest and rest != ":memory:" and not rest.startswith("file:"):
            return f"sqlite:///{base / rest}"
    return url


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (or a bare path), None for other databases and ``:memory:``."""
    if "://" not in url:
        return Path(url)
    if not url.startswith("sqlite:///"):
        return None
    rest = url.removeprefix("sqlite:///").split("?", 1)[0]
    if not rest or rest == ":memory:" or rest.startswith("file:"):
        return None
    return Path(rest)


def toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    import json

    return json.dumps(value, ensure_ascii=False)


def write_config(path: Path, values: dict[str, str]) -> None:
    """A new config file holding ``values`` (readable by its owner only: it names the key
    file). Never overwrites one."""
    lines = [
        "# keyfob's configuration: read by `keyfob serve` and every `keyfob admin` command.",
        "# An option (--db …) or a KEYFOB_* variable wins over a value here.",
    ]
    lines += [f"{key} = {toml_string(value)}" for key, value in values.items()]
    if "issuer" not in values:
        lines.append(
            '# issuer = "Your Organisation"   # shown in authenticator apps (default keyfob)'
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
