"""Optional verification (``CI_CALLBACK_VERIFY_JOBS=true``): confirm a callback with CI.

The job or run must exist in CI's own record, with the same Tag, State and input
object. The query goes through cos-python-sdk-v5 with the function role's keys, so a
forged callback cannot pass unless CI itself reports the same job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..context import Invocation
from ..errors import NotFound, StorageError, VerificationFailed
from ..model.models import Callback, JobCallback, WorkflowCallback


def _first_record(value: Any) -> Mapping[str, Any]:
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, dict) else {}


def _same(what: str, claimed: str | None, recorded: Any) -> None:
    recorded = recorded if isinstance(recorded, str) else None
    if claimed and recorded and claimed != recorded:
        raise VerificationFailed(f"{what} is {claimed!r} in the callback but {recorded!r} in CI")
    if claimed and not recorded:
        raise VerificationFailed(f"CI reports no {what}")


def _query(inv: Invocation, method: str, bucket: str, **ids: str) -> Mapping[str, Any]:
    """Ask CI in the bucket's region (the COS adapter's one rule, ``CosStorage.region_of``).

    An unknown job is a 200 with ``NonExistJobIds`` (docs/tencent-facts.md), so a 404 is no "not
    found": most likely the bucket lives in another region. It is kept transient, so the
    callback is archived and answered 503 rather than rejected.
    """
    storage = inv.services.storage
    try:
        return storage.query_ci(method, Bucket=bucket, **ids)
    except NotFound as exc:
        where = storage.region_of(bucket)
        raise StorageError(f"{exc}: is {bucket} in {where}? (CI_CALLBACK_BUCKET_REGIONS)", status=404,
                           code="NoSuchBucket", transient=True) from None


def verify(callback: Callback, inv: Invocation) -> None:
    bucket = callback.input.bucket
    if isinstance(callback, JobCallback):
        if not bucket:
            raise VerificationFailed("the callback names no input bucket to query")
        method = "ci_get_media_pic_jobs" if callback.tag == "PicProcess" else "ci_get_media_jobs"
        response = _query(inv, method, bucket, JobIDs=callback.job_id)
        record = _first_record(response.get("JobsDetail"))
        if not record or record.get("JobId") != callback.job_id:
            raise VerificationFailed(f"job {callback.job_id} does not exist in CI")
        _same("Tag", callback.tag, record.get("Tag"))
        _same("State", callback.state, record.get("State"))
        _same("input object", callback.input.key, _first_record(record.get("Input")).get("Object"))
    elif isinstance(callback, WorkflowCallback):
        if not bucket:
            raise VerificationFailed("the callback names no input bucket to query")
        response = _query(inv, "ci_get_workflowexecution", bucket, RunId=callback.run_id)
        record = _first_record(response.get("WorkflowExecution"))
        if not record or record.get("RunId") != callback.run_id:
            raise VerificationFailed(f"workflow run {callback.run_id} does not exist in CI")
        _same("State", callback.state, record.get("State"))
        _same("input object", callback.input.key, record.get("Object"))
    else:
        inv.record("verify-skipped", reason="moderation callbacks are not verified")
        return
    inv.record("verify", id=callback.id)
