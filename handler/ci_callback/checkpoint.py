"""Checkpoints and continuation events: how a job too big for one invocation goes on in the next.

The work of a job callback is a list of *tasks*, in a fixed order that depends only on
the callback (so every invocation of a chain numbers them alike): first the index
documents (the job document, then its parts when it has any), then one task per output
(read its tags, merge ours, write them back). ``Progress`` records which tasks are
finished, compactly: every task below ``cursor`` is finished, and so is each task listed
in ``ahead`` (those finished out of order above the cursor; at most about the fan-out
width, since the workers take tasks in order).

When an invocation stops before its work is done (its deadline is near), it writes the
checkpoint next to the lease markers and invokes the same function asynchronously
with a continuation event that points at it. The continuation renews the lease, reads
the archived body back, parses it again, skips the finished tasks and does the rest,
chaining again if it has to. The last one writes the done marker and deletes the
checkpoint. A checkpoint left behind by a chain that broke is picked up by whoever
claims the callback next (a re-delivery after the lease expired, or the reconcile
sweep's inbox re-drive): it resumes instead of starting over. The tasks are idempotent,
so resuming from an older checkpoint only repeats work.

Checkpoint, ``<marker_prefix><kind>/<id>/<state>/checkpoint.json`` (``keys.checkpoint_key``)::

    {"schema": "ci-callback/checkpoint/1",
     "kind": "job", "id": "j…", "state": "Success", "tag": "Segment",
     "sha256": "…",                      # of the archived body: a different body starts over
     "archive": {"bucket": "…", "key": "ci-inbox/job/j…/Success-….json", "region": "…"},
     "lease": {"key": "…/lease-1.json", "nonce": "…"},
     "created_at": "2026-12-01T21:00:00Z", "updated_at": "…",
     "step": 2,                          # chain step that wrote it: 1 = the delivery itself
     "request_id": "…",                  # the invocation that wrote it
     "tasks": {"total": 3003, "index": 3, "cursor": 1200, "ahead": [1203, 1207],
               "done": 1202, "counts": {"index": 3, "tagged": 1199}},
     "status": "continuing"}

Continuation event (the ``ClientContext`` of an async ``Invoke``; SCF passes it to
``main_handler`` as the event; far below the 128 KB async limit)::

    {"ci_callback": {"continuation": {"v": 1, "bucket": "…", "region": "…",
                                      "checkpoint": "ci-markers/job/j…/Success/checkpoint.json",
                                      "step": 3, "kind": "job", "id": "j…"}}}

Only the pointer travels: the event is trusted no further than its bucket passing the
bucket policy and its key being a checkpoint key under the marker prefix; everything
else is read back from COS.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

SCHEMA = "ci-callback/checkpoint/1"
EVENT_KEY = "ci_callback"
EVENT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.json"


class Progress:
    """Which of ``total`` tasks are finished, and which to hand out next. Thread-safe.

    ``take()`` hands out unfinished tasks in order, each once; ``finish(i, outcome)``
    records one; ``release(i)`` gives one back unfinished (it stays unfinished, so the
    next invocation does it again).
    """

    __slots__ = ("total", "cursor", "ahead", "counts", "_next", "_lock")

    def __init__(self, total: int, cursor: int = 0, ahead: Iterable[int] = (),
                 counts: Mapping[str, int] | None = None) -> None:
        self.total = total
        self.cursor = max(0, min(cursor, total))
        self.ahead = {i for i in ahead if self.cursor < i < total}
        self.counts: dict[str, int] = dict(counts or {})
        self._next = self.cursor
        self._lock = threading.Lock()

    @property
    def done(self) -> int:
        return self.cursor + len(self.ahead)

    @property
    def finished(self) -> bool:
        return self.cursor >= self.total

    def is_done(self, index: int) -> bool:
        return index < self.cursor or index in self.ahead

    def take(self) -> int | None:
        with self._lock:
            while self._next < self.total and self._next in self.ahead:
                self._next += 1
            if self._next >= self.total:
                return None
            index = self._next
            self._next += 1
            return index

    def finish(self, index: int, outcome: str) -> None:
        with self._lock:
            self.counts[outcome] = self.counts.get(outcome, 0) + 1
            if index == self.cursor:
                self.cursor += 1
                while self.cursor in self.ahead:
                    self.ahead.discard(self.cursor)
                    self.cursor += 1
            elif index > self.cursor:
                self.ahead.add(index)

    def to_dict(self, index_tasks: int) -> dict[str, Any]:
        with self._lock:
            return {"total": self.total, "index": index_tasks, "cursor": self.cursor,
                    "ahead": sorted(self.ahead), "done": self.done, "counts": dict(self.counts)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], total: int) -> Progress:
        """Progress read back from a checkpoint; a task count that differs starts over."""
        if _int(data.get("total")) != total:
            return cls(total)
        ahead = data.get("ahead")
        counts = data.get("counts")
        return cls(total, _int(data.get("cursor")) or 0,
                   [i for i in ahead if isinstance(i, int)] if isinstance(ahead, list) else (),
                   {k: v for k, v in counts.items() if isinstance(k, str) and isinstance(v, int)}
                   if isinstance(counts, dict) else None)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def continuation_event(bucket: str, region: str | None, checkpoint_key: str, step: int, kind: str,
                       callback_id: str | None) -> dict[str, Any]:
    return {EVENT_KEY: {"continuation": {"v": EVENT_VERSION, "bucket": bucket, "region": region,
                                         "checkpoint": checkpoint_key, "step": step, "kind": kind,
                                         "id": callback_id}}}


class Pointer:
    """A continuation event's pointer, checked for shape (not yet for policy)."""

    __slots__ = ("bucket", "region", "key", "step")

    def __init__(self, bucket: str, region: str | None, key: str, step: int) -> None:
        self.bucket, self.region, self.key, self.step = bucket, region, key, step


def pointer_of(event: Mapping[str, Any], marker_prefix: str) -> Pointer | None:
    """The checkpoint a continuation event points at, or None when it is not one of ours."""
    body = event.get(EVENT_KEY)
    spec = body.get("continuation") if isinstance(body, dict) else None
    if not isinstance(spec, dict) or spec.get("v") != EVENT_VERSION:
        return None
    bucket, key, region, step = spec.get("bucket"), spec.get("checkpoint"), spec.get("region"), spec.get("step")
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str):
        return None
    if not key.startswith(marker_prefix) or not key.endswith("/" + CHECKPOINT_NAME) or ".." in key.split("/"):
        return None
    return Pointer(bucket, region if isinstance(region, str) and region else None, key,
                   step if isinstance(step, int) and not isinstance(step, bool) and step > 0 else 2)



class Pending:
    """A job's work left unfinished at the work deadline, for the pipeline to checkpoint and continue."""

    __slots__ = ("progress", "index_tasks")

    def __init__(self, progress: Progress, index_tasks: int) -> None:
        self.progress = progress
        self.index_tasks = index_tasks
