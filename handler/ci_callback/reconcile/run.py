"""The reconcile sweep: lose nothing without relying on CI's retries.

A timer trigger invokes the function with a sweep spec (``sweepspec``). For each source
the sweep pages through CI's list API (``ci_list_media_jobs``, ``ci_list_media_pic_jobs``,
``ci_list_workflowexecution``, following NextToken), and every job or run in a final
state whose ``(id, state)`` has no done marker goes through the same pipeline as a
callback, with source ``reconcile``: CI's JobsDetail has the callback's shape
(``sweep.job_body``). A job a real callback processed costs one marker check (HEAD of
its done marker); a sweep racing a late callback claims the same lease, so the actions
run once. Then the inbox is re-driven: archived callbacks older than a few minutes with
no done marker (a 503 nobody retried) are replayed, with source ``replay``.

``run_sweep(spec, cursor, inv)`` is a resumable loop: it stops starting new work when
the deadline is near and returns the cursor to resume from (None when done); the timer
entry keeps that cursor in COS (``keys.sweep_cursor_key``) and writes one summary per
invocation (``keys.sweep_summary_key``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .. import budget, keys, log
from ..context import Invocation
from ..continuation import chain
from ..durable import inbox
from ..edge.http import HttpRequest, HttpResponse
from ..errors import ActionSkipped, InvalidCallback, InvalidSweepSpec, NotifyError, StorageError
from ..model.models import Callback
from ..model.parse import parse_callback
from ..pipeline import process
from ..runner import run_item
from ..settings import Settings
from ..times import BEIJING, parse_time
from ..trust import policy
from . import plan as sweep
from . import state as sweepstate
from .spec import JobSource, Stream, SweepSpec, WorkflowSource, parse_spec

if TYPE_CHECKING:
    from ..adapters.cos import CosStorage
    from ..routing.router import Router

# Stop starting new work when less than this remains: one record's pipeline (a few COS
# calls, each bounded by storage.TIMEOUT_SECONDS) and the cursor write must still fit.
RESERVE_SECONDS = 6.0
CLOSING_SECONDS = 1.0  # kept back from each item's deadline for the sweep's own closing writes
SWEEP = "sweep"  # continuation pointers {"for": "sweep", "message": <the spec>}
PATH = "/reconcile"
JSON_HEADERS = {"content-type": "application/json"}
Identity = tuple[str, str, str]


@dataclass
class _Run:
    """One invocation's share of a sweep."""

    spec: SweepSpec
    inv: Invocation
    router: Router
    window: sweep.Window
    summary: sweep.Summary = field(default_factory=sweep.Summary)
    seen: set[Identity] = field(default_factory=set)  # (kind, id, state) handled in this invocation
    settled: set[str] = field(default_factory=set)  # fingerprints of the seen the listing settled

    @property
    def storage(self) -> CosStorage:
        return self.inv.services.storage

    def load_state(self, listing: str) -> sweepstate.State | None:
        """What earlier sweeps established about LISTING; None (a full listing) when unreadable."""
        home = sweep_home(self.inv.settings, self.spec)
        try:
            document = self.storage.get_json(home, keys.sweep_state_key(self.inv.settings.marker_prefix,
                                                                        self.spec.digest, listing))
        except StorageError as exc:
            log.warn("sweep state not readable; listing in full", listing=listing, error=str(exc))
            return None
        return sweepstate.State.from_json(document)

    def save_state(self, listing: str, previous: sweepstate.State | None, observed: sweepstate.Observed,
                   upper: float | None) -> None:
        state = sweepstate.close(previous, observed, upper)
        if state is None or state == previous:
            return
        home = sweep_home(self.inv.settings, self.spec)
        key = keys.sweep_state_key(self.inv.settings.marker_prefix, self.spec.digest, listing)
        try:  # a whole-object PUT: a concurrent sweep reads the old state or this one, both true
            self.storage.put_json(home, key, state.to_json(), compact=True)
        except StorageError as exc:
            log.warn("sweep state not written; the next sweep checks these records again", error=str(exc))

    def out_of_time(self) -> bool:
        deadline = self.inv.deadline
        return deadline is not None and deadline - time.monotonic() < RESERVE_SECONDS


