"""The pipeline after the token check: parse, authorise, then (for a real callback)
archive, verify, claim, act, notify.

Status contract: 2xx processed/duplicate/nothing to do; 4xx permanent; 5xx only when
a retry can help (COS, CI or the network failed), and only after the raw body is
archived (or archiving itself is what failed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime, timezone
from typing import Any

from . import budget, keys, log
from .context import Invocation
from .continuation import chain
from .durable import idempotency, inbox
from .edge.http import HttpRequest, HttpResponse
from .errors import REFUSED_BY_SDK, InvalidCallback, NotifyError, StorageError, VerificationFailed
from .model.models import Callback
from .model.parse import parse_callback
from .routing.router import Route, Router
from .trust import policy


def process(request: HttpRequest, inv: Invocation, router: Router) -> HttpResponse:
    """An authenticated request, from body to response."""
    try:
        callback = parse_callback(request.body, request.content_type)
    except InvalidCallback as exc:
        return HttpResponse.error(400, str(exc))
    inv.fields.update(describe(callback))
    policy.authorize(callback, inv.settings)
    if getattr(callback, "is_test", False):
        return dispatch(callback, inv, router)  # console test: no storage at all
    return run_durably(request, callback, inv, router)


def dispatch(callback: Callback, inv: Invocation, router: Router) -> HttpResponse:
    """Run every matching handler and describe the outcome."""
    routes = router.resolve(callback)
    for route in routes:
        route.handler(callback, inv)
    inv.fields["actions"] = [a["action"] for a in inv.actions]
    status = _outcome(callback, routes)
    return respond(200, status, callback, routes=routes, actions=inv.actions)


def respond(status_code: int, status: str, callback: Callback, reason: str | None = None,
            routes: list[Route] | None = None, actions: list[dict[str, Any]] | None = None) -> HttpResponse:
    payload: dict[str, Any] = {"ok": status_code < 400, "status": status, "reason": reason or _reason(status),
                               **describe(callback)}
    if routes is not None:
        payload["handlers"] = [r.name for r in routes]
    if actions is not None:
        payload["actions"] = actions
    return HttpResponse(status_code, payload)


def describe(callback: Callback) -> dict[str, Any]:
    """What a response and a log line say about a callback."""
    return {"kind": callback.kind, "id": callback.id, "tag": callback.tag, "state": callback.state}


def _outcome(callback: Callback, routes: list[Route]) -> str:
    if getattr(callback, "is_test", False):
        return "test"
    if all(r.fallback for r in routes):
        return "ignored"
    return "processed"


def _reason(status: str) -> str:
    return {
        "processed": "callback processed",
        "ignored": "valid callback, nothing to do",
        "test": "console test request acknowledged",
        "duplicate": "already processed",
    }.get(status, status)


def run_durably(request: HttpRequest, callback: Callback, inv: Invocation, router: Router) -> HttpResponse:
    settings = inv.settings
    storage = inv.services.storage
    storage.learn_regions(policy.named_regions(callback))  # every COS call below goes where its bucket is
    bucket = policy.home_bucket(settings, callback)

    # 1. The durable inbox, in parallel with the claim (they do not depend on each other):
    #    nothing *acts* before both succeeded, and a failed archive gives the lease back.
    archive: Future[None] | None = None
    archived = False
    delivery: Future[None] | None = None  # this delivery's record, written beside the archive
    digest = inbox.body_digest(request.body)  # hashed once, for the key, the document and a checkpoint
    archive_key = inbox.archive_key(settings.archive_prefix, callback, request.body, digest)
    if settings.enabled("archive"):
        if bucket is None:
            log.warn("callback not archived: no bucket known", kind=callback.kind, id=callback.id)
        else:
            archived = True
            # A replay's body was read from this very key: it is not rewritten, so the archive keeps
            # the source it first arrived by (the replay's own delivery record says "replay").
            if inv.source != "replay":
                document = inbox.archive_document(request, callback, digest, inv.source)
                archive = inv.services.pool.submit(storage.put_json, bucket, archive_key, document)
                del document  # the task holds it until written
            delivery = _record_delivery(inv, bucket, callback, digest, archive_key)

    def archive_failed() -> StorageError | None:
        nonlocal delivery
        if delivery is not None:  # on every way out: the record must be written before we answer
            _settle(delivery, callback)
            delivery = None
        try:
            if archive is not None:
                archive.result()
        except StorageError as exc:
            return exc
        return None

    # 2. Optional verification against CI's own record of the job or run.
    if settings.verify_jobs:
        from .durable.verify import verify  # only when enabled

        try:
            verify(callback, inv)
        except VerificationFailed as exc:
            archive_failed()
            log.warn("callback does not match CI's record", reason=str(exc), **describe(callback))
            return respond(403, "rejected", callback, reason=f"verification failed: {exc}")
        except StorageError as exc:
            failed = archive_failed()
            return unavailable(callback, failed or exc, inv, archived=archived and failed is None)

    # 3. Claim the (id, state) marker so duplicates are cheap and never run twice.
    lease = None
    if settings.enabled("dedupe") and bucket is not None:
        try:
            claim = idempotency.claim(storage, bucket, settings.marker_prefix, callback,
                                      _lease_ttl(inv), inv.request_id)
        except StorageError as exc:
            failed = archive_failed()
            return unavailable(callback, failed or exc, inv, archived=archived and failed is None)
        if claim.lease is None:
            archive_failed()  # written or not, a duplicate is answered as one
            inv.fields["actions"] = []
            reason = "already processed" if claim.duplicate == "done" else "being processed by another delivery"
            return respond(200, "duplicate", callback, reason=reason)
        lease = claim.lease
        if lease.number > idempotency.STUCK_ATTEMPTS:
            log.warn(f"stuck: {lease.number - 1} attempts did not finish; claiming {lease.key.rpartition('/')[2]}",
                     attempts=lease.number - 1, **describe(callback))
    failed = archive_failed()
    if failed is not None:
        if lease is not None:
            idempotency.release(storage, lease)
        return unavailable(callback, failed, inv, archived=False)
    if archived:
        inv.record("archive", bucket=bucket, key=archive_key)
        inv.fields["archive_key"] = archive_key
    # A claim past lease-1 follows an earlier delivery that stopped: a broken chain may have
    # left a checkpoint to resume from (one more request, on that path only).
    previous = chain.checkpoint_of(storage, lease, digest) if lease and lease.number > 1 and \
        chain.may_continue(callback, settings) else None
    if previous is not None:
        inv.resume, inv.step = previous.get("tasks"), int(previous.get("step") or 1) + 1
        log.info("resuming from a checkpoint", step=inv.step, done=(inv.resume or {}).get("done"),
                 **describe(callback))
    origin = chain.Origin(bucket, archive_key if archived else None, digest, lease, previous)
    return conclude(callback, inv, origin, lambda: dispatch(callback, inv, router))


def conclude(callback: Callback, inv: Invocation, origin: chain.Origin,
             act: Callable[[], HttpResponse]) -> HttpResponse:
    """Act, then continue (work left at the deadline), or notify and write the done marker."""
    settings = inv.settings
    storage = inv.services.storage
    lease = origin.lease
    try:
        response = act()
        if inv.pending is not None:
            return hand_over(callback, inv, origin)
        if settings.notify_function and settings.enabled("notify") and response.payload["status"] == "processed":
            written = chain.written(callback, inv)
            # event_id: stable per (kind, id, state), so consumers can dedupe an at-least-once notify.
            event_id = keys.event_id(callback.kind, callback.id, callback.state)
            request_id = inv.services.scf.invoke(
                settings.notify_function,
                {"event_id": event_id, "callback": chain.notify_view(callback), "written": written})
            inv.record("notify", function=settings.notify_function, request_id=request_id, event_id=event_id)
            inv.fields["actions"] = [a["action"] for a in inv.actions]
    except (StorageError, NotifyError) as exc:
        _give_back(inv, origin)
        if not exc.transient:
            log.error("action failed permanently", error=str(exc), **describe(callback))
        return unavailable(callback, exc, inv, archived=origin.archive_key is not None)
    except BaseException:
        _give_back(inv, origin)
        raise
    if lease is not None:
        try:
            idempotency.complete(storage, lease, _done_summary(inv))
        except StorageError as exc:  # actions are done and idempotent: a retry is harmless
            log.warn("done marker not written", error=str(exc), **describe(callback))
        else:
            chain.forget(inv, origin)
    return response


def _done_summary(inv: Invocation) -> dict[str, Any]:
    """What the done marker keeps: who finished, how the callback came, and whether notify ran
    with which event_id (``ci-callback inspect`` reads it; nothing else records a notify in the bucket)."""
    notified = next((a for a in inv.actions if a["action"] == "notify"), None)
    notify: dict[str, Any] = {"ran": False}
    if notified is not None:
        notify = {"ran": True, "function": notified.get("function"), "event_id": notified.get("event_id"),
                  "request_id": notified.get("request_id")}
    return {"request_id": inv.request_id, "source": inv.source, "steps": inv.step, "notify": notify}


def _record_delivery(inv: Invocation, bucket: str, callback: Callback, digest: str,
                     archive_key: str) -> Future[None]:
    """Start writing this delivery's record beside the archived body, in parallel with the
    archive write, so it costs no round trip on the critical path. Part of "archive"."""
    settings = inv.settings
    received = datetime.now(timezone.utc)
    key = keys.delivery_key(settings.archive_prefix, callback.kind, callback.id, callback.state, inv.source,
                            received, inv.request_id)
    document = inbox.delivery_document(callback, inv.source, inv.request_id, received, digest, archive_key)
    inv.fields["delivery_key"] = key
    return inv.services.pool.submit(inv.services.storage.put_json, bucket, key, document)


def _settle(delivery: Future[None], callback: Callback) -> None:
    """Wait for the delivery record. Losing one only loses a count, never the callback:
    a WARN, and processing goes on (the archived body is what must be safe)."""
    try:
        delivery.result()
    except StorageError as exc:
        log.warn("delivery record not written", error=str(exc), **describe(callback))


def hand_over(callback: Callback, inv: Invocation, origin: chain.Origin) -> HttpResponse:
    """The deadline stopped the work: checkpoint it and invoke this function to go on.

    202 "continuing" only once both the checkpoint and the Invoke succeeded; otherwise the
    lease goes back and the answer is 503, so CI (or SCF's async retry) delivers it again
    and the claim finds the checkpoint.
    """
    pending = inv.pending
    assert pending is not None
    if pending.progress.done == int((inv.resume or {}).get("done") or 0):
        # Nothing finished here: a continuation would fare no better, endlessly. The lease goes
        # back (a continuation's expires) and a retry, or the sweep's inbox re-drive, resumes.
        log.warn("job step made no progress; not continued", reason=budget.NO_TIME, step=inv.step,
                 **describe(callback))
        _give_back(inv, origin)
        return respond(503, "retry", callback, reason=f"no progress: {budget.NO_TIME}")
    try:
        request_id = chain.save_and_invoke(callback, inv, origin, pending)
    except (StorageError, NotifyError) as exc:
        _give_back(inv, origin)
        return unavailable(callback, exc, inv, archived=origin.archive_key is not None)
    inv.record("continue", step=inv.step + 1, request_id=request_id, done=pending.progress.done,
               total=pending.progress.total)
    inv.fields["actions"] = [a["action"] for a in inv.actions]
    inv.fields["step"] = inv.step
    return respond(202, "continuing", callback, reason="more work than fits before the deadline: continuing",
                   actions=inv.actions)


def continue_chain(event: dict[str, Any], inv: Invocation) -> HttpResponse:
    """A continuation event: resume the job its checkpoint describes, from where it stopped."""
    from .actions import builtin as actions  # the built-in job work is what continues

    pointer = chain.pointer(event, inv.settings)
    resumed = chain.load(inv, pointer)  # raises StorageError: SCF's async retry runs it again
    if isinstance(resumed, str):
        log.warn("continuation has nothing to do", reason=resumed, checkpoint=pointer.key, step=pointer.step)
        inv.fields["outcome"] = "nothing-to-do"
        return HttpResponse(200, {"ok": True, "status": "nothing-to-do", "reason": resumed})
    callback, origin, document = resumed
    inv.fields.update(describe(callback))
    inv.step, inv.resume = pointer.step, document.get("tasks")

    def act() -> HttpResponse:
        actions.index_and_tag_job(callback, inv)
        return respond(200, "processed", callback, actions=inv.actions)

    return conclude(callback, inv, origin, act)


def _give_back(inv: Invocation, origin: chain.Origin) -> None:
    """After a failure: release the lease so a retry can run at once (keeping its number
    when a checkpoint exists, see ``idempotency.release``). A continuation keeps it: SCF
    retries a failed async invocation with the same event (docs/tencent-facts.md, "SCF
    async retries"), and that retry must still hold it; if none comes, it expires."""
    if origin.lease is not None and inv.source != "continuation":
        idempotency.release(inv.services.storage, origin.lease, keep_number=origin.checkpoint is not None)


def _lease_ttl(inv: Invocation) -> int:
    """A lease outlives its invocation by a little only: if this run crashes or times out,
    CI's next retry can take over instead of being told "duplicate" until the TTL."""
    ttl = inv.settings.marker_ttl_seconds
    if inv.deadline is not None:
        ttl = min(ttl, int(max(inv.deadline - time.monotonic(), 0)) + 5)
    return max(ttl, 1)


def unavailable(callback: Callback, exc: Exception, inv: Invocation, archived: bool) -> HttpResponse:
    if isinstance(exc, StorageError) and exc.code == REFUSED_BY_SDK:
        # The SDK refused the request before sending it (say, a bucket name it cannot use): the
        # same callback fails the same way every time, so no 503 asks for a retry.
        log.error("callback cannot be stored: the COS SDK refused the request", error=str(exc), archived=archived,
                  **describe(callback))
        inv.fields["archived"] = archived
        return respond(400, "rejected", callback, reason=f"cannot be stored: {str(exc)[:120]}")
    log.error("storage or downstream failed; asking CI to retry", error=str(exc), archived=archived,
              **describe(callback))
    inv.fields["archived"] = archived
    return respond(503, "retry", callback, reason=f"temporarily unavailable: {str(exc)[:120]}")
