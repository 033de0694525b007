"""Bounded cost: task progress, the pull-model fan-out, time budgets."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ci_callback import budget
from ci_callback.actions import pool as fanout
from ci_callback.checkpoint import Progress, continuation_event, pointer_of
from ci_callback.edge.triggers import is_continuation_event


def test_progress_hands_out_each_task_once_in_order() -> None:
    progress = Progress(5)
    taken = [progress.take() for _ in range(6)]
    assert taken == [0, 1, 2, 3, 4, None]


def test_progress_cursor_and_ahead_round_trip() -> None:
    progress = Progress(10)
    for _ in range(6):
        progress.take()
    for index in (0, 1, 3, 5):
        progress.finish(index, "tagged")
    assert progress.cursor == 2 and progress.ahead == {3, 5} and progress.done == 4
    progress.finish(2, "missing")
    assert progress.cursor == 4 and progress.ahead == {5}
    saved = progress.to_dict(index_tasks=1)
    again = Progress.from_dict(saved, 10)
    assert [again.take() for _ in range(7)] == [4, 6, 7, 8, 9, None, None]
    assert again.counts == {"tagged": 4, "missing": 1}


def test_progress_from_a_different_job_starts_over() -> None:
    assert Progress.from_dict({"total": 3, "cursor": 3}, 4).cursor == 0
    assert Progress.from_dict({"total": 4, "cursor": 9, "ahead": ["x", 2]}, 4).finished


def test_fanout_keeps_at_most_width_in_flight_and_never_one_future_per_task() -> None:
    progress = Progress(200)
    lock = threading.Lock()
    now = [0]
    peak = [0]

    def work(index: int) -> str:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.001)
        with lock:
            now[0] -= 1
        return "tagged"

    with ThreadPoolExecutor(8) as pool:
        submitted = []
        original = pool.submit

        def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
            submitted.append(1)
            return original(*args, **kwargs)

        pool.submit = counting  # type: ignore[method-assign]
        assert fanout.run(pool, 4, progress, work, lambda: True)
    assert peak[0] <= 4 and len(submitted) == 4 and progress.counts == {"tagged": 200}


def test_fanout_stops_taking_work_when_told_and_leaves_the_rest() -> None:
    progress = Progress(100)
    done = []

    def work(index: int) -> str:
        done.append(index)
        return "tagged"

    with ThreadPoolExecutor(4) as pool:
        assert not fanout.run(pool, 4, progress, work, lambda: len(done) < 10)
    assert 10 <= progress.done < 14 and not progress.finished


def test_fanout_raises_the_first_error_and_keeps_the_failed_task_to_do() -> None:
    progress = Progress(50)

    def work(index: int) -> str:
        if index == 7:
            raise OSError("boom")
        return "tagged"

    with ThreadPoolExecutor(3) as pool, pytest.raises(OSError):
        fanout.run(pool, 3, progress, work, lambda: True)
    assert not progress.is_done(7) and progress.cursor <= 7


def test_deadline_and_reserve() -> None:
    assert budget.deadline_of({"time_limit_in_ms": 4000}, 100.0) == pytest.approx(103.5)
    assert budget.deadline_of({"time_limit_in_ms": 600}, 0.0) == pytest.approx(0.3)
    assert budget.deadline_of({}, 0.0) is None
    assert budget.closing_reserve(103.5, 100.0, rtt=0.02) == pytest.approx(0.36)
    assert budget.closing_reserve(1.0, 0.0, rtt=1.0) == pytest.approx(0.4)  # capped to a share of the time
    assert not budget.may_start(time.monotonic() - 1)


def test_continuation_event_pointer_is_checked() -> None:
    event = continuation_event("b-1250000000", "ap-guangzhou", "ci-markers/job/j1/Success/checkpoint.json", 3, "job", "j1")
    assert is_continuation_event(event)
    pointer = pointer_of(event, "ci-markers/")
    assert pointer is not None and pointer.step == 3 and pointer.bucket == "b-1250000000"
    assert pointer_of(event, "other/") is None
    bad = continuation_event("b", None, "ci-markers/../ci-index/x/checkpoint.json", 2, "job", "j1")
    assert pointer_of(bad, "ci-markers/") is None
    assert not is_continuation_event({"body": "{}", "httpMethod": "POST"})
