"""Handler types: a handler typed with its kind's callback class registers cleanly (mypy)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import ROOT

api = pytest.importorskip("mypy.api")

GOOD = textwrap.dedent(
    """
    from ci_callback import Callback, Invocation, JobCallback, ModerationCallback, Router, WorkflowCallback

    router = Router()

    @router.on_job("Transcode", state="Success")
    def job(callback: JobCallback, inv: Invocation) -> None:
        inv.record("job", outputs=len(callback.outputs))

    @router.on_workflow(state="Success")
    def run(callback: WorkflowCallback, inv: Invocation) -> None:
        inv.record("run", run_id=callback.run_id)

    @router.on_moderation("ReviewImage")
    def review(callback: ModerationCallback, inv: Invocation) -> None:
        inv.record("review", label=callback.label)

    @router.fallback
    def anything(callback: Callback, inv: Invocation) -> None:
        inv.record("other")

    reveal_type(job)
    """
)

WRONG = textwrap.dedent(
    """
    from ci_callback import Invocation, Router, WorkflowCallback

    @Router().on_job()
    def job(callback: WorkflowCallback, inv: Invocation) -> None: ...
    """
)


@pytest.fixture
def check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], tuple[str, int]]:
    """mypy --strict on a snippet, with the runtime package importable (not the project's file list)."""
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\n")
    monkeypatch.setenv("MYPYPATH", str(ROOT / "handler"))

    def run(code: str) -> tuple[str, int]:
        out, err, status = api.run(["--no-incremental", "--config-file", str(config), "-c", code])
        return out + err, status

    return run


def test_handlers_typed_with_their_callback_class_pass(check: Callable[[str], tuple[str, int]]) -> None:
    out, status = check(GOOD)
    assert status == 0 and "error:" not in out, out
    assert "def (callback: ci_callback.model.models.JobCallback" in out  # the decorator keeps the handler's type


def test_a_handler_for_another_kind_is_rejected(check: Callable[[str], tuple[str, int]]) -> None:
    out, status = check(WRONG)
    assert status == 1 and 'type variable "JobHandler"' in out, out
