"""Progress for long runs (replay, reconcile, report): items done of items known, rate, time left.

On a terminal it is a live ``rich`` bar on stderr; when stdout or stderr is not a
terminal (a pipe, a file, CI) it is a plain line every few seconds, with no control
characters. ``Interrupt`` makes Ctrl-C stop between items, never inside one.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any, TextIO


def interactive(stdout: TextIO | None = None, stderr: TextIO | None = None) -> bool:
    """A live display only when both stdout and stderr are terminals."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    return all(bool(getattr(s, "isatty", lambda: False)()) for s in (out, err))


def rate_text(done: int, total: int | None, seconds: float) -> str:
    rate = done / seconds if seconds > 0 else 0.0
    text = f"{done}/{total}" if total is not None else f"{done}"
    if total:
        text += f" ({100 * done // total}%)"
    text += f", {rate:.1f}/s"
    if total is not None and rate > 0 and done < total:
        text += f", ~{_duration((total - done) / rate)} left"
    return text


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """One run made of phases (``start``), each with a known or unknown total."""

    def __init__(self, stream: TextIO | None = None, live: bool | None = None, interval: float = 2.0,
                 enabled: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream or sys.stderr
        self.live = interactive(stderr=self.stream) if live is None else live
        self.interval = interval
        self.enabled = enabled
        self.clock = clock
        self.description = ""
        self.total: int | None = None
        self.done = 0
        self._started = clock()
        self._last_line = 0.0
        self._lock = threading.Lock()
        self._rich: Any = None
        self._task: Any = None

    @classmethod
    def quiet(cls) -> Progress:
        return cls(enabled=False, live=False)

    # -- phases --

    def start(self, description: str, total: int | None) -> None:
        if not self.enabled:
            return
        self._end_phase()
        with self._lock:
            self.description, self.total, self.done = description, total, 0
            self._started = self._last_line = self.clock()
        if self.live:
            self._ensure_rich()
            self._task = self._rich.add_task(description, total=total)

    def set_total(self, total: int | None) -> None:
        """More items became known (a listing that pages on)."""
        with self._lock:
            self.total = total
        if self.live and self._task is not None:
            self._rich.update(self._task, total=total)

    def advance(self, n: int = 1) -> None:
        if not self.enabled:
            return
        with self._lock:
            self.done += n
            now = self.clock()
            due = now - self._last_line >= self.interval
            if due:
                self._last_line = now
        if self.live:
            self._rich.advance(self._task, n)
        elif due:
            self._line()

    def finish(self) -> None:
        if not self.enabled:
            return
        self._end_phase()
        if self._rich is not None:
            self._rich.stop()
            self._rich = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.finish()

    # -- output --

    def _line(self) -> None:
        seconds = self.clock() - self._started
        self.stream.write(f"{self.description}: {rate_text(self.done, self.total, seconds)}\n")
        self.stream.flush()

    def _end_phase(self) -> None:
        if not self.description:
            return
        if self.live and self._task is not None:
            self._rich.update(self._task, completed=self.done, total=self.total if self.total is not None else self.done)
            self._task = None
        elif not self.live:
            seconds = self.clock() - self._started
            self.stream.write(f"{self.description}: done, {rate_text(self.done, self.total, seconds)}"
                              f" in {_duration(seconds)}\n")
            self.stream.flush()
        self.description = ""

    def _ensure_rich(self) -> None:
        if self._rich is not None:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        class Rate(TextColumn):
            def __init__(self) -> None:
                super().__init__("")

            def render(self, task: Any) -> Any:
                from rich.text import Text

                speed = task.finished_speed or task.speed
                return Text(f"{speed:.1f}/s" if speed else "–/s")

        self._rich = RichProgress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TaskProgressColumn(), Rate(), TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
            console=Console(file=self.stream), transient=False,
        )
        self._rich.start()

    def note(self, text: str) -> None:
        """A line above the live bar (or a plain line)."""
        if self.live and self._rich is not None:
            self._rich.console.print(text, markup=False, highlight=False)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()


class Interrupt:
    """Ctrl-C asks the loop to stop after the item in flight; a second Ctrl-C aborts now.

    ``with Interrupt(progress) as stop: for item in items: if stop.requested: break; ...``.
    Installed only in the main thread (signal handlers can be set nowhere else).
    """

    def __init__(self, progress: Progress | None = None, on_first: Callable[[], None] | None = None,
                 message: str = "interrupted: finishing the item in flight, then stopping (Ctrl-C again to abort now)",
                 ) -> None:
        self.progress = progress
        self.on_first = on_first  # for work that stops by itself once told (the sweep's deadline)
        self.message = message
        self.requested = False
        self._previous: Any = None

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self.on_first is not None:
            self.on_first()
        message = self.message
        if self.progress is not None and self.progress.enabled:
            self.progress.note(message)
        else:
            sys.stderr.write(message + "\n")

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
