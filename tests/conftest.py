"""Shared fixtures: external reference tools, and the strict mode CI runs in.

A test that needs a system tool asks for it with ``require_tool("oathtool")``. When the tool is
missing the test skips with a visible reason — except under ``KEYFOB_STRICT=1`` (set by
``.ci/run``), where a missing reference tool is a failure: a skipped check is not a passed one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import pytest

STRICT = os.environ.get("KEYFOB_STRICT") == "1"


def _require(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    reason = f"system tool {name!r} is not installed (make test installs it when run as root)"
    if STRICT:
        pytest.fail(f"KEYFOB_STRICT=1: {reason}")
    pytest.skip(reason)


@pytest.fixture
def require_tool() -> Callable[[str], str]:
    """Return the path of a system tool, or skip (fail when strict) if it is missing."""
    return _require


@pytest.fixture
def oathtool() -> str:
    return _require("oathtool")
