"""Long runs with progress and a clean Ctrl-C: replay and reconcile.

Ctrl-C once: the callback in flight finishes (its done marker is written), then the run
stops and reports what it did; nothing is half-written (the sweep also keeps its cursor
and writes its summary). Ctrl-C twice: the in-flight callback is abandoned; the pipeline
releases its lease on the way out, and its writes are idempotent, so re-running the same
command is safe either way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO, cast

from .progress import Interrupt, Progress


@dataclass
class Run:
    results: list[Any] = field(default_factory=list)
    selected: int = 0
    interrupted: bool = False


def collect_keys(selected: Iterable[str], progress: Progress, what: str = "selecting archived callbacks") -> list[str]:
    progress.start(what, None)
    keys = []
    for key in selected:
        keys.append(key)
        progress.advance()
    return keys


def each_with_progress(items: list[str], work: Callable[[str], list[Any]], progress: Progress,
                       what: str = "replaying") -> Run:
    """Run ``work`` on each item, one at a time, stopping between items on Ctrl-C."""
    run = Run(selected=len(items))
    with Interrupt(progress) as interrupt:  # before the phase line: a Ctrl-C from then on is graceful
        progress.start(what, len(items))
        for item in items:
            if interrupt.requested:
                run.interrupted = True
                break
            run.results.extend(work(item))
            progress.advance()
    progress.finish()
    return run


def replay_keys(storage: Any, bucket: str, settings: Any, keys: list[str], force: bool,
                progress: Progress | None = None) -> Run:
    from ci_callback.app import replay

    progress = progress or Progress.quiet()
    return each_with_progress(keys, lambda key: replay(storage, bucket, settings, [key], force=force), progress)


# ---------------------------------------------------------------- reconcile: the sweep, from a laptop


class _LogTee:
    """The log stream during a sweep: every line passes on (above a live bar), and each
    record the sweep drives through the pipeline (one "callback" line each) advances it."""

    def __init__(self, progress: Progress, stream: TextIO) -> None:
        self.progress = progress
        self.stream = stream
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            if self.progress.live:
                self.progress.note(line)
            else:
                self.stream.write(line + "\n")
            if '"msg":"callback"' in line:
                self.progress.advance()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def reconcile_once(event: dict[str, Any], context: dict[str, Any], progress: Progress,
                   stream: TextIO | None = None) -> tuple[dict[str, Any], bool]:
    """Run the timer's sweep once, as SCF would, with progress (records driven, rate).

    Ctrl-C once makes the sweep behave as if its deadline had come: it finishes the record
    in flight, starts no other, keeps its cursor in COS and writes its summary, so the next
    run resumes. Ctrl-C twice abandons the record in flight (its lease is released).
    Returns (the sweep's answer, interrupted).
    """
    import time

    from ci_callback import log
    from ci_callback.app import default_router
    from ci_callback.context import Invocation
    from ci_callback.reconcile import run as reconcile
    from ci_callback.settings import get_settings

    settings = get_settings()
    log.set_level(settings.log_level)
    limit = context.get("time_limit_in_ms")
    deadline = time.monotonic() + float(limit) / 1000 - 0.5 if limit else None  # SCF's margin, as the entry keeps
    inv = Invocation(settings=settings, deadline=deadline, source="reconcile",
                     request_id=str(context.get("request_id") or "cli"))

    def stop_soon() -> None:
        # As if the deadline had come: run_sweep starts no new work with less than RESERVE_SECONDS
        # left, and there is still that much for the record in flight, the cursor and the summary.
        soon = time.monotonic() + reconcile.RESERVE_SECONDS - 0.01
        inv.deadline = soon if inv.deadline is None else min(inv.deadline, soon)

    progress.start("reconcile: records driven through the pipeline", None)
    log.set_stream(cast(TextIO, _LogTee(progress, stream or sys.stderr)))  # write() and flush() are all it uses
    try:
        with Interrupt(progress, on_first=stop_soon,
                       message="interrupted: finishing the record in flight, then keeping the cursor "
                               "(Ctrl-C again to abort now)") as interrupt:
            result = reconcile.handle_timer(event, inv, default_router())
    finally:
        log.set_stream(stream or sys.stderr)
        progress.finish()
    return result, interrupt.requested
