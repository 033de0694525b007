"""Processed markers: a re-delivered callback becomes a cheap 200, and concurrent
duplicates never both run non-idempotent actions (notify).

Per (kind, id, state) there are numbered leases ``lease-1``, ``lease-2``… and a
``done`` marker. A lease is taken with the one conditional write
(``CosStorage.create_once``), so exactly one delivery owns it. A lease left by a
crashed run expires after ``marker_ttl_seconds``; the next delivery then takes the
next number. What is guaranteed where is in the README.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import keys
from .models import Callback

if TYPE_CHECKING:  # the adapter is handed in; durability never imports it
    from .storage import CosStorage

MAX_LEASES = 5


@dataclass
class Lease:
    bucket: str
    base: str
    number: int
    nonce: str = ""  # tells our lease from another delivery's (see claim)

    @property
    def key(self) -> str:
        return keys.lease_key(self.base, self.number)

    @property
    def done_key(self) -> str:
        return keys.done_key(self.base)


@dataclass
class Claim:
    lease: Lease | None
    duplicate: str | None = None  # "done" or "in-progress" when someone else has it


def marker_base(prefix: str, callback: Callback) -> str:
    return keys.marker_base(prefix, callback.kind, callback.id, callback.state)


def claim(storage: CosStorage, bucket: str, prefix: str, callback: Callback, ttl: int, owner: str | None) -> Claim:
    base = marker_base(prefix, callback)
    now = time.time()
    # The nonce tells our own lease from another delivery's: a write that timed out may
    # still have landed, and its retry then finds the key taken by ourselves.
    nonce = secrets.token_hex(8)
    for number in range(1, MAX_LEASES + 1):
        lease = Lease(bucket, base, number, nonce)
        record = {"status": "in-progress", "owner": owner, "nonce": nonce, "expires_at": round(now + ttl, 3)}
        if _create(storage, lease, record):
            return Claim(lease)
        if number == 1 and storage.head(bucket, lease.done_key) is not None:
            return Claim(None, "done")
        held = storage.get_json(bucket, lease.key)
        if held is None:  # released between our write and read: try this number again later
            if _create(storage, lease, record):
                return Claim(lease)
            continue
        if held.get("nonce") == nonce:
            return Claim(lease)
        if float(held.get("expires_at") or 0) > now:
            return Claim(None, "in-progress")
        # expired lease from a crashed run: take the next number
    return Claim(None, "in-progress")


def _create(storage: CosStorage, lease: Lease, record: dict[str, Any]) -> bool:
    """Take the lease; if that fails, make sure a late-landing write of ours cannot hold it.

    A timed-out conditional write may land later and would then block every retry (each
    answered "200 duplicate") until the TTL. So on failure the key is overwritten with an
    already-expired record, unless another delivery holds it: late conditional writes then
    find the key taken, and the next delivery moves on to the next lease number.
    """
    try:
        return bool(storage.create_once(lease.bucket, lease.key, record))
    except Exception:
        try:
            held = storage.get_json(lease.bucket, lease.key)
            if held is None or held.get("nonce") == record["nonce"]:
                storage.put_json(lease.bucket, lease.key, {**record, "status": "abandoned", "expires_at": 0})
        except Exception:  # best effort; the original error is what counts
            pass
        raise


def renew(storage: CosStorage, lease: Lease, ttl: int, owner: str | None, step: int) -> None:
    """Keep the lease across a chain of continuations: a re-delivery meanwhile is a duplicate.

    Only the holder renews (a continuation checks ``holds`` first), so a plain PUT does.
    """
    storage.put_json(lease.bucket, lease.key, {"status": "in-progress", "owner": owner, "nonce": lease.nonce,
                                               "expires_at": round(time.time() + ttl, 3), "step": step})


def lease_at(bucket: str, key: str, nonce: str) -> Lease | None:
    """The lease whose marker is KEY (``…/lease-<n>.json``), or None when KEY is not one."""
    base, _, name = key.rpartition("/")
    number = name[len("lease-"):-len(".json")] if name.startswith("lease-") and name.endswith(".json") else ""
    if not number.isdigit() or not 1 <= int(number) <= MAX_LEASES:
        return None
    return Lease(bucket, base + "/", int(number), nonce)


def holds(storage: CosStorage, lease: Lease) -> bool:
    """Is LEASE still ours (its marker carries our nonce and has not expired)?"""
    held = storage.get_json(lease.bucket, lease.key)
    return held is not None and held.get("nonce") == lease.nonce and float(held.get("expires_at") or 0) > time.time()


def complete(storage: CosStorage, lease: Lease, summary: dict[str, Any]) -> None:
    storage.put_json(lease.bucket, lease.done_key, {"status": "done", **summary})


def release(storage: CosStorage, lease: Lease, keep_number: bool = False) -> None:
    """Give the lease back after a failure, so CI's retry can run at once.

    KEEP_NUMBER (a checkpoint exists): expire the marker instead of deleting it, so the
    retry claims the next number, and a claim past ``lease-1`` looks for the checkpoint.
    """
    try:
        if keep_number:
            storage.put_json(lease.bucket, lease.key, {"status": "released", "nonce": lease.nonce, "expires_at": 0})
            return
        storage.delete(lease.bucket, lease.key)
    except Exception:  # an unreleased lease simply expires
        pass
