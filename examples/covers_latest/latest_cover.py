"""SmartCover succeeded: write ``covers-latest/<input key>.json``, the covers CI picked last.

One small document per input, overwritten by each new SmartCover job, so a page can show the
current covers of a video without listing the index.
"""

from ci_callback import Invocation, JobCallback, SmartCoverResult
from ci_callback.app import router

PREFIX = "covers-latest/"


@router.on_job("SmartCover", state="Success")
def latest_cover(callback: JobCallback, inv: Invocation) -> None:
    if not isinstance(callback.details, SmartCoverResult) or not callback.input.key or not callback.input.bucket:
        return  # nothing to point at: the built-in index still records the job
    key = f"{PREFIX}{callback.input.key}.json"
    document = {"job_id": callback.job_id, "input": callback.input.key,
                "covers": [cover.key for cover in callback.details.covers]}
    inv.services.storage.put_json(callback.input.bucket, key, document)  # the adapter knows its region
    inv.record("latest_cover", key=key)
