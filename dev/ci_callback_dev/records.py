"""Read what the function left in the bucket: the inbox, delivery records, markers,
checkpoints, index and failure records, sweep summaries. Read-only; no I/O at import.

Key layouts come from ``ci_callback.keys`` where it has them; the layouts of records
other branches add (sweeps, checkpoints, continuations) are read defensively by their
agreed keys, so a bucket without them reads as "none".
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import (
    Any,
    TypeVar,
)

from ci_callback import keys

T = TypeVar("T")
R = TypeVar("R")

KINDS = ("job", "workflow", "moderation")
# States after which CI sends nothing more for that job, run or review.
TERMINAL = {
    "job": ("Success", "Failed", "Cancel"),
    "workflow": ("Success", "Failed", "Cancel"),
}
FAILED_STATES = ("Failed", "Cancel")
SOURCES = ("url", "queue", "reconcile", "replay", "continuation")


def utc(value: Any) -> datetime | None:
    """A COS LastModified or an ISO stamp as an aware UTC datetime (None if unreadable)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    stamp: datetime | None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        from ci_callback.times import parse_time  # CI's own formats (+0800, space separator)

        stamp = parse_time(value)
    if stamp is None:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)  # COS stamps are UTC
    return stamp.astimezone(timezone.utc)


def is_terminal(kind: str, state: str | None) -> bool:
    terminal = TERMINAL.get(kind)
    return True if terminal is None else state in terminal  # moderation: every callback is final


# ---------------------------------------------------------------- key layouts


def id_prefix(archive_prefix: str, kind: str, callback_id: str) -> str:
    return keys.archive_prefix_of(archive_prefix, kind, callback_id)


def marker_id_prefix(marker_prefix: str, kind: str, callback_id: str) -> str:
    return keys.marker_prefix_of(marker_prefix, kind, callback_id)


def _decode(segment: str) -> str:
    from urllib.parse import unquote

    return unquote(segment)


@dataclass
class Listed:
    key: str
    modified: datetime | None


@dataclass
class ArchiveEntry:
    """One archived body (``<kind>/<id>/<state>-<sha16>.json``)."""

    key: str
    kind: str
    id: str
    state: str
    sha16: str
    modified: datetime | None
    document: dict[str, Any] | None = None  # read on demand


@dataclass
class Delivery:
    """One delivery: from its delivery record, or (older buckets) inferred from the archive."""

    received_at: datetime | None
    source: str
    request_id: str | None
    state: str | None
    sha256: str | None
    archive_key: str | None
    recorded: bool  # False: no per-delivery record; identical re-deliveries left no trace
    key: str | None = None


@dataclass
class Marker:
    state: str
    name: str  # "lease-1", "done", "checkpoint", …
    key: str
    modified: datetime | None
    body: dict[str, Any] | None = None


def parse_archive_key(archive_prefix: str, key: str) -> ArchiveEntry | None:
    rest = key[len(archive_prefix):] if key.startswith(archive_prefix) else None
    if rest is None:
        return None
    parts = rest.split("/")
    if len(parts) != 3 or parts[0] not in KINDS or not parts[2].endswith(".json"):
        return None  # delivery records and anything else under the inbox
    name = parts[2][: -len(".json")]
    state, _, sha16 = name.rpartition("-")
    if not state or not sha16:
        return None
    return ArchiveEntry(key, parts[0], _decode(parts[1]), _decode(state), sha16, None)


def parse_delivery_key(archive_prefix: str, key: str) -> tuple[str, str, Delivery] | None:
    """(kind, id, delivery) from a delivery record's key alone (``keys.delivery_key``)."""
    name = keys.parse_delivery_key(archive_prefix, key)
    if name is None:
        return None
    return name.kind, name.callback_id, Delivery(name.received_at, name.source, name.request_id, name.state,
                                                 None, None, True, key)


def parse_marker_key(marker_prefix: str, key: str) -> tuple[str, str, Marker] | None:
    rest = key[len(marker_prefix):] if key.startswith(marker_prefix) else None
    if rest is None:
        return None
    parts = rest.split("/")
    if len(parts) != 4 or parts[0] not in KINDS or not parts[3].endswith(".json"):
        return None
    return parts[0], _decode(parts[1]), Marker(_decode(parts[2]), parts[3][: -len(".json")], key, None)


# ---------------------------------------------------------------- the bucket


@dataclass
class Bucket:
    """A read-only view of the bucket holding the inbox, markers and index."""

    storage: Any  # ci_callback.storage.CosStorage
    name: str
    archive_prefix: str = "ci-inbox/"
    marker_prefix: str = "ci-markers/"
    index_prefix: str = "ci-index/"
    tag_prefix: str = "ci-"
    allowed_buckets: tuple[str, ...] = ()
    workers: int = 8
    errors: builtins.list[str] = field(default_factory=list, init=False)  # reads that failed (shown, not fatal)

    @classmethod
    def from_settings(cls, storage: Any, name: str, settings: Any) -> Bucket:
        return cls(storage, name, settings.archive_prefix, settings.marker_prefix, settings.index_prefix,
                   settings.tag_prefix, tuple(sorted(settings.allowed_buckets)))

    def list(self, prefix: str) -> builtins.list[Listed]:
        return [Listed(key, utc(modified)) for key, modified in self.storage.list_keys(self.name, prefix)]

    def get_json(self, key: str) -> dict[str, Any] | None:
        """The document, or None when absent; a read that fails (permissions, COS down after
        its retries) is noted in ``errors`` and read as absent, so one bad object does not
        end a report."""
        from ci_callback.errors import StorageError

        try:
            return self.storage.get_json(self.name, key)  # type: ignore[no-any-return]
        except StorageError as exc:
            self.errors.append(f"{key}: {exc}")
            return None

    def read_many(self, items: Iterable[T], read: Callable[[T], R],
                  advance: Callable[[int], None] | None = None) -> Iterator[tuple[T, R]]:
        """``read`` over items on a small pool (COS reads are round trips, not CPU)."""
        items = list(items)
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(items) or 1))) as pool:
            futures = [(item, pool.submit(read, item)) for item in items]
            for item, future in futures:
                result = future.result()
                if advance is not None:
                    advance(1)
                yield item, result

    # -- layouts of other records, read by their agreed keys --

    def failure_key(self, job_id: str) -> str:
        return keys.failure_key(self.index_prefix, job_id)

    @property
    def failures_prefix(self) -> str:
        return keys.failures_prefix(self.index_prefix)

    @property
    def sweeps_prefix(self) -> str:
        return f"{self.index_prefix}sweeps/"
