"""``ci-callback inspect ID``: the story of one callback, read from the bucket, and its verdict.

The verdict rules (shared with ``report``) are in ``judge``; they read only what the
function wrote, never CI: CI's own Code/Message come from the archived body.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ci_callback import keys
from ci_callback.durable import idempotency

from .records import (
    FAILED_STATES,
    KINDS,
    ArchiveEntry,
    Bucket,
    Delivery,
    Marker,
    id_prefix,
    is_terminal,
    marker_id_prefix,
    parse_archive_key,
    parse_delivery_key,
    utc,
)

OUR_SOURCE = "ci-callback"  # the ci-source tag value (ci_callback.actions.SOURCE)
MAX_TAGS = 10  # COS's per-object limit (ci_callback.actions.MAX_TAGS)
PART_SIZE = 1000  # outputs per index part (ci_callback.actions.PART_SIZE)
LISTED_OUTPUTS = 20  # a large job's text story lists this many outputs that need a look, and counts the rest

PROCESSED, PROCESSING, FAILED, UNFINISHED, NEVER = "processed", "processing", "failed", "unfinished", "never seen"


@dataclass
class Verdict:
    outcome: str  # processed | processing | failed | unfinished | never seen
    line: str  # the one-line verdict printed last
    fix: str | None = None  # the command that fixes it, where there is one
    state: str | None = None  # the state the verdict is about

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "line": self.line, "fix": self.fix, "state": self.state}


@dataclass
class Facts:
    """Everything known about one (kind, id), as listed; the input to ``judge``."""

    kind: str
    id: str
    archives: list[ArchiveEntry] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)  # recorded ones only
    markers: dict[str, list[Marker]] = field(default_factory=dict)  # by state
    failure: dict[str, Any] | None = None
    failure_listed: bool = False
    index_found: bool = False
    final: ArchiveEntry | None = None  # the archived terminal body the verdict reads
    callback: Any = None  # parse_callback(final's body)
    tag: str | None = None  # from any archived body (a job seen only Running has no final one)

    @property
    def seen(self) -> bool:
        return bool(self.archives or self.deliveries or self.markers or self.failure_listed)

    def all_deliveries(self) -> list[Delivery]:
        """Recorded deliveries, else one inferred per archived body (older buckets)."""
        if self.deliveries:
            return sorted(self.deliveries, key=lambda d: (d.received_at or _EPOCH))
        return sorted((Delivery(a.modified, _archive_source(a), None, a.state, None, a.key, False)
                       for a in self.archives), key=lambda d: (d.received_at or _EPOCH))

    def terminal_states(self) -> list[str]:
        states = {a.state for a in self.archives} | {d.state for d in self.deliveries if d.state}
        states |= set(self.markers)
        if self.failure_listed:
            states.add(str((self.failure or {}).get("state") or "Failed"))
        return sorted(s for s in states if is_terminal(self.kind, s))

    def pick_final(self) -> None:
        """The terminal archived body the verdict is about: the latest one received."""
        terminal = [a for a in self.archives if is_terminal(self.kind, a.state)]
        self.final = max(terminal, key=lambda a: a.modified or _EPOCH) if terminal else None


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _archive_source(entry: ArchiveEntry) -> str:
    document = entry.document or {}
    return str(document.get("source") or "url")


def done_marker(facts: Facts, state: str) -> Marker | None:
    return next((m for m in facts.markers.get(state, []) if m.name == "done"), None)


def live_lease(facts: Facts, state: str, now: float) -> Marker | None:
    for marker in facts.markers.get(state, []):
        if marker.name.startswith("lease-") and marker.body is not None:
            expires = float(marker.body.get("expires_at") or 0)
            if marker.body.get("status") == "in-progress" and expires > now:
                return marker
    return None


def ci_failure(facts: Facts) -> tuple[str | None, str | None]:
    """CI's own code and message for a failed job: from the archived body, else the failure record."""
    code = message = None
    callback = facts.callback
    if callback is not None:
        code, message = getattr(callback, "code", None), getattr(callback, "message", None)
    if facts.failure:
        code = code or facts.failure.get("code")
        message = message or facts.failure.get("message")
    return (None if code is None else str(code)), (None if message is None else str(message))


def replay_fix(bucket: str, kind: str, callback_id: str) -> str:
    return f"ci-callback replay --bucket {bucket} --prefix {kind}/{keys.encode_id(callback_id)}/"


