"""Install the system tools the test suite uses, when we can.

``make test`` runs this (with the system Python, before the virtualenv is built, because
pyscard compiles against libpcsclite). As root it installs what is missing with apt-get; as
another user it only reports, and the tests that need a missing tool skip with that reason
(or fail, under KEYFOB_STRICT=1). This table is the single list of Debian packages the tests
need.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# Debian package -> how to tell it is installed
PACKAGES: dict[str, str] = {
    "oathtool": "bin:oathtool",  # reference TOTP/HOTP implementation
    "pcscd": "bin:pcscd",  # the PC/SC daemon
    "vsmartcard-vpcd": "file:/usr/lib/pcsc/drivers/serial/libifdvpcd.so",  # virtual reader
    "libpcsclite-dev": "file:/usr/include/PCSC/winscard.h",  # to build pyscard
    "swig": "bin:swig",  # to build pyscard
    "chromium": "bin:chromium",  # the real browser the web-page tests drive (via Playwright)
    "freeradius-utils": "bin:radclient",  # FreeRADIUS's radclient: the NAS of the RADIUS tests
    # OpenLDAP: the directory the directory-user tests run (tests/directory), and its ldapadd
    "slapd": "file:/usr/sbin/slapd",
    "ldap-utils": "bin:ldapadd",
}


def installed(check: str) -> bool:
    kind, _, what = check.partition(":")
    return shutil.which(what) is not None if kind == "bin" else Path(what).exists()


def main() -> int:
    missing = sorted(pkg for pkg, check in PACKAGES.items() if not installed(check))
    if not missing:
        return 0
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(
            f"note: missing Debian packages {' '.join(missing)}; tests that need them will "
            f"skip. Install with: sudo apt-get install {' '.join(missing)}",
            file=sys.stderr,
        )
        return 0
    print(f"installing Debian packages: {' '.join(missing)}", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=False)
        subprocess.run(install, env=env, check=False)
    still = [pkg for pkg in missing if not installed(PACKAGES[pkg])]
    if still:
        print(f"warning: could not install {' '.join(still)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
