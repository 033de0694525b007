"""Deterministic object keys for everything we write (every layout lives here). Pure functions, no I/O.

Input keys may hold anything (spaces, Chinese, ``+``, ``%``, ``..``). They are kept
readable and made injective: only ``%`` and control characters are percent-encoded,
and a key with empty or dot segments (``a//b``, ``../x``) is encoded whole, so no key
can escape its prefix and a re-delivered callback always lands on the same keys.
"""

from __future__ import annotations

import re
from typing import Optional
from urllib.parse import quote

_ESCAPE = re.compile(r"[%\x00-\x1f\x7f]")

NO_BUCKET = "_"


def encode_key(key: Optional[str]) -> str:
    """Escape ``%`` and control characters; encode the whole key if a segment is empty or dots."""
    key = key or ""
    if not key or any(s in ("", ".", "..") for s in key.split("/")):
        return quote(key, safe="") or "%-"  # no other branch yields a bare %
    return _ESCAPE.sub(lambda m: f"%{ord(m.group()):02X}", key)


def encode_id(value: Optional[str]) -> str:
    return quote(value or "unknown", safe="")


def object_base(prefix: str, bucket: Optional[str], key: Optional[str]) -> str:
    return f"{prefix}{encode_id(bucket) if bucket else NO_BUCKET}/{encode_key(key)}"


def job_index_key(prefix: str, bucket: Optional[str], key: Optional[str], job_id: str) -> str:
    return f"{object_base(prefix, bucket, key)}/job-{encode_id(job_id)}.json"


def failures_prefix(prefix: str) -> str:
    return f"{prefix}failures/"


def failure_key(prefix: str, job_id: str) -> str:
    return f"{failures_prefix(prefix)}{encode_id(job_id)}.json"


def run_manifest_key(prefix: str, bucket: Optional[str], key: Optional[str], run_id: str) -> str:
    return f"{object_base(prefix, bucket, key)}/run-{encode_id(run_id)}.json"


def latest_run_key(prefix: str, bucket: Optional[str], key: Optional[str]) -> str:
    return f"{object_base(prefix, bucket, key)}/latest-run.json"


def review_key(prefix: str, bucket: Optional[str], key: Optional[str], event: Optional[str], job_id: Optional[str]) -> str:
    return f"{object_base(prefix, bucket, key)}/review-{encode_id(event)}-{encode_id(job_id)}.json"


# ---------------------------------------------------------------- the inbox (raw bodies, for replay)


def archive_prefix_of(prefix: str, kind: str, callback_id: Optional[str]) -> str:
    """Every archived body of one job, run or review."""
    return f"{prefix}{kind}/{encode_id(callback_id)}/"


def archive_key(prefix: str, kind: str, callback_id: Optional[str], state: Optional[str], digest16: str) -> str:
    return f"{archive_prefix_of(prefix, kind, callback_id)}{encode_id(state or 'none')}-{digest16}.json"


# ---------------------------------------------------------------- processed markers


def marker_base(prefix: str, kind: str, callback_id: Optional[str], state: Optional[str]) -> str:
    return f"{prefix}{kind}/{encode_id(callback_id)}/{encode_id(state or 'none')}/"


def lease_key(base: str, number: int) -> str:
    return f"{base}lease-{number}.json"


def done_key(base: str) -> str:
    return f"{base}done.json"
