"""The pipeline after the token check: parse, authorise, then (for a real callback)
archive, verify, claim, act, notify.

Status contract: 2xx processed/duplicate/nothing to do; 4xx permanent; 5xx only when
a retry can help (COS, CI or the network failed), and only after the raw body is
archived (or archiving itself is what failed).
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from datetime import datetime, timezone
from typing import Any

from . import idempotency, inbox, keys, log, policy
from .context import Invocation
from .errors import REFUSED_BY_SDK, InvalidCallback, NotifyError, StorageError, VerificationFailed
from .http import HttpRequest, HttpResponse
from .models import Callback
from .parse import parse_callback
from .router import Route, Router


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
    if inv.services is None:
        from .services import Services  # noqa: PLC0415 - the adapters load with the first real callback

        inv.services = Services.from_env(settings, inv.deadline, policy.callback_region(callback))
    storage = inv.services.storage
    bucket = policy.home_bucket(settings, callback)
    region = policy.callback_region(callback) if bucket == callback.input.bucket else None

    # 1. The durable inbox: nothing below may run before the raw body is safe.
    if settings.enabled("archive"):
        if bucket is None:
            log.warn("callback not archived: no bucket known", kind=callback.kind, id=callback.id)
        else:
            digest = inbox.body_digest(request.body)  # hashed once, for the key and the document
            key = inbox.archive_key(settings.archive_prefix, callback, request.body, digest)
            delivery = _record_delivery(inv, bucket, region, callback, digest, key)
            try:
                storage.put_json(bucket, key, inbox.archive_document(request, callback, digest, inv.source), region)
            except StorageError as exc:
                _settle(delivery, callback)
                return _unavailable(callback, exc, inv, archived=False)
            _settle(delivery, callback)
            inv.record("archive", bucket=bucket, key=key)
            inv.fields["archive_key"] = key

    # 2. Optional verification against CI's own record of the job or run.
    if settings.verify_jobs:
        from .verify import verify  # noqa: PLC0415 - only when enabled

        try:
            verify(callback, inv)
        except VerificationFailed as exc:
            log.warn("callback does not match CI's record", reason=str(exc), **describe(callback))
            return respond(403, "rejected", callback, reason=f"verification failed: {exc}")
        except StorageError as exc:
            return _unavailable(callback, exc, inv, archived=True)

    # 3. Claim the (id, state) marker so duplicates are cheap and never run twice.
    lease = None
    if settings.enabled("dedupe") and bucket is not None:
        try:
            claim = idempotency.claim(storage, bucket, settings.marker_prefix, callback,
                                      _lease_ttl(inv), inv.request_id)
        except StorageError as exc:
            return _unavailable(callback, exc, inv, archived=True)
        if claim.lease is None:
            inv.fields["actions"] = []
            reason = "already processed" if claim.duplicate == "done" else "being processed by another delivery"
            return respond(200, "duplicate", callback, reason=reason)
        lease = claim.lease

    # 4. Route and act; 5. notify downstream.
    try:
        response = dispatch(callback, inv, router)
        if settings.notify_function and settings.enabled("notify") and response.payload["status"] == "processed":
            written = [{"bucket": a["bucket"], "key": a["key"]} for a in inv.actions if "key" in a and a["action"] != "archive"]
            # event_id: stable per (kind, id, state), so consumers can dedupe an at-least-once notify.
            event_id = keys.event_id(callback.kind, callback.id, callback.state)
            request_id = inv.services.notifier.invoke(
                settings.notify_function, {"event_id": event_id, "callback": callback.to_dict(), "written": written})
            inv.record("notify", function=settings.notify_function, request_id=request_id, event_id=event_id)
            inv.fields["actions"] = [a["action"] for a in inv.actions]
    except (StorageError, NotifyError) as exc:
        if lease is not None:
            idempotency.release(storage, lease)
        if not exc.transient:
            log.error("action failed permanently", error=str(exc), **describe(callback))
        return _unavailable(callback, exc, inv, archived=settings.enabled("archive") and bucket is not None)
    except BaseException:
        if lease is not None:
            idempotency.release(storage, lease)
        raise
    if lease is not None:
        try:
            idempotency.complete(storage, lease, _done_summary(inv))
        except StorageError as exc:  # actions are done and idempotent: a retry is harmless
            log.warn("done marker not written", error=str(exc), **describe(callback))
    return response


def _done_summary(inv: Invocation) -> dict[str, Any]:
    """What the done marker keeps: who finished, how the callback came, and whether notify ran
    with which event_id (``ci-callback inspect`` reads it; nothing else records a notify in the bucket)."""
    notified = next((a for a in inv.actions if a["action"] == "notify"), None)
    notify: dict[str, Any] = {"ran": False}
    if notified is not None:
        notify = {"ran": True, "function": notified.get("function"), "event_id": notified.get("event_id"),
                  "request_id": notified.get("request_id")}
    return {"request_id": inv.request_id, "source": inv.source, "notify": notify}


def _record_delivery(inv: Invocation, bucket: str, region: str | None, callback: Callback, digest: str,
                     archive_key: str) -> Future[None]:
    """Start writing this delivery's record beside the archived body, in parallel with the
    archive write, so it costs no round trip on the critical path. Part of "archive"."""
    settings = inv.settings
    received = datetime.now(timezone.utc)
    key = keys.delivery_key(settings.archive_prefix, callback.kind, callback.id, callback.state, inv.source,
                            received, inv.request_id)
    document = inbox.delivery_document(callback, inv.source, inv.request_id, received, digest, archive_key)
    inv.fields["delivery_key"] = key
    return inv.adapters.pool.submit(inv.adapters.storage.put_json, bucket, key, document, region)


def _settle(delivery: Future[None], callback: Callback) -> None:
    """Wait for the delivery record. Losing one only loses a count, never the callback:
    a WARN, and processing goes on (the archived body is what must be safe)."""
    try:
        delivery.result()
    except StorageError as exc:
        log.warn("delivery record not written", error=str(exc), **describe(callback))


def _lease_ttl(inv: Invocation) -> int:
    """A lease outlives its invocation by a little only: if this run crashes or times out,
    CI's next retry can take over instead of being told "duplicate" until the TTL."""
    ttl = inv.settings.marker_ttl_seconds
    if inv.deadline is not None:
        ttl = min(ttl, int(max(inv.deadline - time.monotonic(), 0)) + 5)
    return max(ttl, 1)


def _unavailable(callback: Callback, exc: Exception, inv: Invocation, archived: bool) -> HttpResponse:
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
