"""Built-in handlers, registered on the default router.

Each decides what a callback means and runs the matching actions; every action is
recorded on the invocation so the response and the log line say what happened.
"""

from __future__ import annotations

from .. import log
from ..actions import builtin as actions
from ..context import Invocation
from ..model.models import Callback, JobCallback, ModerationCallback, WorkflowCallback
from .router import Router

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
    actions.record_failure(callback, inv)


def workflow_finished(callback: WorkflowCallback, inv: Invocation) -> None:
    actions.record_run(callback, inv)


def moderation_finished(callback: ModerationCallback, inv: Invocation) -> None:
    if callback.is_test:
        inv.record("console-test")
        return
    actions.record_review(callback, inv)


def nothing_to_do(callback: Callback, inv: Invocation) -> None:
    inv.record("nothing-to-do", state=callback.state)
