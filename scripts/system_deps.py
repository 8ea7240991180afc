"""Install the system tools the test suite uses as independent references, when we can.

``make test`` runs this before pytest. As root it installs what is missing with apt-get; as
another user it only reports, and the tests that need a missing tool skip with that reason
(or fail, under KEYFOB_STRICT=1). The table is the single list of Debian packages the tests
need; ``.ci/run`` relies on it too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

# executable on PATH -> Debian package that provides it
TOOLS: dict[str, str] = {
    "oathtool": "oathtool",
}


def missing_tools() -> dict[str, str]:
    return {exe: pkg for exe, pkg in TOOLS.items() if shutil.which(exe) is None}


def main() -> int:
    missing = missing_tools()
    if not missing:
        return 0
    packages = sorted(set(missing.values()))
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(
            f"note: missing system tools {', '.join(sorted(missing))}; tests that need them "
            f"will skip. Install with: sudo apt-get install {' '.join(packages)}",
            file=sys.stderr,
        )
        return 0
    print(f"installing Debian packages: {' '.join(packages)}", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=False)
        subprocess.run(install, env=env, check=False)
    still = missing_tools()
    if still:
        print(f"warning: could not install {', '.join(sorted(still))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
