"""Time sync of programmable tokens: set the clock to this machine's UTC time — only where the
token keeps its seed when its clock is written."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from keyfob.burn.errors import SyncRefused
from keyfob.burn.ui import Ui
from keyfob.otp import Algorithm
from keyfob.token.connection import Connection
from keyfob.token.crypto import MOLTO2_DEFAULT_CUSTOMER_KEY
from keyfob.token.errors import UnknownModel
from keyfob.token.models import Family
from keyfob.token.probe import probe
from keyfob.token.session import Molto2Session, SingleProfileSession


@dataclass(frozen=True)
class SyncResult:
    serial: str
    model: str
    corrected: dict[int, int]  # profile (0 for single-profile) -> seconds corrected


def sync_time(
    conn: Connection,
    ui: Ui,
    *,
    profile: int | None = None,
    algorithm: Algorithm = Algorithm.SHA1,
    period: int = 30,
    customer_key: bytes = MOLTO2_DEFAULT_CUSTOMER_KEY,
    clock: Callable[[], float] = time.time,
) -> SyncResult:
    found = probe(conn, read_profiles=False)
    info = found.info
    if found.family is Family.MOLTO2:
        molto2 = Molto2Session(conn, customer_key)
        profiles = molto2.profiles(100)
        targets = [profile] if profile is not None else [p.index for p in profiles if p.occupied]
        if not targets:
            raise SyncRefused("no profile of this Molto2 holds a seed", hint="nothing to sync")
        offsets = {i: profiles[i].clock - int(clock()) for i in targets}
        molto2.authenticate()
        for i in targets:
            molto2.sync_time(i, int(clock()))
            ui.say(f"profile {i}: corrected {-offsets[i]:+d} s")
        return SyncResult(info.serial, "Molto2", {i: -offsets[i] for i in targets})
    if info.model is None:
        raise UnknownModel(
            f"serial {info.serial} is not a known programmable token model",
            hint="keyfob writes only to models it knows",
        )
    if info.model.restricted_sync:
        raise SyncRefused(
            f"the {info.model.name} has restricted time sync: writing its clock erases its seed",
            hint="re-burn it instead (keyfob token sync-time --reburn URI, or keyfob burn), "
            "which sets the clock and writes the seed again",
        )
    before = info.clock - int(clock())
    session = SingleProfileSession(conn)
    session.authenticate()
    session.write_config(clock=int(clock()), algorithm=algorithm, period=period)
    after = session.get_info().clock - int(clock())
    ui.say(f"{info.model.name} {info.serial}: clock was {before:+d} s, now {after:+d} s")
    return SyncResult(info.serial, info.model.name, {0: -before})
