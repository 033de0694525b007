"""Deterministic object keys for everything we write (every layout lives here). Pure functions, no I/O.

Input keys may hold anything (spaces, Chinese, ``+``, ``%``, ``..``). They are kept
readable and made injective: only ``%`` and control characters are percent-encoded,
and a key with empty or dot segments (``a//b``, ``../x``) is encoded whole, so no key
can escape its prefix and a re-delivered callback always lands on the same keys.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from typing import NamedTuple
from urllib.parse import quote, unquote

_ESCAPE = re.compile(r"[%\x00-\x1f\x7f]")

NO_BUCKET = "_"


def encode_key(key: str | None) -> str:
    """Escape ``%`` and control characters; encode the whole key if a segment is empty or dots."""
    key = key or ""
    if not key or any(s in ("", ".", "..") for s in key.split("/")):
        return quote(key, safe="") or "%-"  # no other branch yields a bare %
    return _ESCAPE.sub(lambda m: f"%{ord(m.group()):02X}", key)


def encode_id(value: str | None) -> str:
    return quote(value or "unknown", safe="")


def object_base(prefix: str, bucket: str | None, key: str | None) -> str:
    return f"{prefix}{encode_id(bucket) if bucket else NO_BUCKET}/{encode_key(key)}"


def job_index_key(prefix: str, bucket: str | None, key: str | None, job_id: str) -> str:
    return f"{object_base(prefix, bucket, key)}/job-{encode_id(job_id)}.json"


def failures_prefix(prefix: str) -> str:
    return f"{prefix}failures/"


def failure_key(prefix: str, job_id: str) -> str:
    return f"{failures_prefix(prefix)}{encode_id(job_id)}.json"


def run_manifest_key(prefix: str, bucket: str | None, key: str | None, run_id: str) -> str:
    return f"{object_base(prefix, bucket, key)}/run-{encode_id(run_id)}.json"


def latest_run_key(prefix: str, bucket: str | None, key: str | None) -> str:
    return f"{object_base(prefix, bucket, key)}/latest-run.json"


def review_key(prefix: str, bucket: str | None, key: str | None, event: str | None, job_id: str | None) -> str:
    return f"{object_base(prefix, bucket, key)}/review-{encode_id(event)}-{encode_id(job_id)}.json"


# ---------------------------------------------------------------- the inbox (raw bodies, for replay)


def archive_prefix_of(prefix: str, kind: str, callback_id: str | None) -> str:
    """Every archived body of one job, run or review."""
    return f"{prefix}{kind}/{encode_id(callback_id)}/"


def archive_key(prefix: str, kind: str, callback_id: str | None, state: str | None, digest16: str) -> str:
    return f"{archive_prefix_of(prefix, kind, callback_id)}{encode_id(state or 'none')}-{digest16}.json"


ARCHIVED_KINDS = ("job", "workflow", "moderation")


def parse_archive_key(prefix: str, key: str) -> tuple[str, str, str] | None:
    """(kind, id, state) of an archive key written by ``archive_key``, else None (rejected
    records, anything foreign). The inverse of the encoding above."""
    if not key.startswith(prefix):
        return None
    parts = key[len(prefix):].split("/")
    if len(parts) != 3 or parts[0] not in ARCHIVED_KINDS or not parts[2].endswith(".json"):
        return None
    state, dash, digest = parts[2][: -len(".json")].rpartition("-")
    if not dash or not state or len(digest) != 16:
        return None
    return parts[0], unquote(parts[1]), unquote(state)


def rejected_key(prefix: str, when: datetime, label: str, digest16: str) -> str:
    """A record the queue delivered that is no callback: kept for a human, never re-driven
    (``parse_archive_key`` refuses it)."""
    day = when.astimezone(timezone.utc).strftime("%Y-%m-%d")
    return f"{prefix}_rejected/{day}/{encode_id(label)}-{digest16}.json"


# ---------------------------------------------------------------- one record per delivery, beside the bodies

DELIVERIES = "deliveries/"
DELIVERY_STAMP = "%Y%m%dT%H%M%S.%fZ"


class DeliveryName(NamedTuple):
    kind: str
    callback_id: str
    received_at: datetime
    source: str
    state: str
    request_id: str


def deliveries_prefix(prefix: str, kind: str, callback_id: str | None) -> str:
    return f"{archive_prefix_of(prefix, kind, callback_id)}{DELIVERIES}"


def _field(value: str) -> str:
    return encode_id(value).replace("-", "%2D")  # "-" separates the name's fields


def delivery_key(prefix: str, kind: str, callback_id: str | None, state: str | None, source: str,
                 received_at: datetime, request_id: str | None) -> str:
    """``<stamp>-<source>-<state>-<request id>.json``: the name alone says what a count needs
    (when, how, which state), so a report lists these and never reads them."""
    stamp = received_at.astimezone(timezone.utc).strftime(DELIVERY_STAMP)
    name = f"{stamp}-{_field(source)}-{_field(state or 'none')}-{encode_id(request_id)}.json"
    return f"{deliveries_prefix(prefix, kind, callback_id)}{name}"


def parse_delivery_key(prefix: str, key: str) -> DeliveryName | None:
    """The inverse of ``delivery_key``; None for any other key (an archived body, …)."""
    parts = key[len(prefix):].split("/") if key.startswith(prefix) else []
    if len(parts) != 4 or f"{parts[2]}/" != DELIVERIES or not parts[3].endswith(".json"):
        return None
    fields = parts[3][: -len(".json")].split("-", 3)
    if len(fields) != 4:
        return None
    try:
        stamp = datetime.strptime(fields[0], DELIVERY_STAMP).replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return DeliveryName(parts[0], unquote(parts[1]), stamp, unquote(fields[1]), unquote(fields[2]), unquote(fields[3]))


def is_delivery_key(prefix: str, key: str) -> bool:
    """Delivery records live under the inbox but are no archived body: replay skips them."""
    rest = key[len(prefix):] if key.startswith(prefix) else ""
    return rest.count("/") == 3 and f"/{DELIVERIES}" in rest


# ---------------------------------------------------------------- processed markers


def marker_prefix_of(prefix: str, kind: str, callback_id: str | None) -> str:
    """Every marker (leases, done, checkpoints) of one job, run or review, all states."""
    return f"{prefix}{kind}/{encode_id(callback_id)}/"


def marker_base(prefix: str, kind: str, callback_id: str | None, state: str | None) -> str:
    return f"{marker_prefix_of(prefix, kind, callback_id)}{encode_id(state or 'none')}/"


def lease_key(base: str, number: int) -> str:
    return f"{base}lease-{number}.json"


def done_key(base: str) -> str:
    return f"{base}done.json"


def checkpoint_key(base: str) -> str:
    """Where a chain of continuations keeps its progress, beside the lease markers."""
    return f"{base}checkpoint.json"


def job_index_part_key(index_key: str, number: int, count: int) -> str:
    """Part NUMBER of COUNT of a large job's index: ``…/job-<id>.part-00001.json``."""
    assert 1 <= number <= count
    stem = index_key[:-len(".json")] if index_key.endswith(".json") else index_key
    return f"{stem}.part-{number:05d}.json"


