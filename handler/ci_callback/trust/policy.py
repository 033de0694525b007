"""The bucket and region policy, in one place.

Which buckets a callback may name (``CI_CALLBACK_ALLOWED_BUCKETS``), where our own
documents go (the index bucket, else the first bucket the callback names). Regions are
not decided here: the COS adapter has the one rule (``CosStorage.region_of``).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import ActionSkipped, HttpError
from ..model.models import Callback, JobCallback
from ..settings import Settings


def allowed(settings: Settings, bucket: str | None) -> bool:
    """May we touch BUCKET? An empty allow-list allows any bucket."""
    return bool(bucket) and (not settings.allowed_buckets or bucket in settings.allowed_buckets)


def named_buckets(callback: Callback) -> Iterator[str]:
    if callback.input.bucket:
        yield callback.input.bucket
    if isinstance(callback, JobCallback):
        for output in callback.outputs:
            if output.bucket:
                yield output.bucket


def authorize(callback: Callback, settings: Settings) -> None:
    """Raise HttpError 403 when the callback names a bucket outside the allow-list."""
    if not settings.allowed_buckets:
        return
    for bucket in named_buckets(callback):
        if bucket not in settings.allowed_buckets:
            raise HttpError(403, f"bucket {bucket[:63]} is not allowed")


def index_location(settings: Settings, *candidates: str | None) -> str:
    """The bucket our documents go to: the configured index bucket, else the first known one."""
    bucket = settings.index_bucket or next((b for b in candidates if b), None)
    if not bucket:
        raise ActionSkipped("no bucket to write the index to")
    if not allowed(settings, bucket) and not settings.index_bucket:
        raise ActionSkipped(f"bucket {bucket} is not in CI_CALLBACK_ALLOWED_BUCKETS")
    return bucket


def home_bucket(settings: Settings, callback: Callback) -> str | None:
    """Where the archive and markers of CALLBACK go, or None when no bucket is known."""
    outputs = [o.bucket for o in callback.outputs] if isinstance(callback, JobCallback) else []
    try:
        return index_location(settings, callback.input.bucket, *outputs)
    except ActionSkipped:
        return None


def named_regions(callback: Callback) -> Iterator[tuple[str | None, str | None]]:
    """(bucket, region) pairs as the callback states them, for the COS adapter's region rule
    (``CosStorage.learn_regions``): callers name buckets, never regions."""
    yield callback.input.bucket, callback.input.region
    if isinstance(callback, JobCallback):
        for output in callback.outputs:
            yield output.bucket, output.region


def rejects_bucket(settings: Settings) -> str | None:
    """Where queue records that are no callback are kept: the index bucket, else the one
    allowed bucket. None: they are logged only (no bucket is known to be ours)."""
    if settings.index_bucket:
        return settings.index_bucket
    if len(settings.allowed_buckets) == 1:
        return next(iter(settings.allowed_buckets))
    return None
