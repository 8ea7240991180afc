"""Which family is on the reader? Ask, since the reader name of an NFC reader says nothing."""

from __future__ import annotations

from dataclasses import dataclass

from keyfob.token.connection import Connection
from keyfob.token.errors import TokenError, TransportLost
from keyfob.token.models import Family, by_name
from keyfob.token.session import Molto2Session, ProfileInfo, SingleProfileSession, TokenInfo


@dataclass(frozen=True)
class Probe:
    family: Family
    info: TokenInfo
    profiles: tuple[ProfileInfo, ...] = ()


def _answers_public_block(molto2: Molto2Session) -> bool:
    """A Molto2 answers a public-block read of profile 0 with a well-formed block; a
    single-profile token answers something else (another status, another layout)."""
    try:
        molto2.read_profile(0)
    except TransportLost:
        raise
    except TokenError:
        return False
    return True


def probe(connection: Connection, *, read_profiles: bool = True) -> Probe:
    """Get info; a serial with a known single-profile prefix settles it, otherwise a valid
    Molto2 public block for profile 0 means a Molto2."""
    info = SingleProfileSession(connection).get_info()
    if info.model is not None:
        return Probe(Family.SINGLE, info)
    molto2 = Molto2Session(connection)
    if not _answers_public_block(molto2):
        return Probe(Family.SINGLE, info)
    profiles = tuple(molto2.profiles(100)) if read_profiles else ()
    model = by_name("Molto2v2" if len(profiles) > 50 else "Molto2")
    return Probe(Family.MOLTO2, TokenInfo(info.serial, model, info.clock), profiles)