def reconcile_fix(bucket: str, kind: str, callback_id: str) -> str:
    """The sweep asks CI for final jobs whose callbacks never came (its spec names the buckets)."""
    return "ci-callback reconcile"


def judge(facts: Facts, bucket: str, now: float | None = None) -> Verdict:
    """processed · processing · failed: <code and message> · seen but not finished · never seen."""
    now = time.time() if now is None else now
    if not facts.seen:
        return Verdict(NEVER, "never seen", reconcile_fix(bucket, facts.kind, facts.id))
    states = facts.terminal_states()
    if not states:
        last = max(facts.archives, key=lambda a: a.modified or _EPOCH).state if facts.archives else "?"
        return Verdict(UNFINISHED, f"seen but not finished: CI's final callback never arrived (last state {last})",
                       reconcile_fix(bucket, facts.kind, facts.id), last)
    state = facts.final.state if facts.final is not None else states[-1]
    has_markers = any(facts.markers.values())
    done = done_marker(facts, state) is not None
    if not has_markers:  # dedupe switched off: the index or failure record is the only trace
        done = facts.index_found or facts.failure_listed
    failed = state in FAILED_STATES or (facts.failure_listed and facts.kind == "job" and state != "Success")
    code, message = ci_failure(facts)
    ci_said = " ".join(p for p in (code, message) if p) or state
    if done:
        if failed:
            return Verdict(FAILED, f"failed: {ci_said}", None, state)
        return Verdict(PROCESSED, "processed", None, state)
    lease = live_lease(facts, state, now)
    chained = _checkpoint(facts, state)
    if lease is not None:
        expires = datetime.fromtimestamp(float((lease.body or {}).get("expires_at") or 0), timezone.utc)
        going = f"continuing: {checkpoint_summary(chained.body)}; " if chained is not None else ""
        return Verdict(PROCESSING, f"processing ({going}{lease.name} held until {_when(expires)})", None, state)
    detail = f" (CI reported {state}: {ci_said})" if failed else ""
    stuck = stuck_line(facts, state)
    if stuck is not None:
        detail = f": {stuck}{detail}"
    if chained is not None:  # a chain broke: the next claim resumes from its checkpoint
        detail += f" (a chain stopped at {checkpoint_summary(chained.body)}; replay resumes it)"
    return Verdict(UNFINISHED, f"seen but not finished{detail}", replay_fix(bucket, facts.kind, facts.id), state)


def stuck_line(facts: Facts, state: str) -> str | None:
    """``stuck: N attempts, last …`` once STUCK_ATTEMPTS leases of STATE ended without a done marker."""
    leases = [m for m in facts.markers.get(state, []) if idempotency.lease_number(m.key) > 0]
    if not leases:
        return None
    last = max(leases, key=lambda m: idempotency.lease_number(m.key))
    attempts = idempotency.lease_number(last.key)
    if attempts < idempotency.STUCK_ATTEMPTS:
        return None
    owner = (last.body or {}).get("owner")
    return f"stuck: {attempts} attempts, last {_when(last.modified)}" + (f" by {owner}" if owner else "")


def _when(stamp: datetime | None) -> str:
    return stamp.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if stamp else "?"


# ---------------------------------------------------------------- gathering one id


@dataclass
class OutputTags:
    bucket: str | None
    key: str | None
    status: str  # tagged | partial | untagged | missing | skipped | unreadable | not expected
    why: str
    tags: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "status": self.status, "why": self.why,
                "tags": self.tags, "missing": self.missing}


@dataclass
class Story:
    facts: Facts
    bucket: str
    index: list[dict[str, Any]] = field(default_factory=list)  # {key, found, modified}
    outputs: list[OutputTags] = field(default_factory=list)
    notify: dict[str, Any] = field(default_factory=dict)
    continuations: list[dict[str, Any]] = field(default_factory=list)
    verdict: Verdict | None = None
    unreadable: list[str] = field(default_factory=list)  # reads that failed: the story may miss them

    def to_dict(self) -> dict[str, Any]:
        facts = self.facts
        callback = facts.callback
        return {
            "kind": facts.kind,
            "id": facts.id,
            "bucket": self.bucket,
            "tag": getattr(callback, "tag", None) or facts.tag,
            "deliveries": [_delivery_dict(d) for d in facts.all_deliveries()],
            "deliveries_recorded": bool(facts.deliveries),
            "archive": [{"key": a.key, "state": a.state, "sha16": a.sha16, "archived_at": _iso(a.modified)}
                        for a in sorted(facts.archives, key=lambda a: a.modified or _EPOCH)],
            "markers": [{"state": m.state, "name": m.name, "key": m.key, "at": _iso(m.modified),
                         **({"body": m.body} if m.body is not None else {})}
                        for state in sorted(facts.markers) for m in facts.markers[state]],
            "continuations": self.continuations,
            "index": self.index,
            "failure": facts.failure,
            "outputs": [o.to_dict() for o in self.outputs],
            "notify": self.notify,
            "unreadable": self.unreadable,
            "verdict": self.verdict.to_dict() if self.verdict else None,
        }


