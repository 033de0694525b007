"""Which trigger sent an event: one small table, so the next trigger is one more line.

Checked in order; the first match wins, and anything else is an HTTP event (the
Function URL / API Gateway edge answers 400/405 for what is not). Pure and cheap: it
runs on every cold start before any token is checked, so it imports nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

HTTP = "http"
TIMER = "timer"
QUEUE = "queue"
CONTINUATION = "continuation"


def is_timer_event(event: object) -> bool:
    """``{"Type":"Timer","TriggerName":…,"Time":…,"Message":…}`` (doc 583/31927)."""
    return isinstance(event, dict) and event.get("Type") == "Timer" and "TriggerName" in event


def is_continuation_event(event: object) -> bool:
    """This function invoking itself: ``{"ci_callback": {"continuation": …}}`` (``checkpoint``)."""
    return isinstance(event, dict) and isinstance(event.get("ci_callback"), dict) and \
        "continuation" in event["ci_callback"]


def is_queue_event(event: object) -> bool:
    """A CMQ topic batch: ``Records`` holding at least one ``CMQ`` entry (doc 583/11517)."""
    if not isinstance(event, dict):
        return False
    records = event.get("Records")
    return isinstance(records, list) and any(isinstance(r, dict) and "CMQ" in r for r in records)


KINDS: tuple[tuple[str, Callable[[object], bool]], ...] = (
    (CONTINUATION, is_continuation_event),
    (TIMER, is_timer_event),
    (QUEUE, is_queue_event),
)


def classify(event: object) -> str:
    for kind, matches in KINDS:
        if matches(event):
            return kind
    return HTTP
