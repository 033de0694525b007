"""Many small tasks on a bounded pool: ``width`` workers pull tasks in order, never one
future per task up front, so memory stays flat however many outputs a job has, and at
most ``width`` tasks are in flight when the deadline says stop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor

from ..checkpoint import Progress
from ..errors import OutOfTime

Work = Callable[[int], str]


def run(pool: Executor, width: int, progress: Progress, work: Work, may_start: Callable[[], bool]) -> bool:
    """Do every unfinished task of PROGRESS with WORK(index) -> outcome; True when all are done.

    A worker takes the next task only while ``may_start()`` holds and nothing failed; a
    task that runs out of time (``OutOfTime``) stops its worker quietly. The first error
    is raised once every worker has stopped; the failed task stays unfinished in PROGRESS.
    """
    errors: list[BaseException] = []
    failed = threading.Event()

    def drain() -> None:
        while not failed.is_set() and may_start():
            index = progress.take()
            if index is None:
                return
            try:
                outcome = work(index)
            except OutOfTime:  # the deadline, not a failure: the task stays to do (never finished)
                return
            except BaseException as exc:  # noqa: B036 - handed to the caller below
                errors.append(exc)
                failed.set()
                return
            progress.finish(index, outcome)

    remaining = progress.total - progress.done
    workers = [pool.submit(drain) for _ in range(max(0, min(width, remaining)))]
    for worker in workers:
        worker.result()
    if errors:
        raise errors[0]
    return progress.finished


