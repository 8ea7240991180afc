"""Command-line start-up: keyfob's light commands against Debian's ``oathtool`` on this machine.

Run with ``make bench``. Each case is a whole process, started ``RUNS`` times in a row after two
warm-up runs (so the files are in the page cache, as they are for a user typing commands); the
table reports the median and the fastest wall time. Targets (the code-health issue):
``keyfob code`` and ``keyfob uri inspect`` ≤ 150 ms, ``keyfob --help`` ≤ 200 ms.
Results go to ``bench/results/cli.json`` and ``bench/results/cli.md``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
RUNS = 30
SECRET = "JBSWY3DPEHPK3PXP"
URI = f"otpauth://totp/Contoso:alice@contoso.com?secret={SECRET}&issuer=Contoso"
KEYFOB = str(Path(sys.executable).with_name("keyfob"))
CASES: list[tuple[str, list[str], float | None]] = [
    ("keyfob code SECRET", [KEYFOB, "code", SECRET], 150),
    ("keyfob uri inspect URI", [KEYFOB, "uri", "inspect", URI], 150),
    ("keyfob --help", [KEYFOB, "--help"], 200),
    ("oathtool --totp -b SECRET", ["oathtool", "--totp", "-b", SECRET], None),
]


def wall_ms(argv: list[str]) -> list[float]:
    for _ in range(2):
        subprocess.run(argv, check=True, capture_output=True)
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    rows = []
    for name, argv, target in CASES:
        if shutil.which(argv[0]) is None and not Path(argv[0]).exists():
            print(f"{name:<28} skipped: {argv[0]} is not installed")
            continue
        times = wall_ms(argv)
        median, best = statistics.median(times), min(times)
        ok = "" if target is None else ("yes" if median <= target else "NO")
        rows.append(
            {
                "case": name,
                "median_ms": round(median, 1),
                "min_ms": round(best, 1),
                "target_ms": target,
                "meets_target": ok,
            }
        )
        print(f"{name:<28} median {median:6.1f} ms   min {best:6.1f} ms   target {target}")
    oath = next((r for r in rows if r["case"].startswith("oathtool")), None)
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "runs": RUNS,
        "oathtool": subprocess.run(
            ["oathtool", "--version"], capture_output=True, text=True
        ).stdout.splitlines()[0]
        if oath
        else "not installed",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cli.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [
        f"CLI start-up, {meta['runs']} runs each, Python {meta['python']}, {meta['cores']} cores, "
        f"{meta['oathtool']}, {meta['when']} (`make bench`, bench/bench_cli.py)",
        "",
        "| command | median ms | min ms | target ms | meets target | ÷ oathtool (median) |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        ratio = f"{r['median_ms'] / oath['median_ms']:.0f}x" if oath else "-"
        lines.append(
            f"| `{r['case']}` | {r['median_ms']} | {r['min_ms']} | {r['target_ms'] or '-'} | "
            f"{r['meets_target'] or '-'} | {ratio} |"
        )
    (RESULTS / "cli.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
