"""Follow-up actions on COS: index objects, output tags, failure and review records.

Every action is idempotent on its own: documents go to deterministic keys with
deterministic content (no "written at" stamps), and tagging merges into the object's
existing tags and skips the write when nothing changes. So a re-delivered callback
leaves exactly what one delivery left.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import budget, keys, log
from ..checkpoint import Pending, Progress
from ..context import Invocation
from ..errors import ActionSkipped, NotFound, OutOfTime
from ..model.models import JobCallback, ModerationCallback, ObjectRef, WorkflowCallback
from ..times import iso, parse_time
from ..trust import policy
from . import pool as fanout

SCHEMA = 1
MAX_TAGS = 10
# COS tag rules (PutObjectTagging doc; docs/tencent-facts.md "Tags"): letters, digits, space and
# + - _ = . : / only (no @); the key under 128 bytes and the value under 256 on PUT (the GET
# doc says "not more than": the stricter reading is kept). The charset is ASCII: bytes = chars.
MAX_TAG_KEY = 127
MAX_TAG_VALUE = 255
_TAG_CHARS = re.compile(r"^[A-Za-z0-9 +\-=._:/]*$")
SOURCE = "ci-callback"
PART_SIZE = 1000  # outputs per index part; a job with more has its index split in parts

if TYPE_CHECKING:  # the adapter is reached through the invocation
    from ..adapters.cos import CosStorage


# ---------------------------------------------------------------- helpers


def _target_bucket(inv: Invocation, action: str, skipped_as: str, *candidates: str | None) -> str | None:
    """The bucket a switchable action writes to, or None (recorded) when it does not run."""
    if not inv.settings.enabled(action):
        return None
    try:
        return policy.index_location(inv.settings, *candidates)
    except ActionSkipped as skipped:
        inv.record(skipped_as, reason=str(skipped))
        return None


def write_document(inv: Invocation, action: str, bucket: str, key: str, document: Mapping[str, Any]) -> None:
    inv.services.storage.put_json(bucket, key, document)
    inv.record(action, bucket=bucket, key=key)


def valid_tag(key: str, value: str) -> bool:
    return (
        0 < len(key) <= MAX_TAG_KEY
        and len(value) <= MAX_TAG_VALUE
        and bool(_TAG_CHARS.match(key))
        and bool(_TAG_CHARS.match(value))
    )


def merge_tags(existing: Mapping[str, str], ours: Mapping[str, str]) -> dict[str, str]:
    """Existing tags always survive; ours are added while they fit COS's limits."""
    merged = dict(existing)
    skipped: list[str] = []
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


def _read_tags(inv: Invocation, ref: ObjectRef, storage: CosStorage) -> str | dict[str, str]:
    """An output's current tags, or why it is not tagged ("skipped", "missing")."""
    if not ref.key:
        return "skipped"
    if ref.bucket is None or not policy.allowed(inv.settings, ref.bucket):
        log.warn("output bucket not allowed; not tagged", bucket=ref.bucket, key=ref.key)
        return "skipped"
    try:
        return storage.get_tags(ref.bucket, ref.key)
    except NotFound:
        log.warn("output object not found; not tagged", bucket=ref.bucket, key=ref.key)
        return "missing"


def _write_tags(inv: Invocation, ref: ObjectRef, tags: Mapping[str, str], storage: CosStorage) -> str:
    assert ref.bucket and ref.key  # _read_tags returned tags, so both are known
    storage.put_tags(ref.bucket, ref.key, tags)
    return "tagged"


def tag_one(inv: Invocation, ref: ObjectRef, ours: Mapping[str, str], storage: CosStorage) -> str:
    """Read an output's tags, merge ours, write them back when that changes anything."""
    existing = _read_tags(inv, ref, storage)
    if isinstance(existing, str):
        return existing
    merged = merge_tags(existing, ours)
    if merged == existing:
        return "unchanged"
    if not budget.may_start(storage.deadline):
        raise OutOfTime("no time left to write the tags just read")
    return _write_tags(inv, ref, merged, storage)