def event_id(kind: str, callback_id: str | None, state: str | None) -> str:
    """The stable id downstream consumers dedupe on: the identity the markers use."""
    identity = f"{kind}\n{callback_id or ''}\n{state or ''}".encode("utf-8", "surrogatepass")
    return "ev-" + hashlib.sha256(identity).hexdigest()[:32]


# ---------------------------------------------------------------- the reconcile sweep


def sweep_cursor_key(marker_prefix: str, spec_digest: str) -> str:
    """Where a sweep run cut short by its deadline keeps its place (one per spec)."""
    return f"{marker_prefix}_sweep/{encode_id(spec_digest)}/cursor.json"


def sweep_summary_key(index_prefix: str, when: datetime, request_id: str | None) -> str:
    """One summary per sweep invocation: ``sweeps/<UTC date>/<HHMMSS>-<request id>.json``."""
    stamp = when.astimezone(timezone.utc)
    return f"{index_prefix}sweeps/{stamp:%Y-%m-%d}/{stamp:%H%M%S}-{encode_id(request_id)}.json"


def sweep_state_key(marker_prefix: str, spec_digest: str, listing: str) -> str:
    """What earlier sweeps established about one listing (a stream's label, or ``inbox:<bucket>``)."""
    return f"{marker_prefix}_sweep/{encode_id(spec_digest)}/state-{encode_id(listing)}.json"
