"""The supply chain: what the virtualenv holds came from the lock files, and the build repeats.

``make`` installs only from ``requirements/*.lock`` (pinned by hash); these tests catch a
dependency that slipped in around them and a wheel that differs between two builds of the same
commit.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)")


def _pins(lock: str) -> dict[str, str]:
    lines = (ROOT / "requirements" / lock).read_text().splitlines()
    return {_norm(m[1]): m[2] for m in (PIN.match(line) for line in lines) if m is not None}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_installed_distribution_is_locked_at_its_version() -> None:
    pins = _pins("test.lock")
    installed = {_norm(d.metadata["Name"]): d.version for d in metadata.distributions()}
    installed.pop("keyfob", None)
    missing = sorted(n for n in installed if n not in pins)
    differ = sorted(
        f"{n} {v} (lock {pins[n]})" for n, v in installed.items() if pins.get(n, v) != v
    )
    assert not missing, f"installed but not in requirements/test.lock: {missing}; run make lock"
    assert not differ, f"installed at another version than locked: {differ}"


def test_the_run_lock_agrees_with_the_test_lock() -> None:
    run, test = _pins("run.lock"), _pins("test.lock")
    assert {"fastapi", "sqlalchemy", "cryptography", "setuptools"} <= set(run)
    assert "pyscard" not in run and "pytest" not in run  # make run needs no C toolchain
    assert {n: v for n, v in run.items() if test.get(n) != v} == {}


def _build_wheel(src: Path, out: Path) -> str:
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1767225600"}
    argv = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*argv, "--wheel-dir", str(out), str(src)], check=True, env=env)
    (wheel,) = out.glob("keyfob-*.whl")
    return hashlib.sha256(wheel.read_bytes()).hexdigest()


def test_the_wheel_builds_byte_for_byte_the_same_twice(tmp_path: Path) -> None:
    digests = []
    for run in ("one", "two"):
        src = tmp_path / run / "src-tree"  # a fresh copy each time: no build/ left over
        ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
        for part in ("pyproject.toml", "README.md"):
            src.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / part, src / part)
        shutil.copytree(ROOT / "src", src / "src", ignore=ignore)
        digests.append(_build_wheel(src, tmp_path / run / "dist"))
    assert digests[0] == digests[1], "two builds of the same tree gave different wheels"


@pytest.mark.parametrize("lock", ["run.lock", "test.lock"])
def test_every_pin_carries_a_hash(lock: str) -> None:
    text = (ROOT / "requirements" / lock).read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.strip())
    unhashed = [b.split()[0] for b in blocks if PIN.match(b) and "--hash=sha256:" not in b]
    assert blocks and not unhashed, unhashed
