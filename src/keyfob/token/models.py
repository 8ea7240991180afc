"""Which token is this? Single-profile models by serial prefix (docs/token-protocol.md §1.1)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Family(StrEnum):
    SINGLE = "single-profile"
    MOLTO2 = "molto2"


@dataclass(frozen=True)
class Model:
    name: str
    family: Family
    serial_prefix: str
    restricted_sync: bool  # a config (clock) write erases the seed
    profiles: int = 1
    screen_lock: bool = False  # takes INS D8: Molto2 firmware 2.1 and later (§5.5)


MODELS: tuple[Model, ...] = (
    Model("OTPC-P1-i", Family.SINGLE, "8659612", False),
    Model("OTPC-P2-i", Family.SINGLE, "8659622", True),
    Model("OTPC-P2-i-NB", Family.SINGLE, "8659621", True),
    Model("miniOTP-2-i", Family.SINGLE, "8659600", False),
    Model("miniOTP-3-i", Family.SINGLE, "8659601", True),
    Model("miniOTP-3-i-NB", Family.SINGLE, "8659609", True),
    Model("C301-i", Family.SINGLE, "8659610", True),
    Model("C302-i", Family.SINGLE, "8659632", False),
    Model("Molto2", Family.MOLTO2, "", False, profiles=50),
    Model("Molto2v2", Family.MOLTO2, "", False, profiles=100, screen_lock=True),  # firmware 2.1
)

ALIASES = {
    "otpc-p1": "OTPC-P1-i",
    "otpc-p2": "OTPC-P2-i",
    "minotp-2": "miniOTP-2-i",
    "miniotp-2": "miniOTP-2-i",
    "miniotp-3": "miniOTP-3-i",
    "c301": "C301-i",
    "c302": "C302-i",
}


def by_name(name: str) -> Model:
    """``OTPC-P2``, ``otpc-p2-i``, ``C302`` … → the model; raises ``KeyError`` if unknown."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    for model in MODELS:
        if model.name.lower() == key.lower():
            return model
    raise KeyError(name)


def by_serial(serial: str) -> Model | None:
    """Longest prefix first; ``None`` for a serial outside the known table."""
    candidates = [m for m in MODELS if m.serial_prefix and serial.startswith(m.serial_prefix)]
    return max(candidates, key=lambda m: len(m.serial_prefix)) if candidates else None
