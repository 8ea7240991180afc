"""OTP core speed: keyfob against pyotp for generating and checking codes.

Run with ``make bench``. Each row times the same work for both libraries on the same secret;
checks use a wrong code (the worst case: every step of the window is computed) and a code of
the current step. Results go to ``bench/results/otp.json`` and ``bench/results/otp.md``.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import pyotp

from keyfob.otp import Algorithm, match_counter, time_step, to_base32, totp

RESULTS = Path(__file__).parent / "results"
SECRET = bytes(range(20))
B32 = to_base32(SECRET)
NOW = 1_700_000_000


def rate(fn: Callable[[int], object], seconds: float = 1.0) -> float:
    """Calls per second of ``fn(i)``, best of three timed rounds."""
    best = 0.0
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 3:
            for i in range(500):
                fn(i)
            n += 500
        best = max(best, n / elapsed)
    return best


def main() -> None:
    ref = pyotp.TOTP(B32)
    current = ref.at(NOW)
    wrong = "000000" if current != "000000" else "000001"
    step = time_step(NOW)
    rows: list[dict[str, object]] = []

    def row(name: str, ours: Callable[[int], object], theirs: Callable[[int], object]) -> None:
        k, p = rate(ours), rate(theirs)
        rows.append(
            {
                "case": name,
                "keyfob_per_s": round(k),
                "pyotp_per_s": round(p),
                "ratio": round(k / p, 2),
            }
        )
        print(f"{name:<38} keyfob {k:>10,.0f}/s   pyotp {p:>10,.0f}/s   x{k / p:.2f}")

    row(
        "generate (SHA1, 6 digits)",
        lambda i: totp(SECRET, NOW + 30 * i),
        lambda i: ref.at(NOW + 30 * i),
    )
    for window in (1, 15):
        row(
            f"check wrong code, window ±{window}",
            lambda i, w=window: match_counter(SECRET, wrong, step - w, step + w),
            lambda i, w=window: ref.verify(wrong, for_time=NOW, valid_window=w),
        )
        row(
            f"check current code, window ±{window}",
            lambda i, w=window: match_counter(SECRET, current, step - w, step + w),
            lambda i, w=window: ref.verify(current, for_time=NOW, valid_window=w),
        )
    s256 = bytes(range(32))
    ref256 = pyotp.TOTP(to_base32(s256), digest="sha256")
    row(
        "generate (SHA256, 6 digits)",
        lambda i: totp(s256, NOW + 30 * i, algorithm=Algorithm.SHA256),
        lambda i: ref256.at(NOW + 30 * i),
    )

    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "pyotp": pyotp.__version__ if hasattr(pyotp, "__version__") else "?",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (RESULTS / "otp.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = ["| case | keyfob /s | pyotp /s | keyfob ÷ pyotp |", "|---|---:|---:|---:|"]
    lines += [
        f"| {r['case']} | {r['keyfob_per_s']:,} | {r['pyotp_per_s']:,} | {r['ratio']} |"
        for r in rows
    ]
    (RESULTS / "otp.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