def run_sweep(spec: SweepSpec, cursor: sweep.Cursor | None, inv: Invocation, router: Router,
              now: float | None = None) -> tuple[sweep.Summary, sweep.Cursor | None]:
    """Sweep from CURSOR (None: from the start) until done or out of time.

    Returns the summary of this invocation and the cursor to resume from (None: done).
    A cursor older than the lookback is not resumed: its window is no longer ours.
    """
    started = time.time() if now is None else now
    if cursor is None or cursor.spec != spec.digest or started - cursor.started_at > spec.lookback_minutes * 60:
        cursor = sweep.Cursor(spec.digest, started)
    else:
        cursor.invocations += 1
    run = _Run(spec, inv, router, cursor.window(spec.lookback_minutes, spec.pad_minutes, spec.settle_minutes))
    position = cursor.position()
    if not inv.settings.enabled("dedupe"):
        # Without markers nothing tells a processed job from a lost one.
        log.error("reconcile sweep needs the dedupe action (CI_CALLBACK_ACTIONS); nothing swept")
        run.summary.reasons["dedupe-disabled"] = 1
        return run.summary, None
    streams = spec.streams
    while cursor.phase == sweep.LIST and cursor.stream < len(streams):
        if _list_stream(run, streams[cursor.stream], cursor):
            return _stopped(run, cursor, position)
        cursor.stream, cursor.token = cursor.stream + 1, None
    cursor.phase = sweep.INBOX
    buckets = inbox_buckets(inv.settings, spec) if spec.inbox else ()
    while cursor.bucket < len(buckets):
        if _redrive(run, buckets[cursor.bucket], cursor):
            return _stopped(run, cursor, position)
        cursor.bucket, cursor.marker = cursor.bucket + 1, ""
    run.summary.complete = True
    return run.summary, None


def _stopped(run: _Run, cursor: sweep.Cursor, position: tuple[str, int, str | None, int, str],
             ) -> tuple[sweep.Summary, sweep.Cursor]:
    # Out of time before any page or archive: chaining would start this same empty invocation
    # again, endlessly (check-deploy refuses such a timer); the next tick resumes instead.
    if run.summary.pages == 0 and cursor.position() == position:
        run.summary.stalled = budget.NO_TIME
    return run.summary, cursor


def sweep_home(settings: Settings, spec: SweepSpec) -> str:
    """Where a sweep keeps its cursor and summaries: the index bucket, else the first source's."""
    return settings.index_bucket or spec.sources[0].bucket


def inbox_buckets(settings: Settings, spec: SweepSpec) -> tuple[str, ...]:
    """The buckets whose inbox a sweep re-drives: where archives go (``policy.home_bucket``)."""
    if settings.index_bucket:
        return (sweep_home(settings, spec),)
    return tuple(dict.fromkeys(b for b, _ in spec.buckets if policy.allowed(settings, b)))


# ---------------------------------------------------------------- listing


def _list_page(run: _Run, stream: Stream, token: str | None, since: float | None = None) -> Mapping[str, Any]:
    source = stream.source
    # Asc: jobs created while we page land behind us, not in the pages we already read.
    query: dict[str, Any] = {"Bucket": source.bucket, "Size": run.spec.page_size, "NextToken": token or "",
                             "OrderByTime": "Asc", "States": "All", **run.window.query(since)}
    if isinstance(source, WorkflowSource):
        method = "ci_list_workflowexecution"
        query["WorkflowId"] = source.workflow
    else:
        method = "ci_list_media_pic_jobs" if source.pic else "ci_list_media_jobs"
        query.update(Tag=stream.tag, QueueId=source.queue)
    return run.storage.query_ci(method, **query)


def _list_stream(run: _Run, stream: Stream, cursor: sweep.Cursor) -> bool:
    """Page through one listing from the cursor's token. True when stopped for time.

    Incremental: the listing starts at the stream's watermark and skips the records confirmed
    above it; what it saw moves the state on (pages come oldest first, so even a listing cut
    short vouches for every record before its last one).
    """
    state = run.load_state(stream.label)
    if cursor.token is None:
        cursor.since = state.watermark if state is not None else None
    observed = sweepstate.Observed()
    stopped = _list_pages(run, stream, cursor, state, observed)
    run.save_state(stream.label, state, observed, observed.latest)
    return stopped


