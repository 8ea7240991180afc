"""How much clock skew does a verifier accept? Probe it, one time-step offset at a time.

The search is the same for every verifier: offset 0 first, then outward in each direction until
the first refusal after an acceptance (or ``max_steps``). What differs — how a code reaches the
verifier, what must be set up and cleaned up, and when an offset *can* be tried at all — is a
:class:`ProbeTarget`. A target that needs a fresh secret per probe makes one; a target with one
fixed secret (the RADIUS front end, :mod:`keyfob.toolset.radius`) must only move forward in
time, because a step at or below an accepted one is a replay, and waits for the clock instead:
its ``order`` and ``probe`` say so.

Offsets are relative to this machine's clock, so a probe is never sent within ``guard`` seconds of
a step boundary: a code computed in one step and checked in the next would be off by one.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

from keyfob.errors import KeyfobError


class Clock(Protocol):
    """Time as the prober sees it; tests run a faster one, shared with the verifier."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """This machine's UTC clock."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(seconds, 0.0))


@dataclass(frozen=True)
class Probe:
    """One code sent ``offset_steps`` time steps away from now, and the verifier's answer."""

    offset_steps: int
    accepted: bool


Report = Callable[[str], None]
"""Where a target says what it waits for (the CLI prints it on stderr)."""


def _quiet(_: str) -> None:
    return None


class ProbeTarget(ABC):
    """A verifier under test. Use it as a context manager: whatever it made is removed on exit,
    Ctrl-C included."""

    period: int = 30
    order: tuple[int, ...] = (1, -1)
    """The directions searched after offset 0, in this order."""

    def __init__(self, clock: Clock | None = None, guard: float = 2.0) -> None:
        self.clock: Clock = clock or SystemClock()
        self.guard = guard
        self.report: Report = _quiet

    @property
    @abstractmethod
    def name(self) -> str:
        """What the JSON calls the target (never a secret or key)."""

    def prepare(self, max_steps: int) -> None:  # noqa: B027 - optional hook
        """Work to do before the first probe (a target that must age its enrolments)."""

    @abstractmethod
    def probe(self, offset: int) -> bool:
        """Send one code ``offset`` steps from now; True when the verifier accepts it."""

    def finish(self) -> None:  # noqa: B027 - optional hook
        """Work at a normal end of the search (not after Ctrl-C or an error)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Remove whatever the probes made."""

    def __enter__(self) -> ProbeTarget:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """:meth:`finish` after a normal end; :meth:`close` always."""
        try:
            if kind is None:
                self.finish()
        finally:
            self.close()

    def fresh_step(self, earliest: int | None = None) -> int:
        """The current step once it is at least ``earliest`` and ``guard`` seconds away from
        both of its boundaries, sleeping until then."""
        while True:
            now = self.clock.now()
            step, phase = divmod(now, self.period)
            if earliest is not None and step < earliest:
                wait = earliest * self.period + self.guard - now
                self.report(f"waiting {wait:.0f} s for the clock")
                self.clock.sleep(wait)
            elif phase < self.guard:
                self.clock.sleep(self.guard - phase)
            elif phase > self.period - self.guard:
                self.clock.sleep(self.period - phase + self.guard)
            else:
                return int(step)


@dataclass
class SkewResult:
    """Every probe made, and the offsets accepted."""

    target: str
    period: int
    max_steps: int
    probes: list[Probe] = field(default_factory=list)

    def _accepted(self) -> list[int]:
        return sorted(p.offset_steps for p in self.probes if p.accepted)

    @property
    def from_steps(self) -> int | None:
        found = self._accepted()
        return found[0] if found else None

    @property
    def to_steps(self) -> int | None:
        found = self._accepted()
        return found[-1] if found else None

    @property
    def from_seconds(self) -> int | None:
        return None if self.from_steps is None else self.from_steps * self.period

    @property
    def to_seconds(self) -> int | None:
        return None if self.to_steps is None else self.to_steps * self.period

    @property
    def at_limit(self) -> bool:
        """An edge was not found: the verifier accepts at least up to ``max_steps``."""
        return any(abs(p.offset_steps) == self.max_steps and p.accepted for p in self.probes)

    def as_json(self) -> dict[str, Any]:
        """The schema of issue 14, in this key order."""
        return {
            "target": self.target,
            "from_steps": self.from_steps,
            "to_steps": self.to_steps,
            "from_seconds": self.from_seconds,
            "to_seconds": self.to_seconds,
            "probes": [
                {"offset_steps": p.offset_steps, "accepted": p.accepted}
                for p in sorted(self.probes, key=lambda p: p.offset_steps)
            ],
        }


