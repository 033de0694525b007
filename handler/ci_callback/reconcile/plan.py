"""The reconcile sweep's pure half: the time window, the verdict on each listed job or run,
the resumable cursor, the summary, and the callback bodies built from CI's records.

Pure: no I/O. The loop that lists, checks markers and runs the pipeline is in
``reconcile``; everything it decides is decided here, so it can be tested without COS.

Facts relied on (docs/tencent-facts.md, cos-python-sdk-v5 1.9.44 ``cos_client.py``):

- ``ci_list_media_jobs`` / ``ci_list_media_pic_jobs`` filter on *creation* time only
  (``startCreationTime``/``endCreationTime``, ``%Y-%m-%dT%H:%M:%S%z``, doc 436/54011),
  so the window asked for is padded by ``pad_minutes`` and each job is then judged by
  its state and ``EndTime``.
- The SDK listifies ``JobsDetail`` but, for ``ci_list_workflowexecution``, only the
  absent ``WorkflowExecution`` key: one run in ``WorkflowExecutionList`` is a dict.
- How the last page says "no more" is not documented: an empty or absent
  ``NextToken``, an empty page, or a token seen before all end a listing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ..times import BEIJING, parse_time

# Job states from the JobsDetail tables ("Submitted, Running, Success, Failed, Pause, Cancel").
PENDING_STATES = frozenset({"Submitted", "Running", "Pause"})

PROCESS = "process"
RUNNING = "running"  # not final yet: left alone, a later sweep (or its callback) takes it
SETTLING = "settling"  # ended moments ago: its callback is probably in flight
BEFORE = "before-window"  # ended before the lookback: an earlier sweep's business

CLOCK_SKEW = timedelta(minutes=5)  # CI's clock and ours may disagree a little


def ci_time(moment: datetime) -> str:
    """A creation-time bound as CI's list APIs take it: ``2001-01-01T00:00:00+0800``."""
    return moment.astimezone(BEIJING).strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass(frozen=True)
class Window:
    """One sweep run's view of time, fixed when the run starts (and kept in the cursor)."""

    started_at: float  # epoch seconds
    lookback_minutes: int
    pad_minutes: int
    settle_minutes: int

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.started_at, timezone.utc)

    @property
    def ended_from(self) -> datetime:
        return self.now - timedelta(minutes=self.lookback_minutes)

    @property
    def ended_before(self) -> datetime:
        return self.now - timedelta(minutes=self.settle_minutes)

    @property
    def created_from(self) -> datetime:
        return self.ended_from - timedelta(minutes=self.pad_minutes) - CLOCK_SKEW

    @property
    def created_to(self) -> datetime:
        return self.now + CLOCK_SKEW

    def query(self, since: float | None = None) -> dict[str, str]:
        """The list APIs' creation-time keyword arguments, from SINCE (an incremental sweep's
        watermark, epoch seconds) when it is later than the padded lookback."""
        start = self.created_from
        if since is not None:
            start = max(start, datetime.fromtimestamp(since, timezone.utc))
        return {"StartCreationTime": ci_time(start), "EndCreationTime": ci_time(self.created_to)}


def judge(state: str | None, ended: object, window: Window) -> str:
    """What the sweep does with one listed job or run.

    Final states are processed when they ended inside the window (or when CI reports no
    end time: nothing to judge by, and a processed job costs one marker check). States
    the docs do not list are processed too: the router decides what they mean, and the
    marker makes it happen once.
    """
    if state in PENDING_STATES or not state:
        return RUNNING
    stamp = parse_time(ended)
    if stamp is not None and stamp >= window.ended_before:
        return SETTLING
    if stamp is not None and stamp < window.ended_from:
        return BEFORE
    return PROCESS


# ---------------------------------------------------------------- CI's responses


def items(response: Mapping[str, Any] | None, key: str) -> list[Mapping[str, Any]]:
    """The records under KEY: a list, one dict (the SDK did not listify it), or nothing."""
    value = (response or {}).get(key)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def next_token(response: Mapping[str, Any] | None) -> str | None:
    token = (response or {}).get("NextToken")
    if isinstance(token, (int, float)) and not isinstance(token, bool):
        token = str(token)
    return token.strip() or None if isinstance(token, str) else None


