"""Follow-up actions on COS: index objects, output tags, failure and review records.

Every action is idempotent on its own: documents go to deterministic keys with
deterministic content (no "written at" stamps), and tagging merges into the object's
existing tags and skips the write when nothing changes. So a re-delivered callback
leaves exactly what one delivery left.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import Future
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from . import keys, log, policy
from .context import Invocation
from .errors import ActionSkipped, NotFound
from .models import JobCallback, ModerationCallback, ObjectRef, PicProcessResult, SmartCoverResult, WorkflowCallback
from .times import iso, parse_time

SCHEMA = 1
MAX_TAGS = 10
# COS tag rules (PutObjectTagging doc, tencent-facts.md "Tags"): letters, digits, space and
# + - _ = . : / only (no @); the key under 128 bytes and the value under 256 on PUT (the GET
# doc says "not more than": the stricter reading is kept). The charset is ASCII: bytes = chars.
MAX_TAG_KEY = 127
MAX_TAG_VALUE = 255
_TAG_CHARS = re.compile(r"^[A-Za-z0-9 +\-=._:/]*$")
SOURCE = "ci-callback"


# ---------------------------------------------------------------- helpers


def _target_bucket(inv: Invocation, action: str, skipped_as: str, *candidates: Optional[str]) -> Optional[str]:
    """The bucket a switchable action writes to, or None (recorded) when it does not run."""
    if not inv.settings.enabled(action):
        return None
    try:
        return policy.index_location(inv.settings, *candidates)
    except ActionSkipped as skipped:
        inv.record(skipped_as, reason=str(skipped))
        return None


def write_document(inv: Invocation, action: str, bucket: str, key: str, document: Mapping[str, Any],
                   region: Optional[str] = None) -> None:
    inv.adapters.storage.put_json(bucket, key, document, region)
    inv.record(action, bucket=bucket, key=key)


def valid_tag(key: str, value: str) -> bool:
    return (
        0 < len(key) <= MAX_TAG_KEY
        and len(value) <= MAX_TAG_VALUE
        and bool(_TAG_CHARS.match(key))
        and bool(_TAG_CHARS.match(value))
    )


def merge_tags(existing: Mapping[str, str], ours: Mapping[str, str]) -> Dict[str, str]:
    """Existing tags always survive; ours are added while they fit COS's limits."""
    merged = dict(existing)
    skipped: List[str] = []
    for key, value in ours.items():
        if not valid_tag(key, value):
            skipped.append(key)
        elif key in merged or len(merged) < MAX_TAGS:
            merged[key] = value
        else:
            skipped.append(key)
    if skipped:
        log.warn("tags skipped to respect COS limits; kept the object's own tags", skipped=skipped,
                 existing=len(existing))
    return merged


def _read_tags(inv: Invocation, ref: ObjectRef) -> Union[str, Dict[str, str]]:
    """An output's current tags, or why it is not tagged ("skipped", "missing")."""
    if not ref.key:
        return "skipped"
    if ref.bucket is None or not policy.allowed(inv.settings, ref.bucket):
        log.warn("output bucket not allowed; not tagged", bucket=ref.bucket, key=ref.key)
        return "skipped"
    try:
        return inv.adapters.storage.get_tags(ref.bucket, ref.key, ref.region)
    except NotFound:
        log.warn("output object not found; not tagged", bucket=ref.bucket, key=ref.key)
        return "missing"


def _write_tags(inv: Invocation, ref: ObjectRef, tags: Mapping[str, str]) -> str:
    assert ref.bucket and ref.key  # _read_tags returned tags, so both are known
    inv.adapters.storage.put_tags(ref.bucket, ref.key, tags, ref.region)
    return "tagged"


def tag_outputs(inv: Invocation, outputs: List[ObjectRef], ours: Mapping[str, str],
                also: Optional[Callable[[], None]] = None) -> Dict[str, int]:
    """Tag every output concurrently on the container's bounded pool (plus one extra task).

    Returns how many outputs ended "tagged", "unchanged", "missing" or "skipped".

    Tagging one object is two dependent requests: read its tags, write the merged set.
    The worker that read an object's tags writes them at once, unless some of our tasks
    are still waiting for a worker: then the write goes to the back of the queue, so the
    waiting reads start first and no worker holds a read+write pair while reads queue.
    N outputs on a pool of W take about max(2, ceil((2N + 1) / W)) round trips (9 outputs
    on 8 workers: 3, where whole read+write tasks took 4), and still one task per object
    whenever the pool is big enough.
    """
    pool = inv.adapters.pool
    lock = threading.Lock()
    waiting = [len(outputs) + (also is not None)]  # our tasks submitted but not started yet

    def start() -> None:
        with lock:
            waiting[0] -= 1

    def tag(ref: ObjectRef) -> Union[str, Future[str]]:
        start()
        existing = _read_tags(inv, ref)
        if isinstance(existing, str):
            return existing
        merged = merge_tags(existing, ours)
        if merged == existing:
            return "unchanged"
        with lock:
            later = waiting[0] > 0
        if later:
            return pool.submit(_write_tags, inv, ref, merged)
        return _write_tags(inv, ref, merged)

    def extra(task: Callable[[], None]) -> None:
        start()
        task()

    futures: List[Future[Any]] = [pool.submit(tag, ref) for ref in outputs]
    if also is not None:
        futures.append(pool.submit(extra, also))
    counts: Dict[str, int] = {}
    first_error: Optional[BaseException] = None
    for future in futures:
        try:
            result = future.result()
            if isinstance(result, Future):  # a write sent to the back of the queue
                result = result.result()
        except BaseException as exc:  # noqa: BLE001 - wait for all, then raise the first
            first_error = first_error or exc
            continue
        if isinstance(result, str):
            counts[result] = counts.get(result, 0) + 1
    if first_error is not None:
        raise first_error
    return counts