def walk(order: tuple[int, ...], max_steps: int) -> Generator[int, bool, None]:
    """The offsets :func:`search` probes, one at a time: send each answer in to get the next.

    Offset 0, then each direction of ``order`` outward, stopping at the first refusal that
    follows an acceptance (an accepting range is contiguous in every verifier known) or at
    ``max_steps``. A verifier refusing 0 is searched until it accepts and then refuses. A
    generator, so that a target that waits for its clock can replay it with guessed answers to
    estimate how long the rest of a search takes."""
    zero = yield 0
    for direction in order:
        seen = zero
        for k in range(1, max_steps + 1):
            accepted = yield direction * k
            if seen and not accepted:
                break
            seen = seen or accepted


def search(
    target: ProbeTarget, max_steps: int, on_probe: Callable[[Probe], None] | None = None
) -> SkewResult:
    """Probe ``target`` at the offsets of :func:`walk` (0, then ``target.order`` outward)."""
    result = SkewResult(target.name, target.period, max_steps)
    target.prepare(max_steps)
    offsets = walk(target.order, max_steps)
    offset = next(offsets)
    while True:
        probe = Probe(offset, target.probe(offset))
        result.probes.append(probe)
        if on_probe is not None:
            on_probe(probe)
        try:
            offset = offsets.send(probe.accepted)
        except StopIteration:
            return result


BAR_ACCEPT, BAR_REJECT = "█", "·"


def chart(result: SkewResult) -> str:
    """A one-line chart of the offsets probed (█ accepted, · refused), 0 marked below."""
    if not result.probes:
        return ""
    by_offset = {p.offset_steps: p.accepted for p in result.probes}
    low, high = min(by_offset), max(by_offset)
    cells = [
        " " if k not in by_offset else BAR_ACCEPT if by_offset[k] else BAR_REJECT
        for k in range(low, high + 1)
    ]
    left, right = f"{low:+d} ", f" {high:+d}"
    marker = " " * (len(left) + (0 - low)) + "^ 0" if low <= 0 <= high else ""
    return f"{left}{''.join(cells)}{right}\n{marker}".rstrip() + "\n"


def table(result: SkewResult) -> str:
    """Offset in steps and seconds, and the answer, one row per probe."""
    rows = [f"{'steps':>6} {'seconds':>8}  answer"]
    for p in sorted(result.probes, key=lambda p: p.offset_steps):
        seconds = p.offset_steps * result.period
        rows.append(
            f"{p.offset_steps:>+6d} {seconds:>+8d}  {'accepted' if p.accepted else 'refused'}"
        )
    return "\n".join(rows) + "\n"


def plot(result: SkewResult, path: str) -> None:
    """The probes as a bar chart in a PNG (matplotlib, the optional ``plot`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise KeyfobError(
            "--plot needs matplotlib, which is not installed",
            hint="pip install 'keyfob[plot]' (or leave out --plot: the chart is in the terminal)",
        ) from None
    probes = sorted(result.probes, key=lambda p: p.offset_steps)
    fig, ax = plt.subplots(figsize=(8, 2.5))
    ax.bar(
        [p.offset_steps for p in probes],
        [1] * len(probes),
        color=["tab:green" if p.accepted else "tab:red" for p in probes],
    )
    ax.set_yticks([])
    ax.set_xlabel(f"offset in time steps of {result.period} s")
    ax.set_title(f"{result.target}: accepted {result.from_steps}…{result.to_steps} steps")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