def text(value: object) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    return None


def job_body(detail: Mapping[str, Any]) -> bytes:
    """CI's record of a job as the JSON callback it would have sent (JobsDetail has the
    callback's shape: DescribeMediaJobs-http-1-list.txt next to the Transcode callbacks)."""
    document = {"EventName": "TaskFinish", "JobsDetail": [dict(detail)]}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def run_body(execution: Mapping[str, Any], bucket: str, region: str) -> bytes:
    """A run's record (``ci_get_workflowexecution``) as a WorkflowFinish callback.

    The query response names no bucket or region (DescribeWorkflowExecution-xml-1), so
    the source's are filled in when absent: the run is then archived, marked and
    verified in the right place.
    """
    run = dict(execution)
    if not text(run.get("BucketId")) and not text(run.get("Bucket")):
        run["BucketId"] = bucket
    if not text(run.get("Region")):
        run["Region"] = region
    document = {"EventName": "WorkflowFinish", "WorkflowExecution": run}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# ---------------------------------------------------------------- cursor and summary

LIST = "list"
INBOX = "inbox"


@dataclass
class Cursor:
    """Where a sweep run is: which listing and which page (the token that fetches it), then
    which archive key of the inbox phase. Kept in COS between invocations so a run cut short
    by its deadline resumes. A resumed page is handled whole again: CI documents nothing about
    what a token's page holds later, and a record already handled costs one marker check."""

    spec: str  # the spec's digest: a cursor of another spec is not resumed
    started_at: float
    phase: str = LIST
    stream: int = 0
    token: str | None = None
    bucket: int = 0  # inbox phase: index into spec.buckets
    marker: str = ""  # inbox phase: the last archive key handled
    invocations: int = 1
    since: float | None = None  # list phase: the watermark the current stream's listing started at

    def to_json(self) -> dict[str, Any]:
        return {"schema": 1, **asdict(self)}

    @classmethod
    def from_json(cls, document: object, spec: str) -> Cursor | None:
        """The saved cursor, or None when there is none, it is unreadable or of another spec."""
        if not isinstance(document, dict) or document.get("schema") != 1 or document.get("spec") != spec:
            return None
        try:
            cursor = cls(
                spec=spec,
                started_at=float(document["started_at"]),
                phase=str(document["phase"]),
                stream=int(document["stream"]),
                token=None if document.get("token") is None else str(document["token"]),
                bucket=int(document["bucket"]),
                marker=str(document.get("marker") or ""),
                invocations=int(document.get("invocations") or 1),
                since=None if document.get("since") is None else float(document["since"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        if cursor.phase not in (LIST, INBOX) or min(cursor.stream, cursor.bucket) < 0:
            return None
        return cursor

    def window(self, lookback: int, pad: int, settle: int) -> Window:
        return Window(self.started_at, lookback, pad, settle)

    def position(self) -> tuple[str, int, str | None, int, str]:
        """Where the run is; unchanged over an invocation that listed no page means no progress."""
        return self.phase, self.stream, self.token, self.bucket, self.marker


@dataclass
class Summary:
    """What one sweep invocation did. ``listed`` counts records CI returned and ``archived``
    the inbox's archived callbacks in the window; each of them ends in exactly one of
    already_done, processed, failed, skipped."""

    listed: int = 0
    archived: int = 0
    already_done: int = 0
    processed: int = 0
    failed: int = 0
    skipped: int = 0
    replayed: int = 0  # inbox: archived callbacks re-driven (also counted in processed/failed)
    pages: int = 0
    list_errors: int = 0  # listings CI refused or failed (logged; the next sweep lists again)
    complete: bool = False
    reasons: dict[str, int] = field(default_factory=dict)  # why records were skipped
    stalled: str | None = None  # why this invocation moved nothing on (and so did not chain)

    def skip(self, why: str) -> None:
        self.skipped += 1
        self.reasons[why] = self.reasons.get(why, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
