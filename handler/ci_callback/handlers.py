"""Built-in handlers, registered on the default router.

Each decides what a callback means and runs the matching actions; every action is
recorded on the invocation so the response and the log line say what happened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import log
from .context import Invocation
from .router import Router

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from .models import JobCallback, ModerationCallback, WorkflowCallback

# ``actions`` (the COS work) is imported by the handlers that act, not at import time:
# a cold start that only refuses a request never loads it.

FAILED_STATES = ("Failed", "Cancel")


def register(router: Router) -> Router:
    router.on_job(state="Success")(job_succeeded)
    for state in FAILED_STATES:
        router.on_job(state=state)(job_failed)
    router.on_workflow()(workflow_finished)
    router.on_moderation()(moderation_finished)
    router.fallback(nothing_to_do)
    return router


def job_succeeded(callback: JobCallback, inv: Invocation) -> None:
    from . import actions  # noqa: PLC0415

    actions.index_and_tag_job(callback, inv)


def job_failed(callback: JobCallback, inv: Invocation) -> None:
    log.error(
        "CI job did not succeed",
        request_id=inv.request_id,
        job_id=callback.job_id,
        tag=callback.tag,
        state=callback.state,
        code=callback.code,
        message=callback.message,
        input=callback.input.to_dict(),
    )
    from . import actions  # noqa: PLC0415

    actions.record_failure(callback, inv)


def workflow_finished(callback: WorkflowCallback, inv: Invocation) -> None:
    from . import actions  # noqa: PLC0415

    actions.record_run(callback, inv)


def moderation_finished(callback: ModerationCallback, inv: Invocation) -> None:
    if callback.is_test:
        inv.record("console-test")
        return
    from . import actions  # noqa: PLC0415

    actions.record_review(callback, inv)


def nothing_to_do(callback, inv: Invocation) -> None:  # type: ignore[no-untyped-def]
    inv.record("nothing-to-do", state=callback.state)