def _iso(stamp: datetime | None) -> str | None:
    return stamp.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if stamp else None


def _delivery_dict(d: Delivery) -> dict[str, Any]:
    return {"received_at": _iso(d.received_at), "source": d.source, "request_id": d.request_id, "state": d.state,
            "sha256": d.sha256, "archive_key": d.archive_key, "recorded": d.recorded}


def _parse(document: Mapping[str, Any] | None) -> Any:
    if not document:
        return None
    from ci_callback.durable.inbox import body_of
    from ci_callback.errors import InvalidCallback
    from ci_callback.model.parse import parse_callback

    try:
        return parse_callback(body_of(document), (document.get("headers") or {}).get("content-type"))
    except InvalidCallback:
        return None


def collect(bucket: Bucket, kind: str, callback_id: str, read_bodies: bool = True) -> Facts:
    """List (and read) the inbox and markers of one (kind, id)."""
    facts = Facts(kind, callback_id)
    for item in bucket.list(id_prefix(bucket.archive_prefix, kind, callback_id)):
        entry = parse_archive_key(bucket.archive_prefix, item.key)
        if entry is not None:
            entry.modified = item.modified
            facts.archives.append(entry)
            continue
        found = parse_delivery_key(bucket.archive_prefix, item.key)
        if found is not None:
            facts.deliveries.append(found[2])
    for item in bucket.list(marker_id_prefix(bucket.marker_prefix, kind, callback_id)):
        from .records import parse_marker_key

        parsed = parse_marker_key(bucket.marker_prefix, item.key)
        if parsed is not None:
            marker = parsed[2]
            marker.modified = item.modified
            facts.markers.setdefault(marker.state, []).append(marker)
    if read_bodies:
        for entry, document in bucket.read_many(facts.archives, lambda a: bucket.get_json(a.key)):
            entry.document = document
        for delivery, record in bucket.read_many(facts.deliveries, lambda d: bucket.get_json(d.key or "")):
            if record:  # the name has the counts; the body adds the digest and archive key
                delivery.sha256 = record.get("sha256")
                delivery.archive_key = record.get("archive_key")
                delivery.source = str(record.get("source") or delivery.source)
        markers = [m for ms in facts.markers.values() for m in ms]
        for marker, body in bucket.read_many(markers, lambda m: bucket.get_json(m.key)):
            marker.body = body
    facts.pick_final()
    if facts.final is not None and facts.final.document is not None:
        facts.callback = _parse(facts.final.document)
    facts.tag = next((str(a.document["tag"]) for a in facts.archives if a.document and a.document.get("tag")), None)
    if kind == "job":
        facts.failure = bucket.get_json(bucket.failure_key(callback_id))
        facts.failure_listed = facts.failure is not None
    return facts


def find_kind(bucket: Bucket, callback_id: str) -> str:
    """Which kind an id is: the first with anything in the inbox or the markers (job by default)."""
    for kind in KINDS:
        for prefix in (id_prefix(bucket.archive_prefix, kind, callback_id),
                       marker_id_prefix(bucket.marker_prefix, kind, callback_id)):
            if any(True for _ in bucket.storage.list_keys(bucket.name, prefix)):
                return kind
    return "job"


def gather(bucket: Bucket, callback_id: str, kind: str | None = None, now: float | None = None) -> Story:
    kind = kind or find_kind(bucket, callback_id)
    facts = collect(bucket, kind, callback_id)
    story = Story(facts, bucket.name)
    callback = facts.callback
    story.index = _index_documents(bucket, facts)
    facts.index_found = any(doc["found"] for doc in story.index if doc["what"] != "failure record")
    story.verdict = judge(facts, bucket.name, now)
    if callback is not None and kind == "job":
        story.outputs = _outputs(bucket, facts, story.verdict)
    story.notify = _notify(facts, story.verdict)
    story.continuations = _continuations(facts)
    story.unreadable = list(bucket.errors)
    return story


