"""``make fuzz``: every target of ``fuzz/targets.py`` under atheris for ``FUZZ_SECONDS`` each
(default 60), then the HTTP API under schemathesis with a larger budget than the normal suite;
a table of executions and crashes is printed and written to ``fuzz/last-run.md`` for
``bench/results/fuzz.md``. Exit status 1 when anything crashed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))


def _run(name: str, seconds: int) -> tuple[int, int, str]:
    """Runs one target in its own process; returns (executions, crashes, crash file)."""
    before = set((HERE / "crashes").glob(f"{name}-*")) if (HERE / "crashes").exists() else set()
    done = subprocess.run(
        [sys.executable, str(HERE / "run.py"), name, str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    log = done.stdout + done.stderr
    (HERE / "logs").mkdir(exist_ok=True)
    (HERE / "logs" / f"{name}.log").write_text(log)
    found = re.search(r"stat::number_of_executed_units:\s*(\d+)", log)
    execs = int(found.group(1)) if found else 0
    after = set((HERE / "crashes").glob(f"{name}-*"))
    new = sorted(after - before)
    return execs, len(new), ", ".join(p.name for p in new)


def main() -> int:
    import targets

    seconds = int(os.environ.get("FUZZ_SECONDS", "60"))
    only = [a for a in sys.argv[1:] if a in targets.TARGETS] or list(targets.TARGETS)
    rows = ["| target | seconds | executions | crashes | crash files |", "|---|---|---|---|---|"]
    failed = False
    for name in only:
        start = time.monotonic()
        execs, crashes, files = _run(name, seconds)
        took = time.monotonic() - start
        failed |= crashes > 0
        rows.append(f"| {name} | {took:.0f} | {execs} | {crashes} | {files or '-'} |")
        print(rows[-1], flush=True)
    (HERE / "last-run.md").write_text("\n".join(rows) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
