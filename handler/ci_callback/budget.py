"""Time budgets: when an invocation must have answered, and what may still start before then.

SCF kills an invocation at ``time_limit_in_ms`` (the context field; SCF doc
583/9210). We answer by the *deadline*, ``MARGIN_S`` before that (half the limit
for limits under a second). Work that fans out stops at the *work deadline*, earlier by
the *closing reserve*: the time to write a checkpoint, renew the lease and invoke the
continuation, estimated from the COS round trips seen so far in this container.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

MARGIN_S = 0.5
RESERVE_FLOOR_S = 0.3  # the SCF Invoke and the answer, on top of the COS round trips
RESERVE_SHARE = 0.4  # never more than this share of the limit (tiny limits still do some work)
DEFAULT_RTT_S = 0.05  # before any request was timed
NO_TIME = "the timeout leaves no time after the reserve"  # why a step that did nothing does not chain


def deadline_of(context: Any, started: float) -> float | None:
    """``time.monotonic()`` by which to answer, from the SCF context; None when it has no limit."""
    limit = context.get("time_limit_in_ms") if isinstance(context, dict) else None
    if isinstance(limit, (int, float)) and not isinstance(limit, bool) and limit > 0:
        return started + max(limit / 1000.0 - MARGIN_S, limit / 2000.0)
    return None


class Meter:
    """Recent COS request durations (the last 64), for "could it still finish in time?"."""

    def __init__(self, size: int = 64) -> None:
        self._seen: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        with self._lock:
            self._seen.append(seconds)

    def estimate(self) -> float:
        """A pessimistic request duration: the 90th percentile of the recent ones."""
        with self._lock:
            seen = sorted(self._seen)
        if not seen:
            return DEFAULT_RTT_S
        return seen[min(len(seen) - 1, int(len(seen) * 0.9))]


METER = Meter()  # one per container: the latency to COS is a property of where we run


def closing_reserve(deadline: float, started: float, rtt: float | None = None) -> float:
    """Seconds to keep free before the deadline for checkpoint ∥ lease renewal, the Invoke and the answer."""
    rtt = METER.estimate() if rtt is None else rtt
    return min(RESERVE_FLOOR_S + 3 * rtt, max(deadline - started, 0.0) * RESERVE_SHARE)


def work_deadline(deadline: float | None, started: float) -> float | None:
    return None if deadline is None else deadline - closing_reserve(deadline, started)


def may_start(until: float | None, requests: int = 1, now: float | None = None) -> bool:
    """Could REQUESTS sequential COS requests started now end by UNTIL?"""
    if until is None:
        return True
    return (time.monotonic() if now is None else now) + requests * METER.estimate() <= until
