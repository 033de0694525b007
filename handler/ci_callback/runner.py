"""The one item runner: every entry runs each of its items here.

An item is one callback's worth of work: an HTTP request, a queue record, a job the sweep
found in CI's list, a replayed archive, a continuation step. ``run_item`` owns what every
item needs the same way, so no entry can forget one of them:

- the bug guard: an exception from our code or a user's handler is logged with its trace
  and answered 500 for that item only; the entry's other items go on;
- a storage or SCF failure that escaped the pipeline's own handling is a 503 (a retry helps);
- the one ``callback`` log line per item, with its outcome and duration.

The adapters are built on first use by ``Invocation.services``; items share their entry's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from . import log
from .context import Invocation
from .edge.http import HttpResponse
from .errors import HttpError, NotifyError, StorageError


def run_item(inv: Invocation, work: Callable[[], HttpResponse], *, what: str = "the callback") -> HttpResponse:
    """Run WORK for the item INV describes; every outcome becomes a response, logged once."""
    try:
        response = work()
    except HttpError as exc:
        response = refused(exc)
    except (StorageError, NotifyError) as exc:  # I/O failed before the pipeline could answer: retry
        log.error(f"{what} failed before any work; a retry runs it again", error=str(exc), **inv.fields)
        response = HttpResponse.error(503, f"temporarily unavailable: {str(exc)[:120]}")
    except Exception as exc:  # a bug, ours or a user handler's: this item only
        log.unhandled(exc, **inv.fields)
        response = HttpResponse.error(500, f"internal error; {what} was not processed")
    finish(response, inv, inv.started)
    return response


def refused(exc: HttpError) -> HttpResponse:
    headers = {"Allow": "POST"} if exc.status == 405 else {}
    return HttpResponse(exc.status, {"ok": False, "status": "rejected", "reason": exc.reason}, headers)


def finish(response: HttpResponse, inv: Invocation, started: float) -> None:
    """The item's one log line."""
    inv.fields.setdefault("outcome", response.payload.get("status"))
    log.info(
        "callback",
        status=response.status,
        reason=response.payload.get("reason"),
        duration_ms=round((time.monotonic() - started) * 1000, 2),
        **inv.fields,
    )