def _list_pages(run: _Run, stream: Stream, cursor: sweep.Cursor, state: sweepstate.State | None,
                observed: sweepstate.Observed) -> bool:
    tokens: set[str] = set()
    restarted = False
    key = "WorkflowExecutionList" if isinstance(stream.source, WorkflowSource) else "JobsDetail"
    while True:
        if run.out_of_time():
            return True
        try:
            page = _list_page(run, stream, cursor.token, cursor.since)
        except StorageError as exc:
            if cursor.token and exc.status == 400 and not restarted:
                # A saved NextToken CI no longer takes (how long one lives is not documented).
                cursor.token, restarted = None, True
                continue
            log.error("CI listing failed; the next sweep lists it again", stream=stream.label, error=str(exc))
            run.summary.list_errors += 1
            return False
        run.summary.pages += 1
        records = sweep.items(page, key)
        for record in records:
            if run.out_of_time():
                return True
            _observe_listed(run, stream, record, state, observed)
        token = sweep.next_token(page)
        if not token or not records or token == cursor.token or token in tokens:
            return False
        tokens.add(token)
        cursor.token = token


def _epoch(value: object, naive: timezone = BEIJING) -> float | None:
    stamp = parse_time(value, naive=naive)
    return None if stamp is None else stamp.timestamp()


def _observe_listed(run: _Run, stream: Stream, record: Mapping[str, Any], state: sweepstate.State | None,
                    observed: sweepstate.Observed) -> None:
    """One listed record: skipped when an earlier sweep confirmed it, else handled and observed."""
    workflow = isinstance(stream.source, WorkflowSource)
    kind = "workflow" if workflow else "job"
    ident = sweep.text(record.get("RunId" if workflow else "JobId")) or ""
    fp = sweepstate.fingerprint(kind, ident, sweep.text(record.get("State")) or "none")
    created = _epoch(record.get("CreationTime"))
    if state is not None and fp in state.confirmed:
        run.summary.listed += 1
        run.summary.already_done += 1
        run.settled.add(fp)
        observed.add(fp, created, True)
        return
    summary = run.summary
    failed, skipped = summary.failed, dict(summary.reasons)
    _handle_listed(run, stream, record)
    open_verdicts = (sweep.RUNNING, sweep.SETTLING)
    settled = summary.failed == failed and not any(
        summary.reasons.get(v, 0) > skipped.get(v, 0) for v in open_verdicts)
    if settled:
        run.settled.add(fp)
    observed.add(fp, created, settled)


def _handle_listed(run: _Run, stream: Stream, record: Mapping[str, Any]) -> None:
    summary = run.summary
    summary.listed += 1
    source = stream.source
    workflow = isinstance(source, WorkflowSource)
    ident = sweep.text(record.get("RunId" if workflow else "JobId"))
    state = sweep.text(record.get("State"))
    if not ident:
        summary.skip("no-id")
        return
    verdict = sweep.judge(state, None if workflow else record.get("EndTime"), run.window)
    if verdict != sweep.PROCESS:
        summary.skip(verdict)
        return
    if isinstance(source, JobSource):
        _run_body(run, sweep.job_body(record), "reconcile")
        return
    # A run: one marker check before asking CI for its tasks.
    try:
        home = policy.index_location(run.inv.settings, source.bucket)
    except ActionSkipped:
        summary.skip("bucket-not-allowed")
        return
    identity = ("workflow", ident, state or "none")
    run.seen.add(identity)
    if _settled(run, home, identity):
        return
    try:
        detail = run.storage.query_ci("ci_get_workflowexecution", Bucket=source.bucket, RunId=ident)
    except StorageError as exc:
        log.error("CI run query failed; the next sweep tries again", run_id=ident, error=str(exc))
        summary.failed += 1
        return
    runs = sweep.items(detail, "WorkflowExecution")
    if not runs:
        summary.skip("run-vanished")
        return
    _run_body(run, sweep.run_body(runs[0], source.bucket, source.region), "reconcile", checked=True)


# ---------------------------------------------------------------- the pipeline, per record


def _settled(run: _Run, bucket: str, identity: Identity) -> bool:
    """The one marker check: True (and counted) when the done marker exists or COS could not
    say; False when the record still has to go through the pipeline."""
    base = keys.marker_base(run.inv.settings.marker_prefix, *identity)
    try:
        done = run.storage.head(bucket, keys.done_key(base)) is not None
    except StorageError as exc:
        log.error("marker check failed; the next sweep tries again", key=base, error=str(exc))
        run.summary.failed += 1
        return True
    if done:
        run.summary.already_done += 1
    return done


