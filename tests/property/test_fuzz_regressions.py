"""Every input a fuzzer ever crashed keyfob with, replayed through the same target on every run.

A crash file lives in ``tests/property/crashes/`` named ``<target>-<what it found>``; the
target is the function of ``fuzz/targets.py`` that crashed (bench/results/fuzz.md lists each
with the fix)."""

from __future__ import annotations

from pathlib import Path

import pytest
import targets

from keyfob.errors import SeedFileError
from keyfob.formats.seedfile import read_seed_file

CRASHES = sorted((Path(__file__).parent / "crashes").iterdir())


def _target(path: Path) -> str:
    name = next(
        t for t in sorted(targets.TARGETS, key=len, reverse=True) if path.name.startswith(t)
    )
    return name


@pytest.mark.parametrize("path", CRASHES, ids=[p.name for p in CRASHES])
def test_crash_input_is_refused_cleanly(path: Path) -> None:
    targets.TARGETS[_target(path)](path.read_bytes())


def test_pskc_with_an_unknown_xml_encoding_is_a_seed_file_error() -> None:
    """expat raises LookupError for ``encoding="TFU-8"``; it escaped as a 500 from the import
    API and a traceback from the CLI before the fix in formats/pskc.py."""
    data = (Path(__file__).parent / "crashes" / "seed_any-unknown-xml-encoding").read_bytes()
    with pytest.raises(SeedFileError, match="encoding") as info:
        read_seed_file(data)
    assert info.value.hint and "UTF-8" in info.value.hint
