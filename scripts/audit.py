"""``make audit``: known vulnerabilities in every locked distribution, with pip-audit.

Why a wrapper: pip-audit answers "No known vulnerabilities found" even when it could look none
of them up (an advisory service out of reach, a PyPI mirror without per-release JSON). This
script says how many distributions were really checked, fails on any advisory, and when the
service could check none it says so loudly instead of passing in silence: the audit did not
happen, and that must show in CI's log.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "test.lock"


def main() -> int:
    bin_dir = Path(sys.executable).parent
    argv = [str(bin_dir / "pip-audit"), "--progress-spinner", "off", "--format", "json"]
    argv += ["--require-hashes", "--disable-pip", "-r", str(LOCK)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        print(f"pip-audit gave no report (exit {done.returncode}):\n{done.stderr[-2000:]}")
        return 1
    deps = report.get("dependencies", [])
    checked = [d for d in deps if "skip_reason" not in d]
    found = [(d["name"], d["version"], v["id"]) for d in checked for v in d.get("vulns", [])]
    for name, version, advisory in found:
        print(f"VULNERABLE {name} {version}: {advisory}")
    print(f"pip-audit: {len(checked)} of {len(deps)} locked distributions checked")
    if found:
        return 1
    if deps and not checked:
        print("AUDIT NOT PERFORMED: the advisory service answered for none of them")
        print(f"  first reason: {deps[0].get('skip_reason')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