def our_tags(inv: Invocation, callback: JobCallback) -> Dict[str, str]:
    prefix = inv.settings.tag_prefix
    return {
        f"{prefix}job-id": callback.job_id,
        f"{prefix}tag": callback.tag or "unknown",
        f"{prefix}source": SOURCE,
    }


# ---------------------------------------------------------------- documents


def job_document(callback: JobCallback) -> Dict[str, Any]:
    document: Dict[str, Any] = {"schema": SCHEMA, "type": type(callback.details).__name__, **callback.to_dict()}
    details = callback.details
    if isinstance(details, SmartCoverResult):
        document["covers"] = [c.to_dict() for c in details.covers]
    elif isinstance(details, PicProcessResult):
        document["original"] = details.original.to_dict()
        document["processed"] = details.processed.to_dict()
    return document


def failure_document(callback: JobCallback) -> Dict[str, Any]:
    return {
        "schema": SCHEMA,
        "kind": callback.kind,
        "job_id": callback.job_id,
        "tag": callback.tag,
        "state": callback.state,
        "code": callback.code,
        "message": callback.message,
        "input": callback.input.to_dict(),
        "workflow": callback.workflow.to_dict() if callback.workflow else None,
        "created_at": iso(callback.created_at),  # as in to_dict(), without building it twice
        "ended_at": iso(callback.ended_at),
    }


# ---------------------------------------------------------------- actions


def index_and_tag_job(callback: JobCallback, inv: Invocation) -> None:
    """Success: one index object for the job, and our tags on every output."""
    settings = inv.settings
    write_index = settings.enabled("index")
    tag = settings.enabled("tag") and bool(callback.outputs)
    index_task: Optional[Callable[[], None]] = None
    if write_index:
        first_output = callback.outputs[0].bucket if callback.outputs else None
        try:
            bucket = policy.index_location(settings, callback.input.bucket, first_output)
        except ActionSkipped as skipped:
            log.warn("index not written", job_id=callback.job_id, reason=str(skipped))
            inv.record("index-skipped", reason=str(skipped))
        else:
            key = keys.job_index_key(settings.index_prefix, callback.input.bucket, callback.input.key, callback.job_id)
            document = job_document(callback)
            region = policy.region_for(bucket, callback.input)

            def index_task() -> None:
                write_document(inv, "index", bucket, key, document, region)

    if tag:
        counts = tag_outputs(inv, list(callback.outputs), our_tags(inv, callback), also=index_task)
        inv.record("tag", objects=len(callback.outputs), **counts)
    elif index_task is not None:
        index_task()


def record_failure(callback: JobCallback, inv: Invocation) -> None:
    bucket = _target_bucket(inv, "failure", "failure-skipped", callback.input.bucket,
                            *(o.bucket for o in callback.outputs))
    if bucket is None:
        return
    key = keys.failure_key(inv.settings.index_prefix, callback.job_id)
    region = policy.region_for(bucket, callback.input)
    write_document(inv, "failure-record", bucket, key, failure_document(callback), region)


def record_run(callback: WorkflowCallback, inv: Invocation) -> None:
    """A run manifest with every task, and a per-input pointer to the latest run."""
    bucket = _target_bucket(inv, "index", "index-skipped", callback.input.bucket)
    if bucket is None:
        return
    prefix = inv.settings.index_prefix
    manifest_key = keys.run_manifest_key(prefix, callback.input.bucket, callback.input.key, callback.run_id)
    document = {"schema": SCHEMA, **callback.to_dict()}
    write_document(inv, "run-manifest", bucket, manifest_key, document)
    pointer_key = keys.latest_run_key(prefix, callback.input.bucket, callback.input.key)
    pointer = {
        "schema": SCHEMA,
        "run_id": callback.run_id,
        "workflow_id": callback.workflow_id,
        "state": callback.state,
        "created_at": document["created_at"],
        "manifest": {"bucket": bucket, "key": manifest_key},
    }
    current = inv.adapters.storage.get_json(bucket, pointer_key)
    if current == pointer:
        inv.record("latest-run", bucket=bucket, key=pointer_key, changed=False)
        return
    if current and _newer(current, pointer):
        inv.record("latest-run", bucket=bucket, key=pointer_key, changed=False, reason="a newer run is recorded")
        return
    write_document(inv, "latest-run", bucket, pointer_key, pointer)


def _newer(current: Mapping[str, Any], ours: Mapping[str, Any]) -> bool:
    """Is the recorded pointer newer than ours? Runs may be delivered out of order.

    Instants are compared, not strings: CI stamps may carry different offsets (Z, +08:00).
    """
    def order(pointer: Mapping[str, Any]) -> Tuple[float, str]:
        stamp = parse_time(pointer.get("created_at"))
        return (stamp.timestamp() if stamp is not None else float("-inf"), str(pointer.get("run_id") or ""))

    return order(current) > order(ours)


def record_review(callback: ModerationCallback, inv: Invocation) -> None:
    bucket = _target_bucket(inv, "index", "review-skipped", callback.input.bucket)
    if bucket is None:
        return
    key = keys.review_key(inv.settings.index_prefix, callback.input.bucket, callback.input.key,
                          callback.event, callback.job_id)
    document = {"schema": SCHEMA, **callback.to_dict()}
    region = policy.region_for(bucket, callback.input)
    write_document(inv, "review-record", bucket, key, document, region)