def _identity(callback: Callback) -> Identity:
    return callback.kind, callback.id or "unknown", callback.state or "none"


def _run_body(run: _Run, body: bytes, source: str, checked: bool = False) -> None:
    """One record through the pipeline, unless its done marker says it is processed."""
    summary = run.summary
    try:
        callback = parse_callback(body, JSON_HEADERS["content-type"])
    except InvalidCallback as exc:
        log.error("CI's record does not read as a callback", error=str(exc))
        summary.failed += 1
        return
    run.seen.add(_identity(callback))
    if not checked:
        home = policy.home_bucket(run.inv.settings, callback)
        if home is None:
            summary.skip("no-bucket")
            return
        run.storage.learn_regions(policy.named_regions(callback))
        if _settled(run, home, _identity(callback)):
            return
    response = _pipeline(run, body, callback, source)
    outcome = response.payload.get("status")
    if response.status < 300 and outcome == "duplicate":
        summary.already_done += 1  # a callback (or another sweep) got there first
    elif response.status < 300:
        summary.processed += 1
    else:
        summary.failed += 1
    if source == "replay":
        summary.replayed += 1


def _pipeline(run: _Run, body: bytes, callback: Callback, source: str) -> HttpResponse:
    parent = run.inv
    settings = parent.settings
    if source == "reconcile" and settings.verify_jobs:
        settings = settings.replace(verify_jobs=False)  # the record is CI's own: nothing to confirm
    # The item answers a little before the sweep must (the cursor, summary and continuation
    # writes come after it); a large job it cannot finish continues on its own (chain).
    deadline = None if parent.deadline is None else parent.deadline - CLOSING_SECONDS
    item = parent.child(f"{parent.request_id or 'sweep'}:{callback.id}", source, deadline=deadline,
                        settings=settings)
    request = HttpRequest("POST", PATH, dict(JSON_HEADERS), {}, body, request_id=item.request_id)
    # A bug (ours, or a user handler's) fails this job only: counted failed, the sweep goes on.
    return run_item(item, lambda: process(request, item, run.router))


# ---------------------------------------------------------------- the inbox


def _redrive(run: _Run, bucket: str, cursor: sweep.Cursor) -> bool:
    """Replay archived callbacks with no done marker. True when stopped for time."""
    settings = run.inv.settings
    youngest = run.window.now - timedelta(minutes=run.spec.inbox_age_minutes)
    oldest = run.window.ended_from
    listing = f"inbox:{bucket}"
    resumed = bool(cursor.marker)
    state = run.load_state(listing)
    observed = sweepstate.Observed()
    # COS lists keys by name, not time: only a whole listing vouches for every archive, up to
    # the youngest judged, less the skew between COS's clock and ours.
    upper: float | None = (youngest - sweep.CLOCK_SKEW).timestamp()
    try:
        for key, modified in run.storage.list_keys(bucket, settings.archive_prefix, cursor.marker):
            if run.out_of_time():
                return True
            cursor.marker = key
            identity = keys.parse_archive_key(settings.archive_prefix, key)
            stamp = parse_time(modified, naive=timezone.utc)  # COS stamps are UTC
            if identity is not None and stamp is not None and identity in run.seen:
                fp = sweepstate.fingerprint(*identity)  # the listing just handled it, however young
                observed.add(fp, stamp.timestamp(), fp in run.settled)
                continue
            if identity is None or stamp is None or not oldest <= stamp <= youngest:
                continue
            fp = sweepstate.fingerprint(*identity)
            if state is not None and (stamp.timestamp() < state.watermark or fp in state.confirmed):
                observed.add(fp, stamp.timestamp(), True)
                continue
            failed = run.summary.failed
            settled = _redrive_one(run, bucket, key, identity, fp) and run.summary.failed == failed
            observed.add(fp, stamp.timestamp(), settled)
    except StorageError as exc:
        log.error("inbox listing failed; the next sweep tries again", bucket=bucket, error=str(exc))
        run.summary.list_errors += 1
        upper = None
    if upper is None or resumed:  # a listing resumed mid-way did not see the whole inbox here
        return False
    run.save_state(listing, state, observed, upper)
    return False


