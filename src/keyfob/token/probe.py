"""Which family is on the reader? Ask, since the reader name of an NFC reader says nothing."""

from __future__ import annotations

from dataclasses import dataclass

from keyfob.token import protocol as p
from keyfob.token.connection import Connection
from keyfob.token.models import Family, by_name, by_serial
from keyfob.token.session import Molto2Session, ProfileInfo, SingleProfileSession, TokenInfo


@dataclass(frozen=True)
class Probe:
    family: Family
    info: TokenInfo
    profiles: tuple[ProfileInfo, ...] = ()


def probe(connection: Connection, *, read_profiles: bool = True) -> Probe:
    """Get info; a serial with a known single-profile prefix settles it, otherwise a valid
    Molto2 public block for profile 0 means a Molto2."""
    single = SingleProfileSession(connection)
    info = single.get_info()
    if info.model is not None:
        return Probe(Family.SINGLE, info)
    data, sw = connection.transmit(p.read_public_block(0).to_bytes())
    try:
        p.parse_public_block(data)
        is_molto2 = sw == p.Sw.OK
    except ValueError:
        is_molto2 = False
    if not is_molto2:
        return Probe(Family.SINGLE, TokenInfo(info.serial, by_serial(info.serial), info.clock))
    molto2 = Molto2Session(connection)
    profiles = tuple(molto2.profiles(100)) if read_profiles else ()
    model = by_name("Molto2v2" if len(profiles) > 50 else "Molto2")
    return Probe(Family.MOLTO2, TokenInfo(info.serial, model, info.clock), profiles)
