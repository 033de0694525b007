"""Long runs with progress and a clean Ctrl-C: replay (and, the same way, reconcile).

Ctrl-C once: the callback in flight finishes (its done marker is written), then the run
stops and reports what it did; nothing is half-written. Ctrl-C twice: the in-flight
callback is abandoned; the pipeline releases its lease on the way out, and its
writes are idempotent, so re-running the same command is safe either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, List, Optional

from .progress import Interrupt, Progress


@dataclass
class Run:
    results: List[Any] = field(default_factory=list)
    selected: int = 0
    interrupted: bool = False


def collect_keys(selected: Iterable[str], progress: Progress, what: str = "selecting archived callbacks") -> List[str]:
    progress.start(what, None)
    keys = []
    for key in selected:
        keys.append(key)
        progress.advance()
    return keys


def each_with_progress(items: List[str], work: Callable[[str], List[Any]], progress: Progress,
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


def replay_keys(storage: Any, bucket: str, settings: Any, keys: List[str], force: bool,
                progress: Optional[Progress] = None) -> Run:
    from ci_callback.app import replay

    progress = progress or Progress.quiet()
    return each_with_progress(keys, lambda key: replay(storage, bucket, settings, [key], force=force), progress)
