"""A token's drift history (issue 13): the drift learned at each accepted code, kept compactly.

Stored in ``tokens.drift_history`` as JSON, run-length encoded: a list of runs
``[first_at, last_at, drift, accepts]`` (Unix seconds, steps, count), oldest first. Consecutive
accepts with the same drift extend the last run, so a token used daily at a steady offset costs
one run; a new run starts when the drift changes. At most :data:`MAX_RUNS` runs are kept (the
oldest dropped), which keeps the column under its 1024 characters.

Written by ``repo.apply_state`` in the same compare-and-set UPDATE that accepts the code: no
statement is added to the validation path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MAX_RUNS = 20
MAX_CHARS = 1024


@dataclass(frozen=True)
class Run:
    """Accepted codes in a row that all learned the same drift."""

    first_at: int
    last_at: int
    drift: int  # steps
    accepts: int

    def as_list(self) -> list[int]:
        return [self.first_at, self.last_at, self.drift, self.accepts]


def parse(text: str | None) -> list[Run]:
    """The runs of a stored history; an empty or unreadable one is no history (never an error:
    the history is for people to read, and must not stop a code from being accepted)."""
    if not text:
        return []
    try:
        raw = json.loads(text)
        return [Run(*(int(x) for x in item)) for item in raw if len(item) == 4]
    except (ValueError, TypeError):
        return []


def dump(runs: list[Run]) -> str:
    text = json.dumps([r.as_list() for r in runs], separators=(",", ":"))
    while len(text) > MAX_CHARS and runs:
        runs = runs[1:]
        text = json.dumps([r.as_list() for r in runs], separators=(",", ":"))
    return text


def append(text: str | None, at: float, drift: int) -> str:
    """The history with one more accept at ``at`` (Unix seconds) that learned ``drift``."""
    runs = parse(text)
    now = int(at)
    if runs and runs[-1].drift == drift:
        last = runs[-1]
        runs[-1] = Run(last.first_at, now, drift, last.accepts + 1)
    else:
        runs.append(Run(now, now, drift, 1))
    return dump(runs[-MAX_RUNS:])


def rate_per_day(runs: list[Run], period: int) -> float | None:
    """Seconds of drift gained per day, from the first run to the last (None: too little
    history, or less than an hour of it, to say)."""
    if len(runs) < 2:
        return None
    span = runs[-1].last_at - runs[0].first_at
    if span < 3600:
        return None
    return (runs[-1].drift - runs[0].drift) * period * 86400 / span
