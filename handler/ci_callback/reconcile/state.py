"""What earlier sweeps established about one listing: the incremental sweep's state. Pure, no I/O.

Per stream (and per inbox bucket) the sweep keeps a ``State``: a *watermark* (epoch seconds:
every record whose time is below it was seen final and settled by an earlier sweep, so the
listing starts there) and ``confirmed``, the records at or above the watermark already settled
(fingerprint -> time), which are not checked again. The time is CI's ``CreationTime`` for a
stream (the list APIs filter on it, doc 436/54011) and the archive's ``LastModified`` for the
inbox.

Every claim a state makes stays true (a done marker is never taken back), so any state a sweep
wrote is a valid state: a lost or stale write (two sweeps at once) costs re-checks, never a job,
and an unreadable state reads as None: one full sweep.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SCHEMA = 1


def fingerprint(kind: str, ident: str, state: str) -> str:
    """16 hex digits naming (kind, id, state): 64 bits, so a false "confirmed" is never expected."""
    text = f"{kind}\n{ident}\n{state}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(text).hexdigest()[:16]


@dataclass(frozen=True)
class State:
    watermark: float
    confirmed: Mapping[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "watermark": self.watermark,
                "confirmed": {fp: int(t) if t == int(t) else t for fp, t in sorted(self.confirmed.items())}}

    @classmethod
    def from_json(cls, document: object) -> State | None:
        """The saved state, or None (none, unreadable, another schema): the sweep lists everything."""
        if not isinstance(document, dict) or document.get("schema") != SCHEMA:
            return None
        watermark, confirmed = document.get("watermark"), document.get("confirmed")
        if isinstance(watermark, bool) or not isinstance(watermark, (int, float)) or not isinstance(confirmed, dict):
            return None
        kept: dict[str, float] = {}
        for fp, when in confirmed.items():
            if not isinstance(fp, str) or len(fp) != 16 or isinstance(when, bool) or not isinstance(when, (int, float)):
                return None
            kept[fp] = float(when)
        if any(when < watermark for when in kept.values()):
            return None
        return cls(float(watermark), kept)


@dataclass
class Observed:
    """One listing's records as they were handled: settled (done, processed, or nothing left to
    do) or open (running, settling, failed, unchecked)."""

    settled: dict[str, float] = field(default_factory=dict)
    earliest_open: float | None = None
    latest: float | None = None

    def add(self, fp: str, when: float | None, settled: bool) -> None:
        if when is None:  # no time to place it by: checked again next sweep, holds nothing
            return
        self.latest = when if self.latest is None else max(self.latest, when)
        if settled:
            self.settled[fp] = when
        elif self.earliest_open is None or when < self.earliest_open:
            self.earliest_open = when


def close(previous: State | None, observed: Observed, upper: float | None) -> State | None:
    """The state after a listing that saw every record with time in [previous watermark, UPPER].

    UPPER None: nothing new is known to be complete (the previous watermark stands). The
    watermark never passes an open record; confirmed keeps the settled records at or above it.
    """
    bounds = [b for b in (upper, observed.earliest_open) if b is not None]
    if not bounds:
        return previous
    watermark = min(bounds)
    confirmed = dict(_above(previous.confirmed.items() if previous else (), watermark))
    confirmed.update(_above(observed.settled.items(), watermark))
    return State(watermark, confirmed)


def _above(entries: Iterable[tuple[str, float]], watermark: float) -> Iterable[tuple[str, float]]:
    return ((fp, when) for fp, when in entries if when >= watermark)
