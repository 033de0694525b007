"""Processed markers: a re-delivered callback becomes a cheap 200, and concurrent
duplicates never both run non-idempotent actions (notify).

Per (kind, id, state) there are numbered leases ``lease-1``, ``lease-2``… and a
``done`` marker. A lease is taken with the one conditional write
(``CosStorage.create_once``), so exactly one delivery owns it. A lease left by a
crashed run expires after ``marker_ttl_seconds``; the next delivery then takes the
next number, with no cap (docs/durability-leases.md). What is guaranteed where is in the README.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import keys
from ..errors import StorageError
from ..model.models import Callback

if TYPE_CHECKING:  # the adapter is handed in; durability never imports it
    from ..adapters.cos import CosStorage

# A job claimed after this many earlier attempts that never finished is "stuck": the claim
# still goes ahead, but the log, ``inspect`` and ``report`` say so.
STUCK_ATTEMPTS = 3
# Claims lost in a row to other deliveries taking the next number: then CI retries later.
CLAIM_ROUNDS = 3


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
    """Take the next lease of (kind, id, state), however many earlier ones expired.

    ``lease-1`` is tried first (one request for a first delivery). When a number is taken,
    the marker prefix is listed once (done marker, highest lease number) and only the
    highest lease is read: live is "in-progress", expired means the next number is ours
    to take. So "in progress" is only ever answered for a live lease.
    """
    base = marker_base(prefix, callback)
    now = time.time()
    # The nonce tells our own lease from another delivery's: a write that timed out may
    # still have landed, and its retry then finds the key taken by ourselves.
    nonce = secrets.token_hex(8)
    record = {"status": "in-progress", "owner": owner, "nonce": nonce, "expires_at": round(now + ttl, 3)}
    number = 1
    for _ in range(CLAIM_ROUNDS):
        lease = Lease(bucket, base, number, nonce)
        if _create(storage, lease, record):
            return Claim(lease)
        numbers: list[int] = []
        for key, _modified in storage.list_keys(bucket, base):
            if key == lease.done_key:
                return Claim(None, "done")
            numbers.append(lease_number(key))
        highest = max(numbers, default=0)
        if highest == 0:  # every lease was released meanwhile: take the first again
            number = 1
            continue
        held = storage.get_json(bucket, keys.lease_key(base, highest))
        if held is None:  # released between the listing and the read: try that number
            number = highest
            continue
        if held.get("nonce") == nonce:
            return Claim(Lease(bucket, base, highest, nonce))
        if float(held.get("expires_at") or 0) > now:
            return Claim(None, "in-progress")
        number = highest + 1  # expired (a crashed or released run): the next number is free
    raise StorageError(f"claim {base}: lost the race for a lease {CLAIM_ROUNDS} times", transient=True)


def lease_number(key: str) -> int:
    """N for a ``…/lease-<N>.json`` key, 0 for any other key."""
    name = key.rpartition("/")[2]
    digits = name[len("lease-"):-len(".json")] if name.startswith("lease-") and name.endswith(".json") else ""
    return int(digits) if digits.isdigit() else 0


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
    number = lease_number(key)
    if number < 1:
        return None
    return Lease(bucket, key.rpartition("/")[0] + "/", number, nonce)


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