def tag_outputs(inv: Invocation, work: JobWork, progress: Progress) -> bool:
    """Do the job's unfinished tasks (index documents, then output tags) on the container's pool.

    ``settings.fanout`` workers take tasks in order from PROGRESS (``fanout.run``): one
    output is a read and a dependent write, so N outputs on W workers take about
    2·ceil(N / W) round trips, the index documents riding in the first one. A worker
    starts a task only while both of its requests could end before the work deadline;
    True when every task is done, False when the deadline stopped it.
    """
    until = budget.work_deadline(inv.deadline, inv.started)
    storage = inv.services.storage.until(until)
    return fanout.run(inv.services.pool, inv.settings.fanout, progress,
                      lambda index: work.run(inv, index, storage), lambda: budget.may_start(until, 2))


def our_tags(inv: Invocation, callback: JobCallback) -> dict[str, str]:
    prefix = inv.settings.tag_prefix
    return {
        f"{prefix}job-id": callback.job_id,
        f"{prefix}tag": callback.tag or "unknown",
        f"{prefix}source": SOURCE,
    }


# ---------------------------------------------------------------- documents


# What CI's list and query APIs do not return (the JobsDetail and WorkflowExecution tables of
# DescribeMediaJobs and DescribeWorkflowExecution have no CosHeaders, a job's no Workflow node):
# in a document the sweep rebuilt from them, an empty one means "not known", not "none".
LISTING_UNKNOWN: dict[str, tuple[str, ...]] = {"job": ("cos_headers", "workflow"), "workflow": ("cos_headers",)}
LISTING_SOURCE = "reconcile"  # the sweep's listing path (an inbox replay is the real callback)


def mark_unknown(document: dict[str, Any], kind: str, source: str | None) -> dict[str, Any]:
    """Name, under ``unknown``, the empty fields of DOCUMENT the listing could not have filled."""
    if source == LISTING_SOURCE:
        unknown = [name for name in LISTING_UNKNOWN.get(kind, ()) if name in document and not document[name]]
        if unknown:
            document["unknown"] = unknown
    return document


def job_document(callback: JobCallback, part_keys: list[str] | None = None) -> dict[str, Any]:
    """The job's index document. With PART_KEYS (a job of more than PART_SIZE outputs) the
    output lists move to the part documents and this one says where they are."""
    document: dict[str, Any] = {"schema": SCHEMA, "type": type(callback.details).__name__,
                                **(callback.to_dict() if part_keys is None else without_outputs(callback))}
    if part_keys is not None:
        document["parts"] = {"count": len(part_keys), "size": PART_SIZE, "outputs": len(callback.outputs),
                             "keys": part_keys}
        return document
    document.update(callback.details.index_fields())
    return document


def without_outputs(callback: JobCallback) -> dict[str, Any]:
    """``to_dict()`` without the per-output lists, built without building them."""
    shell = dataclasses.replace(callback, outputs=(), details=callback.details.without_outputs())
    document = shell.to_dict()
    del document["outputs"]
    for name in type(callback.details).output_fields:
        document["details"].pop(name, None)
    return document


def part_document(callback: JobCallback, number: int, count: int) -> dict[str, Any]:
    """Part NUMBER (1-based) of COUNT: PART_SIZE outputs each, in CI's order, with their MD5s."""
    refs = callback.outputs[(number - 1) * PART_SIZE:number * PART_SIZE]
    md5 = callback.details.output_md5()
    return {"schema": SCHEMA, "job_id": callback.job_id, "part": number, "of": count,
            "first": (number - 1) * PART_SIZE, "outputs": [r.to_dict() for r in refs],
            "md5": {r.key: md5[r.key] for r in refs if r.key is not None and r.key in md5}}


def failure_document(callback: JobCallback) -> dict[str, Any]:
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


