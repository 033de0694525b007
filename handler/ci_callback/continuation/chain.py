"""Continuations: a job too big for one invocation goes on in the next (format: ``checkpoint``).

The pipeline calls in here at three points: when it claims a large job (is there the
checkpoint of an earlier, broken chain to resume?), when the work deadline stopped the
work (``save_and_invoke``: write the checkpoint and renew the lease in parallel, then
invoke this same function asynchronously with a pointer to the checkpoint), and when a
continuation event arrives (``load``: read the checkpoint, check the lease is still
ours, read the archived body back and parse it again).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .. import checkpoint, keys, log
from ..actions import builtin as actions
from ..context import Invocation
from ..durable import idempotency, inbox
from ..errors import ActionSkipped, HttpError, InvalidCallback, NotifyError, StorageError
from ..model.models import Callback, JobCallback
from ..model.parse import parse_callback
from ..settings import Settings
from ..times import iso
from ..trust import policy

if TYPE_CHECKING:  # reached through the invocation
    from ..adapters.cos import CosStorage


@dataclass
class Origin:
    """Where one callback's durable state lives: its home bucket, archived body and lease."""

    bucket: str | None
    archive_key: str | None  # None when the body was not archived (then it cannot continue)
    digest: str
    lease: idempotency.Lease | None
    checkpoint: dict[str, Any] | None = None  # the checkpoint this invocation resumed from


def may_continue(callback: Callback, settings: Settings) -> bool:
    """Could a checkpoint exist for this callback? Only successful jobs' work continues, and
    only when their body is archived (a continuation reads it back)."""
    return isinstance(callback, JobCallback) and callback.state == "Success" and settings.enabled("archive")


def checkpoint_of(storage: CosStorage, lease: idempotency.Lease, digest: str) -> dict[str, Any] | None:
    """The checkpoint beside LEASE, if it is one of ours for this very body."""
    try:
        document = storage.get_json(lease.bucket, keys.checkpoint_key(lease.base))
    except StorageError as exc:  # only an optimisation: without it the work starts over
        log.warn("checkpoint not read; starting over", error=str(exc))
        return None
    if not document or document.get("schema") != checkpoint.SCHEMA or document.get("sha256") != digest:
        return None
    return document


def notify_view(callback: Callback) -> dict[str, Any]:
    """The callback as the notify payload carries it; a very large job without its output
    lists (the receiver reads them from the index parts)."""
    if isinstance(callback, JobCallback) and len(callback.outputs) > actions.PART_SIZE:
        return {"outputs": len(callback.outputs), **actions.without_outputs(callback)}
    return callback.to_dict()


def written(callback: Callback, inv: Invocation) -> list[dict[str, str]]:
    """What the notify payload lists: the documents this invocation wrote, and, at the end
    of a chain, the job's index document (written by its first step)."""
    found = [{"bucket": a["bucket"], "key": a["key"]} for a in inv.actions if "key" in a and a["action"] != "archive"]
    if inv.step > 1 and isinstance(callback, JobCallback) and inv.settings.enabled("index") and \
            not any(a["action"] == "index" for a in inv.actions):
        first_output = callback.outputs[0].bucket if callback.outputs else None
        try:
            bucket = policy.index_location(inv.settings, callback.input.bucket, first_output)
        except ActionSkipped:
            return found
        found.insert(0, {"bucket": bucket, "key": keys.job_index_key(
            inv.settings.index_prefix, callback.input.bucket, callback.input.key, callback.job_id)})
    return found


def target(inv: Invocation) -> tuple[str, str, str | None]:
    """This function, as SCF names it: the context's function_name and namespace, else the
    SCF_FUNCTIONNAME / SCF_NAMESPACE variables (SCF doc 583/9210; doc 583/32748)."""
    scf = inv.scf
    function = scf.get("function_name") or os.environ.get("SCF_FUNCTIONNAME")
    namespace = scf.get("namespace") or os.environ.get("SCF_NAMESPACE") or "default"
    if not function or not isinstance(function, str):
        raise NotifyError("cannot continue: no function name (SCF context function_name or SCF_FUNCTIONNAME)", transient=False)
    qualifier = scf.get("function_version")  # the chain stays on the version that started it
    return function, str(namespace), qualifier if isinstance(qualifier, str) and qualifier else None


def invoke_self(inv: Invocation, pointer: dict[str, Any]) -> str | None:
    """Invoke this function asynchronously with ``{"ci_callback": {"continuation": POINTER}}``.

    The seam for any work that keeps its own state in COS and only points at it: a job's
    checkpoint (``save_and_invoke``), or a sweep that ran out of time with its cursor
    (``"for": "sweep"``; ``app.CONTINUATIONS`` routes each kind). Raises NotifyError on failure.
    """
    function, namespace, qualifier = target(inv)
    request_id: str | None = inv.services.scf.invoke(
        function, {checkpoint.EVENT_KEY: {"continuation": pointer}}, namespace, qualifier)
    return request_id


