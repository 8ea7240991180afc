"""The layer rule of ARCHITECTURE.md, checked on the source: imports point down only."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "keyfob"
# Lower number = lower layer (docs/design.md §2). Same-rank packages must not import each other.
RANK = {
    "errors": 0,
    "otp": 1,
    "formats": 2,
    "token": 3,
    "burn": 4,
    "toolset": 4,
    "server": 5,
    "cli": 6,
}
# The pure core does no I/O: no files, sockets, processes or clocks other than time.time.
OTP_FORBIDDEN = {
    "os",
    "pathlib",
    "socket",
    "subprocess",
    "io",
    "sqlite3",
    "shutil",
    "requests",
    "httpx",
    "urllib.request",
}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "keyfob" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def test_imports_point_down() -> None:
    problems = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        own = rel.parts[0].removesuffix(".py") if rel.parts[0] != "__init__.py" else None
        if own not in RANK:
            continue
        for module in _imports(path):
            other = _layer(module)
            if other is None or other == own or other not in RANK:
                continue
            if RANK[other] >= RANK[own]:
                problems.append(f"{rel} imports {module} ({other} is not below {own})")
    assert problems == []


def test_otp_core_does_no_io() -> None:
    for path in (SRC / "otp").rglob("*.py"):
        bad = [m for m in _imports(path) if m in OTP_FORBIDDEN or m.split(".")[0] in OTP_FORBIDDEN]
        assert bad == [], f"{path.name} imports {bad}"
