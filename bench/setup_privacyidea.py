"""One-time, cached setup of privacyIDEA for the side-by-side benchmark (issue 16).

``make bench`` runs this first; it does the work once and then only checks the stamp
(``bench/.privacyidea/ready.json``, git-ignored with the rest of the folder). What it builds, as
privacyIDEA's documentation (and its own ``privacyidea-standalone create``) sets an instance up:

- a virtualenv ``bench/.privacyidea/venv`` with the newest ``privacyidea`` that pip installs on
  this Python (or ``PRIVACYIDEA_VERSION``), and ``gunicorn``;
- ``instance/pi.cfg`` on SQLite with a generated ``SECRET_KEY`` and ``PI_PEPPER``, ``PI_ENCFILE``
  and the audit signing keys (``pi-manage setup create_enckey``, ``create_audit_keys``), the
  tables (``pi-manage setup create_tables``), an internal SQL user resolver (``pi-manage config
  resolver create_internal``: a user table in the same database) and a realm;
- ``instance/pi-tuned.cfg``: the same, with privacyIDEA's internal metrics, audit signing and
  response signing off (``PI_NO_INTERNAL_METRICS``, ``PI_AUDIT_NO_SIGN``,
  ``PI_NO_RESPONSE_SIGN``);
- the bench users and one TOTP token each with a known seed (``privacyidea_enroll.py``, through
  privacyIDEA's own Python API), kept as ``instance/pristine.sqlite``: each bench run copies it
  back to ``instance/privacyidea.sqlite`` (the resolver names that file), so every run starts
  from the same state.

Both configurations write their log to ``BENCH_PI_LOGFILE`` when set. Nothing listens here: the
bench starts gunicorn itself.
Delete ``bench/.privacyidea`` to set up again (a newer privacyIDEA, other counts).
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE / ".privacyidea"
VENV = ROOT / "venv"
INSTANCE = ROOT / "instance"
STAMP = ROOT / "ready.json"
REALM = "bench"
RESOLVER = "benchusers"
# The users: "v…" get valid codes (and replays), "w…" wrong codes. privacyIDEA answers a few
# dozen validations a second here, so a few thousand fresh users cover every row of a run.
POOLS = {"v": 4000, "w": 1000}
SETUP_VERSION = 1

CFG = """\
# privacyIDEA for the keyfob bench (bench/setup_privacyidea.py), laid out as
# `privacyidea-standalone create` writes an instance.
import logging
import os

INSTANCE_DIRECTORY = os.path.abspath(os.path.dirname(__file__))
PI_ENCFILE = os.path.join(INSTANCE_DIRECTORY, "encKey")
PI_AUDIT_KEY_PRIVATE = os.path.join(INSTANCE_DIRECTORY, "private.pem")
PI_AUDIT_KEY_PUBLIC = os.path.join(INSTANCE_DIRECTORY, "public.pem")
PI_UUID_FILE = os.path.join(INSTANCE_DIRECTORY, "uuid.txt")
PI_LOGFILE = os.environ.get("BENCH_PI_LOGFILE") or os.path.join(
    INSTANCE_DIRECTORY, "privacyidea.log"
)
PI_LOGLEVEL = logging.INFO
SQLALCHEMY_DATABASE_URI = "sqlite:///" + os.path.join(INSTANCE_DIRECTORY, "privacyidea.sqlite")
SECRET_KEY = {secret_key!r}
PI_PEPPER = {pepper!r}
"""

TUNED = """
# Tuned: the switches privacyIDEA documents for throughput.
PI_NO_INTERNAL_METRICS = True  # no metric_aggregate write per request
PI_AUDIT_NO_SIGN = True  # audit rows not RSA-signed
PI_NO_RESPONSE_SIGN = True  # responses not RSA-signed
"""


def venv_python() -> Path:
    return VENV / "bin" / "python"


def pi_manage(*args: str) -> None:
    env = dict(os.environ, PRIVACYIDEA_CONFIGFILE=str(INSTANCE / "pi.cfg"))
    subprocess.run([str(VENV / "bin" / "pi-manage"), *args], env=env, check=True)


def installed_version(package: str) -> str:
    out = subprocess.run(
        [
            str(venv_python()),
            "-c",
            f"import importlib.metadata as m; print(m.version({package!r}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def ready() -> dict | None:
    try:
        stamp = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return None
    fits = (
        stamp.get("setup_version") == SETUP_VERSION
        and stamp.get("pools") == POOLS
        and venv_python().exists()
        and (INSTANCE / "pristine.sqlite").exists()
    )
    return stamp if fits else None


def build() -> dict:
    started = time.time()
    if ROOT.exists():
        shutil.rmtree(ROOT)  # a half-made or outdated setup: start over
    ROOT.mkdir(parents=True)
    print(f"privacyIDEA: virtualenv in {VENV} …", flush=True)
    # the interpreter this venv runs on, not the project's venv (pip needs its own site)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    pip = [str(venv_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    wanted = os.environ.get("PRIVACYIDEA_VERSION")
    spec = f"privacyidea=={wanted}" if wanted else "privacyidea"
    subprocess.run([*pip, spec, "gunicorn"], check=True)
    installed_at = time.time()

    INSTANCE.mkdir()
    cfg = CFG.format(secret_key=secrets.token_hex(32), pepper=secrets.token_urlsafe(24))
    (INSTANCE / "pi.cfg").write_text(cfg)
    (INSTANCE / "pi-tuned.cfg").write_text(cfg + TUNED)
    print("privacyIDEA: keys, tables, resolver, realm …", flush=True)
    pi_manage("setup", "create_enckey")
    pi_manage("setup", "create_audit_keys")
    pi_manage("setup", "create_tables")
    pi_manage("config", "resolver", "create_internal", RESOLVER)
    pi_manage("config", "realm", "create", REALM, RESOLVER)
    total = sum(POOLS.values())
    print(f"privacyIDEA: {total} users with a TOTP token each …", flush=True)
    subprocess.run(
        [
            str(venv_python()),
            str(HERE / "privacyidea_enroll.py"),
            str(INSTANCE / "pi.cfg"),
            REALM,
            RESOLVER,
            *(f"{p}:{n}" for p, n in POOLS.items()),
        ],
        env=dict(os.environ, PRIVACYIDEA_CONFIGFILE=str(INSTANCE / "pi.cfg")),
        check=True,
    )
    db = INSTANCE / "privacyidea.sqlite"
    db.rename(INSTANCE / "pristine.sqlite")
    stamp = {
        "setup_version": SETUP_VERSION,
        "pools": POOLS,
        "realm": REALM,
        "resolver": RESOLVER,
        "privacyidea": installed_version("privacyidea"),
        "gunicorn": installed_version("gunicorn"),
        "flask": installed_version("flask"),
        "sqlalchemy": installed_version("sqlalchemy"),
        "python": platform.python_version(),
        "install_seconds": round(installed_at - started, 1),
        "setup_seconds": round(time.time() - started, 1),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    STAMP.write_text(json.dumps(stamp, indent=2) + "\n")
    return stamp


def main() -> int:
    ROOT.parent.mkdir(exist_ok=True)
    lock_path = HERE / ".privacyidea.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two `make bench` at once: the second waits
        stamp = ready()
        if stamp:
            print(
                f"privacyIDEA {stamp['privacyidea']}: set up ({sum(POOLS.values())} tokens, "
                f"{stamp['setup_seconds']} s once, {stamp['when']})"
            )
            return 0
        stamp = build()
    print(
        f"privacyIDEA {stamp['privacyidea']} set up in {stamp['setup_seconds']} s "
        f"(install {stamp['install_seconds']} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