def save_and_invoke(callback: Callback, inv: Invocation, origin: Origin, pending: checkpoint.Pending) -> str | None:
    """Write the checkpoint ∥ renew the lease, then Invoke with the pointer. Raises on failure."""
    if origin.bucket is None or origin.archive_key is None or origin.lease is None:
        raise StorageError("cannot continue without the archive and the lease (actions archive, dedupe)",
                           transient=True)
    target(inv)  # no function name: fail before writing anything
    storage = inv.services.storage
    key = keys.checkpoint_key(origin.lease.base)
    now = iso(datetime.now(timezone.utc))
    previous = origin.checkpoint or {}
    region = storage.region_of(origin.bucket)  # so the continuation resolves it the same way
    document = {
        "schema": checkpoint.SCHEMA, "kind": callback.kind, "id": callback.id, "state": callback.state,
        "tag": callback.tag, "sha256": origin.digest,
        "archive": {"bucket": origin.bucket, "key": origin.archive_key, "region": region},
        "lease": {"key": origin.lease.key, "nonce": origin.lease.nonce},
        "created_at": previous.get("created_at") or now, "updated_at": now, "step": inv.step,
        "request_id": inv.request_id, "tasks": pending.progress.to_dict(pending.index_tasks),
        "status": "continuing",
    }
    renewal = inv.services.pool.submit(idempotency.renew, storage, origin.lease, inv.settings.marker_ttl_seconds,
                                       inv.request_id, inv.step + 1)
    try:
        storage.put_json(origin.bucket, key, document, compact=True)
    finally:
        renewal.result()  # raises its own error after ours, if both failed
    origin.checkpoint = document
    event = checkpoint.continuation_event(origin.bucket, region, key, inv.step + 1, callback.kind, callback.id)
    return invoke_self(inv, event[checkpoint.EVENT_KEY]["continuation"])


def forget(inv: Invocation, origin: Origin) -> None:
    """The job is done (the done marker is written): its checkpoint goes, best effort.

    Also when this invocation did not resume one: a claim past lease-1 follows an earlier
    attempt, whose chain may have left a checkpoint of another body (the sweep rebuilds the
    callback from CI's listing) or one unread. One DELETE, on that path only; none on lease-1,
    as a checkpoint is only ever beside a lease a later claim supersedes (idempotency.release)."""
    lease = origin.lease
    if origin.bucket is None or lease is None or (origin.checkpoint is None and lease.number <= 1):
        return
    try:
        inv.services.storage.delete(origin.bucket, keys.checkpoint_key(lease.base))
    except StorageError as exc:  # a stale checkpoint is ignored: the done marker answers first
        log.warn("checkpoint not deleted", error=str(exc))


# ---------------------------------------------------------------- the continuation event


def pointer(event: dict[str, Any], settings: Settings) -> checkpoint.Pointer:
    """The event's checkpoint pointer, refused (400/403) unless it points where we write."""
    found = checkpoint.pointer_of(event, settings.marker_prefix)
    if found is None:
        raise HttpError(400, "not a continuation event of this function")
    if not (policy.allowed(settings, found.bucket) or found.bucket == settings.index_bucket):
        raise HttpError(403, f"bucket {found.bucket[:63]} is not allowed")
    return found


def load(inv: Invocation, at: checkpoint.Pointer) -> tuple[JobCallback, Origin, dict[str, Any]] | str:
    """(callback, origin, checkpoint) to resume, or why there is nothing to do."""
    storage = inv.services.storage
    storage.learn_regions([(at.bucket, at.region)])
    document = storage.get_json(at.bucket, at.key)
    if document is None or document.get("schema") != checkpoint.SCHEMA:
        return "checkpoint gone: the chain finished, or another delivery took over"
    archive, held = document.get("archive"), document.get("lease")
    if not isinstance(archive, dict) or not isinstance(held, dict):
        return "checkpoint without archive or lease"
    lease = idempotency.lease_at(at.bucket, str(held.get("key") or ""), str(held.get("nonce") or ""))
    if lease is None or lease.base + keys.checkpoint_key("") != at.key:
        return "checkpoint names a lease elsewhere"
    stored = inv.services.pool.submit(storage.get_json, at.bucket, str(archive.get("key") or ""))
    ours = idempotency.holds(storage, lease)
    body_document = stored.result()
    if not ours:
        return "the lease is no longer ours: another delivery took over"
    if body_document is None:
        return "archived body gone"
    body = inbox.body_of(body_document)
    headers = body_document.get("headers")
    del body_document
    try:
        callback = parse_callback(body, headers.get("content-type") if isinstance(headers, dict) else None)
    except InvalidCallback as exc:
        return f"archived body does not parse: {exc}"
    if not isinstance(callback, JobCallback):
        return "archived body is not a job callback"
    storage.learn_regions(policy.named_regions(callback))  # its outputs are tagged where they live
    if inbox.body_digest(body) != document.get("sha256"):
        return "archived body differs from the checkpoint's"
    del body
    idempotency.renew(storage, lease, inv.settings.marker_ttl_seconds, inv.request_id, at.step)
    origin = Origin(at.bucket, str(archive["key"]), str(document["sha256"]), lease, document)
    log.info("continuing", step=at.step, done=(document.get("tasks") or {}).get("done"),
             total=(document.get("tasks") or {}).get("total"), kind=callback.kind, id=callback.id,
             started=round(time.monotonic() - inv.started, 3))
    return callback, origin, document
