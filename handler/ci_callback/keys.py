"""Deterministic object keys for everything we write. Pure functions, no I/O.

Input keys may hold anything (spaces, Chinese, ``+``, ``%``, ``..``). They are
percent-encoded into one readable, injective path below the index prefix, so a
re-delivered callback always lands on the same keys and no key can escape its prefix.
"""

from __future__ import annotations

from typing import Optional
from urllib.parse import quote

NO_BUCKET = "_"


def encode_key(key: Optional[str]) -> str:
    """Percent-encode an object key, keeping ``/`` unless a segment is empty or a dot-segment."""
    key = key or ""
    segments = key.split("/")
    if not key or any(s in ("", ".", "..") for s in segments):
        return quote(key, safe="") or "%00"
    return quote(key, safe="/")


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
