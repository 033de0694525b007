"""The durable half of the pipeline: archive, verify, claim, act, notify.

Status contract: 2xx processed/duplicate/nothing to do; 4xx permanent; 5xx only when
a retry can help (COS, CI or the network failed), and only after the raw body is
archived (or archiving itself is what failed).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from . import idempotency, inbox, log
from .actions import ActionSkipped, index_location
from .app import _dispatch, respond
from .http import HttpRequest, HttpResponse
from .models import Callback, JobCallback
from .notify import NotifyError
from .router import Invocation, Router
from .services import Services
from .storage import StorageError


def _region(callback: Callback) -> Optional[str]:
    region = getattr(callback.input, "region", None)
    if not region and isinstance(callback, JobCallback) and callback.outputs:
        region = callback.outputs[0].region
    return region


def _home_bucket(inv: Invocation, callback: Callback) -> Optional[str]:
    outputs = [o.bucket for o in callback.outputs] if isinstance(callback, JobCallback) else []
    try:
        return index_location(inv, callback.input.bucket, *outputs)
    except ActionSkipped:
        return None


def run_durably(request: HttpRequest, callback: Callback, inv: Invocation, router: Router,
                fields: Dict[str, Any]) -> HttpResponse:
    settings = inv.settings
    if inv.services is None:
        inv.services = Services.from_env(settings, inv.deadline, _region(callback))
    storage = inv.services.storage
    bucket = _home_bucket(inv, callback)
    region = _region(callback) if bucket == callback.input.bucket else None

    # 1. The durable inbox: nothing below may run before the raw body is safe.
    if settings.enabled("archive"):
        if bucket is None:
            log.warn("callback not archived: no bucket known", kind=callback.kind, id=callback.id)
        else:
            digest = inbox.body_digest(request.body)  # hashed once, for the key and the document
            key = inbox.archive_key(settings.archive_prefix, callback, request.body, digest)
            try:
                storage.put_json(bucket, key, inbox.archive_document(request, callback, digest), region)
            except StorageError as exc:
                return _unavailable(callback, exc, fields, archived=False)
            inv.record("archive", bucket=bucket, key=key)
            fields["archive_key"] = key

    # 2. Optional verification against CI's own record of the job or run.
    if settings.verify_jobs:
        from .verify import VerificationFailed, verify  # noqa: PLC0415

        try:
            verify(callback, inv)
        except VerificationFailed as exc:
            log.warn("callback does not match CI's record", reason=str(exc), **_ids(callback))
            return respond(403, "rejected", callback, reason=f"verification failed: {exc}")
        except StorageError as exc:
            return _unavailable(callback, exc, fields, archived=True)

    # 3. Claim the (id, state) marker so duplicates are cheap and never run twice.
    lease = None
    if settings.enabled("dedupe") and bucket is not None:
        try:
            claim = idempotency.claim(storage, bucket, settings.marker_prefix, callback,
                                      _lease_ttl(inv), inv.request_id)
        except StorageError as exc:
            return _unavailable(callback, exc, fields, archived=True)
        if claim.lease is None:
            fields["actions"] = []
            reason = "already processed" if claim.duplicate == "done" else "being processed by another delivery"
            return respond(200, "duplicate", callback, reason=reason)
        lease = claim.lease

    # 4. Route and act; 5. notify downstream.
    try:
        response = _dispatch(callback, inv, router, fields)
        if settings.notify_function and settings.enabled("notify") and response.payload["status"] == "processed":
            written = [{"bucket": a["bucket"], "key": a["key"]} for a in inv.actions if "key" in a and a["action"] != "archive"]
            request_id = inv.services.notifier.invoke(
                settings.notify_function, {"callback": callback.to_dict(), "written": written})
            inv.record("notify", function=settings.notify_function, request_id=request_id)
            fields["actions"] = [a["action"] for a in inv.actions]
    except (StorageError, NotifyError) as exc:
        if lease is not None:
            idempotency.release(storage, lease)
        if not getattr(exc, "transient", True):
            log.error("action failed permanently", error=str(exc), **_ids(callback))
        return _unavailable(callback, exc, fields, archived=settings.enabled("archive") and bucket is not None)
    except BaseException:
        if lease is not None:
            idempotency.release(storage, lease)
        raise
    if lease is not None:
        try:
            idempotency.complete(storage, lease, {"request_id": inv.request_id})
        except StorageError as exc:  # actions are done and idempotent: a retry is harmless
            log.warn("done marker not written", error=str(exc), **_ids(callback))
    return response


def _lease_ttl(inv: Invocation) -> int:
    """A lease outlives its invocation by a little only: if this run crashes or times out,
    CI's next retry can take over instead of being told "duplicate" until the TTL."""
    ttl = inv.settings.marker_ttl_seconds
    if inv.deadline is not None:
        import time

        ttl = min(ttl, int(max(inv.deadline - time.monotonic(), 0)) + 5)
    return max(ttl, 1)


def _ids(callback: Callback) -> Dict[str, Any]:
    return {"kind": callback.kind, "id": callback.id, "tag": callback.tag, "state": callback.state}


def _unavailable(callback: Callback, exc: Exception, fields: Dict[str, Any], archived: bool) -> HttpResponse:
    log.error("storage or downstream failed; asking CI to retry", error=str(exc), archived=archived, **_ids(callback))
    fields["archived"] = archived
    return respond(503, "retry", callback, reason=f"temporarily unavailable: {str(exc)[:120]}")