def _head_time(bucket: Bucket, key: str) -> tuple[bool, datetime | None]:
    head = bucket.storage.head(bucket.name, key)
    if head is None:
        return False, None
    from email.utils import parsedate_to_datetime

    try:
        return True, parsedate_to_datetime(str(head.get("Last-Modified") or head.get("last-modified")))
    except (TypeError, ValueError):
        return True, None


def _index_documents(bucket: Bucket, facts: Facts) -> list[dict[str, Any]]:
    callback = facts.callback
    wanted: list[tuple[str, str]] = []
    prefix = bucket.index_prefix
    if callback is not None:
        ref = callback.input
        if facts.kind == "job" and callback.state == "Success":
            wanted.append(("job index", keys.job_index_key(prefix, ref.bucket, ref.key, callback.job_id)))
        elif facts.kind == "workflow":
            wanted.append(("run manifest", keys.run_manifest_key(prefix, ref.bucket, ref.key, callback.run_id)))
            wanted.append(("latest-run pointer", keys.latest_run_key(prefix, ref.bucket, ref.key)))
        elif facts.kind == "moderation":
            wanted.append(("review record", keys.review_key(prefix, ref.bucket, ref.key, callback.event, callback.id)))
    if facts.kind == "job":
        wanted.append(("failure record", bucket.failure_key(facts.id)))
    found = []
    for what, key in wanted:
        exists, modified = _head_time(bucket, key)
        entry: dict[str, Any] = {"what": what, "key": key, "found": exists, "modified": _iso(modified)}
        if what == "latest-run pointer" and exists:
            pointer = bucket.get_json(key) or {}
            entry["points_here"] = pointer.get("run_id") == facts.id
        if what == "job index" and len(getattr(callback, "outputs", ())) > PART_SIZE:
            # A very large job's index is split in parts beside it (issue 12): count what is there.
            stem = key[: -len(".json")] + ".part-"
            parts = -(-len(callback.outputs) // PART_SIZE)
            entry["parts"] = {"expected": parts, "found": sum(1 for _ in bucket.storage.list_keys(bucket.name, stem))}
        found.append(entry)
    return found


def _expected_tags(bucket: Bucket, callback: Any) -> dict[str, str]:
    prefix = bucket.tag_prefix
    return {f"{prefix}job-id": callback.job_id, f"{prefix}tag": callback.tag or "unknown", f"{prefix}source": OUR_SOURCE}


def _outputs(bucket: Bucket, facts: Facts, verdict: Verdict) -> list[OutputTags]:
    from ci_callback.actions.builtin import valid_tag
    from ci_callback.errors import NotFound, StorageError

    callback = facts.callback
    ours = _expected_tags(bucket, callback)
    results: list[OutputTags] = []

    def read(ref: Any) -> OutputTags:
        if not ref.key or not ref.bucket:
            return OutputTags(ref.bucket, ref.key, "skipped", "the callback names no bucket or key for it")
        if callback.state != "Success":
            return OutputTags(ref.bucket, ref.key, "not expected", f"outputs are tagged on Success only (state {callback.state})")
        try:
            bucket.storage.learn_regions([(ref.bucket, ref.region)])
            tags = bucket.storage.get_tags(ref.bucket, ref.key)
        except NotFound:
            return OutputTags(ref.bucket, ref.key, "missing", "the output object does not exist (deleted, or never written)")
        except StorageError as exc:
            return OutputTags(ref.bucket, ref.key, "unreadable", f"cannot read its tags: {exc}")
        missing = [k for k, v in ours.items() if tags.get(k) != v]
        if not missing:
            return OutputTags(ref.bucket, ref.key, "tagged", "all our tags are there", tags)
        status = "partial" if len(missing) < len(ours) else "untagged"
        return OutputTags(ref.bucket, ref.key, status, _why_untagged(bucket, ref, tags, ours, missing, verdict, valid_tag),
                          tags, missing)

    for _, result in bucket.read_many(list(callback.outputs), read):
        results.append(result)
    return results


def _why_untagged(bucket: Bucket, ref: Any, tags: Mapping[str, str], ours: Mapping[str, str], missing: list[str],
                  verdict: Verdict, valid_tag: Any) -> str:
    other = tags.get(f"{bucket.tag_prefix}job-id")
    if other and other != ours[f"{bucket.tag_prefix}job-id"]:
        return f"tagged by another job ({other}): a later job wrote the same output key"
    if bucket.allowed_buckets and ref.bucket not in bucket.allowed_buckets:
        return f"skipped: bucket {ref.bucket} is not in CI_CALLBACK_ALLOWED_BUCKETS"
    invalid = [k for k in missing if not valid_tag(k, ours[k])]
    if invalid:
        return f"skipped: {', '.join(invalid)} does not fit COS's tag rules (length or characters)"
    if len(tags) >= MAX_TAGS:
        return f"skipped: the object already has {len(tags)} tags (COS allows {MAX_TAGS}; the user's tags are kept)"
    if verdict.outcome != PROCESSED:
        return "not tagged yet: our processing did not finish"
    return "not tagged although processed: tagging switched off (CI_CALLBACK_ACTIONS), or the tags were removed since"


def _notify(facts: Facts, verdict: Verdict) -> dict[str, Any]:
    """From the done marker, which records whether notify ran (``{"ran": …, "function", "request_id"}``)."""
    if verdict.state is None:
        return {"ran": None, "why": "nothing processed"}
    done = done_marker(facts, verdict.state)
    if done is None or done.body is None:
        return {"ran": False if verdict.outcome != PROCESSED else None, "why": "no done marker"}
    notify = done.body.get("notify")
    if not isinstance(notify, dict):
        return {"ran": None, "why": "the done marker predates notify being recorded"}
    if not notify.get("ran"):
        return {"ran": False, "why": "not configured, switched off, or nothing processed"}
    return {"ran": True, "function": notify.get("function"), "event_id": notify.get("event_id"),
            "request_id": notify.get("request_id")}


def _continuations(facts: Facts) -> list[dict[str, Any]]:
    """A chain of continuations (issue 12): its checkpoint beside the lease markers while it
    runs (or after it broke), the steps the done marker counts once it finished, and any
    delivery recorded with the source "continuation"."""
    found: list[dict[str, Any]] = []
    for state, markers in sorted(facts.markers.items()):
        for marker in markers:
            if marker.name.startswith("checkpoint"):
                found.append({"state": state, "key": marker.key, "at": _iso(marker.modified), "body": marker.body,
                              "summary": checkpoint_summary(marker.body)})
            elif marker.name == "done" and marker.body and int(marker.body.get("steps") or 1) > 1:
                steps = int(marker.body["steps"])
                found.append({"state": state, "key": marker.key, "at": _iso(marker.modified), "steps": steps,
                              "summary": f"finished in {steps} steps ({steps - 1} continuation(s))"})
    for delivery in facts.deliveries:
        if delivery.source == "continuation":
            found.append({"state": delivery.state, "key": delivery.key, "at": _iso(delivery.received_at),
                          "request_id": delivery.request_id, "summary": "delivered as a continuation"})
    return found


def checkpoint_summary(body: Mapping[str, Any] | None) -> str:
    """``step 2, 1202 of 3003 tasks done (continuing)`` from a checkpoint, read defensively."""
    if not body:
        return "checkpoint (unreadable)"
    raw = body.get("tasks")
    tasks: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    parts = [f"step {body['step']}" if body.get("step") is not None else "checkpoint"]
    if tasks.get("total") is not None:
        parts.append(f"{tasks.get('done', '?')} of {tasks['total']} tasks done")
    text = ", ".join(parts)
    return text + (f" ({body['status']})" if body.get("status") else "")


def _checkpoint(facts: Facts, state: str) -> Marker | None:
    return next((m for m in facts.markers.get(state, []) if m.name.startswith("checkpoint")), None)


# ---------------------------------------------------------------- the story as text


def render(story: Story) -> str:
    facts = story.facts
    callback = facts.callback
    lines: list[str] = []
    tag = getattr(callback, "tag", None) or facts.tag
    head = f"{facts.kind} {facts.id}" + (f" ({tag})" if tag else "") + f" in bucket {story.bucket}"
    lines.append(head)
    if callback is not None and getattr(callback, "input", None) is not None:
        ref = callback.input
        lines.append(f"  input        {ref.bucket}/{ref.key}")
    deliveries = facts.all_deliveries()
    lines.append("")
    lines.append(f"Deliveries ({len(deliveries)})" + ("" if facts.deliveries or not deliveries else
                                                    " — inferred from the archive: no per-delivery records"))
    states_seen: set[str | None] = set()
    for n, d in enumerate(deliveries, 1):
        digest = (d.sha256 or "")[:16] or (d.archive_key or "").rsplit("-", 1)[-1].replace(".json", "")
        again = "  (re-delivery)" if d.state in states_seen else ""
        states_seen.add(d.state)
        lines.append(f"  {n:>2}. {_when(d.received_at)}  {d.source:<12} {d.state or '?':<8} sha256 {digest or '?'}"
                     + (f"  request {d.request_id}" if d.request_id else "") + again)
    if not deliveries:
        lines.append("  none archived")
    lines.append("")
    lines.append("Markers")
    all_markers = [m for state in sorted(facts.markers) for m in facts.markers[state]]
    for m in all_markers:
        extra = ""
        if m.body and m.name.startswith("lease-") and done_marker(facts, m.state) is not None:
            extra = f"  taken by {m.body.get('owner')}"
        elif m.body and m.name.startswith("lease-"):
            expires = float(m.body.get("expires_at") or 0)
            extra = f"  {m.body.get('status')}, owner {m.body.get('owner')}, expires {_when(datetime.fromtimestamp(expires, timezone.utc))}"
        elif m.body and m.name == "done":
            extra = f"  by {m.body.get('request_id')}" + (f" ({m.body['source']})" if m.body.get("source") else "")
        lines.append(f"  {m.state:<8} {m.name:<11} {_when(m.modified)}{extra}")
    if not all_markers:
        lines.append("  none")
    if story.continuations:
        lines.append("")
        lines.append("Continuations")
        for c in story.continuations:
            lines.append(f"  {c.get('state') or '?':<8} {_when(utc(c.get('at')))}  {c.get('summary')}  {c.get('key')}")
    lines.append("")
    lines.append("Index and failure records")
    for doc in story.index:
        mark = "found  " if doc["found"] else "absent "
        extra = ""
        if "points_here" in doc:
            extra = "  (points at this run)" if doc["points_here"] else "  (points at another run)"
        if "parts" in doc:
            extra = f"  ({doc['parts']['found']} of {doc['parts']['expected']} parts)"
        lines.append(f"  {doc['what']:<18} {mark} {doc['key']}" + (f"  {_when(utc(doc['modified']))}" if doc["found"] else "") + extra)
    if facts.failure:
        lines.append(f"  failure: {facts.failure.get('state')} {facts.failure.get('code')} {facts.failure.get('message')}")
    if not story.index:
        lines.append("  none expected")
    if story.outputs:
        lines.append("")
        lines.append(f"Outputs ({len(story.outputs)})")
        shown = story.outputs
        if len(story.outputs) > LISTED_OUTPUTS:  # a large job: the counts, then what needs a look
            counts: dict[str, int] = {}
            for o in story.outputs:
                counts[o.status] = counts.get(o.status, 0) + 1
            lines.append("  " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
            shown = [o for o in story.outputs if o.status != "tagged"][:LISTED_OUTPUTS]
        for o in shown:
            lines.append(f"  {o.status:<12} {o.bucket}/{o.key}")
            if o.status != "tagged":
                lines.append(f"               {o.why}" + (f"; missing {', '.join(o.missing)}" if o.missing else ""))
        hidden = len([o for o in story.outputs if o.status != "tagged"]) - len([o for o in shown if o.status != "tagged"])
        if hidden > 0:
            lines.append(f"  … and {hidden} more (--json lists every output)")
    lines.append("")
    notify = story.notify
    if notify.get("ran"):
        ids = [f"event_id {notify['event_id']}" if notify.get("event_id") else "",
               f"request {notify['request_id']}" if notify.get("request_id") else ""]
        lines.append(f"Notify: ran ({notify.get('function')}), " + ", ".join(i for i in ids if i))
    elif notify.get("ran") is False:
        lines.append(f"Notify: did not run ({notify.get('why')})")
    else:
        lines.append(f"Notify: unknown ({notify.get('why')})")
    lines.append("")
    for error in story.unreadable[:5]:
        lines.append(f"Could not read {error} (counted as absent)")
    verdict = story.verdict
    if verdict is not None:
        lines.append(f"Verdict: {verdict.line}" + (f"  →  {verdict.fix}" if verdict.fix else ""))
    return "\n".join(lines) + "\n"
