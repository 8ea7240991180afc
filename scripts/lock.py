"""Regenerate the lock files (``make lock``): every distribution keyfob installs, pinned by hash.

Why two files from one run: ``make run`` must not need a C toolchain, but the test extra holds
pyscard, which builds against libpcsclite. ``requirements/test.lock`` (runtime + every extra +
the build backend) is resolved first; ``requirements/run.lock`` is then resolved under its
pins, so both name the same version of every distribution they share. pip-tools runs from a
throwaway virtualenv at a pinned version, so the lock does not depend on what is installed.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "requirements"
PIP_TOOLS = "pip-tools==7.7.0"
COMMON = [
    "--quiet",
    "--generate-hashes",
    "--allow-unsafe",
    "--strip-extras",
    "--no-header",
    "--no-emit-index-url",
    "--no-emit-find-links",
]


def compile_lock(venv: Path, out: Path, extra: list[str]) -> None:
    argv = [str(venv / "bin" / "pip-compile"), *COMMON, *extra, "-o", str(out), "pyproject.toml"]
    subprocess.run(argv, cwd=ROOT, check=True)


def pins_only(lock: Path, into: Path) -> None:
    """The ``name==version`` lines of a lock, as a constraints file (pip refuses hashes there)."""
    lines = [ln.split()[0] for ln in lock.read_text().splitlines() if "==" in ln.split(" ")[0]]
    into.write_text("\n".join(lines) + "\n")


def main() -> None:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = str(venv / "bin" / "pip")
        subprocess.run([pip, "install", "--quiet", PIP_TOOLS], check=True)
        test_lock = OUT / "test.lock"
        extras = ["--extra", "test", "--extra", "pcsc", "--extra", "plot", "--extra", "fuzz"]
        extras += ["--all-build-deps"]
        compile_lock(venv, test_lock, extras)
        constraints = Path(tmp) / "constraints.txt"
        pins_only(test_lock, constraints)
        compile_lock(venv, OUT / "run.lock", ["--all-build-deps", "-c", str(constraints)])
    print(f"wrote {OUT / 'test.lock'} and {OUT / 'run.lock'}")


if __name__ == "__main__":
    main()
