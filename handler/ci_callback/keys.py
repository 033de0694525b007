"""Deterministic object keys for everything we write. Pure functions, no I/O.

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


def failure_key(prefix: str, job_id: str) -> str:
    return f"{prefix}failures/{encode_id(job_id)}.json"


def run_manifest_key(prefix: str, bucket: Optional[str], key: Optional[str], run_id: str) -> str:
    return f"{object_base(prefix, bucket, key)}/run-{encode_id(run_id)}.json"


def latest_run_key(prefix: str, bucket: Optional[str], key: Optional[str]) -> str:
    return f"{object_base(prefix, bucket, key)}/latest-run.json"


def review_key(prefix: str, bucket: Optional[str], key: Optional[str], event: Optional[str], job_id: Optional[str]) -> str:
    return f"{object_base(prefix, bucket, key)}/review-{encode_id(event)}-{encode_id(job_id)}.json"
