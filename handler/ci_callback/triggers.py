"""Which trigger sent an event: one small table, so the next trigger is one more line.

Checked in order; the first match wins, and anything else is an HTTP event (the
Function URL / API Gateway edge answers 400/405 for what is not). Pure and cheap: it
runs on a cold start before any token is checked.
"""

from __future__ import annotations

from collections.abc import Callable

from .cmq import is_queue_event

HTTP = "http"
TIMER = "timer"
QUEUE = "queue"


def is_timer_event(event: object) -> bool:
    """``{"Type":"Timer","TriggerName":…,"Time":…,"Message":…}`` (doc 583/31927)."""
    return isinstance(event, dict) and event.get("Type") == "Timer" and "TriggerName" in event


KINDS: tuple[tuple[str, Callable[[object], bool]], ...] = (
    (TIMER, is_timer_event),
    (QUEUE, is_queue_event),
)


def classify(event: object) -> str:
    for kind, matches in KINDS:
        if matches(event):
            return kind
    return HTTP