def _redrive_one(run: _Run, bucket: str, key: str, identity: Identity, fp: str) -> bool:
    """One archive in the window. False when it is still open (the listing left it unsettled)."""
    summary = run.summary
    if identity in run.seen:  # the listing just handled it: not counted twice
        return fp in run.settled
    summary.archived += 1
    run.seen.add(identity)
    if _settled(run, bucket, identity):
        return True
    try:
        document = run.storage.get_json(bucket, key)
    except StorageError as exc:
        log.error("archived callback not readable; the next sweep tries again", key=key, error=str(exc))
        summary.failed += 1
        return False
    if document is None:
        summary.skip("archive-gone")
        return True
    _run_body(run, inbox.body_of(document), "replay", checked=True)
    return True


# ---------------------------------------------------------------- the timer entry


def _continue(inv: Invocation, message: str) -> str | None:
    """Out of time with work left: go on at once in a continuation (the cursor is saved),
    rather than at the next timer tick. The next tick resumes anyway if this fails."""
    try:
        return chain.invoke_self(inv, {"v": 1, "for": SWEEP, "message": message})
    except (NotifyError, StorageError) as exc:
        log.warn("sweep continuation not invoked; the next timer resumes from the cursor", error=str(exc))
        return None


def continue_sweep(pointer: Mapping[str, Any], inv: Invocation, router: Router) -> dict[str, Any]:
    """A sweep's continuation event: the same sweep, from its saved cursor."""
    message = pointer.get("message")
    if not isinstance(message, str) or not message or len(message.encode("utf-8")) > 4096:
        return {"ok": False, "status": "rejected", "reason": "sweep continuation without a spec"}
    return handle_timer({"Message": message, "TriggerName": "continuation"}, inv, router)


def handle_timer(event: Mapping[str, Any], inv: Invocation, router: Router) -> dict[str, Any]:
    """A timer event: read the spec, resume or start the sweep, keep the cursor, write the summary."""
    settings = inv.settings
    message = event.get("Message") or settings.reconcile_spec
    try:
        if not message:
            raise InvalidSweepSpec("the timer carries no Message and CI_CALLBACK_RECONCILE_SPEC is not set")
        spec = parse_spec(message)
    except InvalidSweepSpec as exc:
        log.error("sweep spec refused", reason=str(exc), trigger=str(event.get("TriggerName"))[:64])
        return {"ok": False, "status": "rejected", "reason": str(exc)}
    storage = inv.services.storage
    storage.learn_regions((source.bucket, source.region) for source in spec.sources)
    home = sweep_home(settings, spec)
    cursor_key = keys.sweep_cursor_key(settings.marker_prefix, spec.digest)
    try:
        saved = sweep.Cursor.from_json(storage.get_json(home, cursor_key), spec.digest)
    except StorageError as exc:
        log.warn("sweep cursor not readable; starting over", error=str(exc))
        saved = None
    started = datetime.now(timezone.utc)
    summary, cursor = run_sweep(spec, saved, inv, router, started.timestamp())
    continued = None
    try:
        if cursor is not None:
            storage.put_json(home, cursor_key, cursor.to_json())
            if summary.stalled is None:  # a chain only with progress: else the next tick resumes
                continued = _continue(inv, str(message))
            else:
                log.warn("sweep made no progress; not continued", reason=summary.stalled, spec=spec.digest)
        elif saved is not None:
            storage.delete(home, cursor_key)
        document = {"schema": 1, "spec": spec.digest, "request_id": inv.request_id, "started_at": started.isoformat(),
                    "resumed": saved is not None, "cursor": cursor.to_json() if cursor else None,
                    "continuation": continued,
                    **summary.to_json()}
        storage.put_json(home, keys.sweep_summary_key(settings.index_prefix, started, inv.request_id), document)
    except StorageError as exc:  # the work is done and idempotent; the next sweep starts over at worst
        log.warn("sweep cursor or summary not written", error=str(exc))
    status = "complete" if summary.complete else "partial"
    log.info("sweep", status=status, spec=spec.digest, request_id=inv.request_id, resumed=saved is not None,
             **summary.to_json())
    return {"ok": summary.failed == 0 and summary.list_errors == 0, "status": status, "spec": spec.digest,
            **summary.to_json()}