class JobWork:
    """A successful job's actions as numbered tasks, the same in every invocation of a chain:
    the index document, its parts (more than PART_SIZE outputs), then one task per output."""

    def __init__(self, callback: JobCallback, inv: Invocation) -> None:
        settings = inv.settings
        self.callback = callback
        self.ours = our_tags(inv, callback)
        self.index_bucket: str | None = None
        if settings.enabled("index"):
            first_output = callback.outputs[0].bucket if callback.outputs else None
            try:
                self.index_bucket = policy.index_location(settings, callback.input.bucket, first_output)
            except ActionSkipped as skipped:
                log.warn("index not written", job_id=callback.job_id, reason=str(skipped))
                inv.record("index-skipped", reason=str(skipped))
        self.key = keys.job_index_key(settings.index_prefix, callback.input.bucket, callback.input.key,
                                      callback.job_id)
        parts = -(-len(callback.outputs) // PART_SIZE) if len(callback.outputs) > PART_SIZE else 0
        self.part_keys = [keys.job_index_part_key(self.key, n, parts) for n in range(1, parts + 1)] if parts else None
        self.index_tasks = 0 if self.index_bucket is None else 1 + parts
        self.tagging = settings.enabled("tag") and bool(callback.outputs)
        self.total = self.index_tasks + (len(callback.outputs) if self.tagging else 0)

    def run(self, inv: Invocation, index: int, storage: CosStorage) -> str:
        if index >= self.index_tasks:
            return tag_one(inv, self.callback.outputs[index - self.index_tasks], self.ours, storage)
        assert self.index_bucket is not None  # index tasks exist only with a bucket
        if index == 0:
            document = mark_unknown(job_document(self.callback, self.part_keys), self.callback.kind, inv.source)
            storage.put_json(self.index_bucket, self.key, document)
            details = {"parts": len(self.part_keys)} if self.part_keys else {}
            inv.record("index", bucket=self.index_bucket, key=self.key, **details)
        else:
            assert self.part_keys is not None
            document = part_document(self.callback, index, len(self.part_keys))
            storage.put_json(self.index_bucket, self.part_keys[index - 1], document, compact=True)
        return "index"


def index_and_tag_job(callback: JobCallback, inv: Invocation) -> None:
    """Success: one index object for the job (split in parts for very large jobs), and our
    tags on every output. Work the deadline leaves undone goes to ``inv.pending``."""
    work = JobWork(callback, inv)
    if work.total == 0:
        return
    progress = Progress.from_dict(inv.resume, work.total) if inv.resume is not None else Progress(work.total)
    finished = tag_outputs(inv, work, progress)
    if work.tagging:
        counts = {k: v for k, v in progress.counts.items() if k != "index"}
        inv.record("tag", objects=len(callback.outputs), **counts)
    if not finished:
        inv.pending = Pending(progress, work.index_tasks)


def record_failure(callback: JobCallback, inv: Invocation) -> None:
    bucket = _target_bucket(inv, "failure", "failure-skipped", callback.input.bucket,
                            *(o.bucket for o in callback.outputs))
    if bucket is None:
        return
    key = keys.failure_key(inv.settings.index_prefix, callback.job_id)
    write_document(inv, "failure-record", bucket, key,
                   mark_unknown(failure_document(callback), callback.kind, inv.source))


def record_run(callback: WorkflowCallback, inv: Invocation) -> None:
    """A run manifest with every task, and a per-input pointer to the latest run."""
    bucket = _target_bucket(inv, "index", "index-skipped", callback.input.bucket)
    if bucket is None:
        return
    prefix = inv.settings.index_prefix
    manifest_key = keys.run_manifest_key(prefix, callback.input.bucket, callback.input.key, callback.run_id)
    document = mark_unknown({"schema": SCHEMA, **callback.to_dict()}, callback.kind, inv.source)
    pointer_key = keys.latest_run_key(prefix, callback.input.bucket, callback.input.key)
    # The manifest write and the pointer read do not depend on each other: one round trip.
    reading = inv.services.pool.submit(inv.services.storage.get_json, bucket, pointer_key)
    try:
        write_document(inv, "run-manifest", bucket, manifest_key, document)
    finally:
        current = reading.result()
    pointer = {
        "schema": SCHEMA,
        "run_id": callback.run_id,
        "workflow_id": callback.workflow_id,
        "state": callback.state,
        "created_at": document["created_at"],
        "manifest": {"bucket": bucket, "key": manifest_key},
    }
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
    def order(pointer: Mapping[str, Any]) -> tuple[float, str]:
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
    write_document(inv, "review-record", bucket, key, document)
