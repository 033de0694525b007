"""Continuations run locally the way SCF runs them: asynchronously, one invocation per
event, each with the context SCF would give it (request id, function name, namespace,
time limit), and retried after a failure (SCF retries async invocations twice).

``InProcessScf`` is what ``ci-callback serve --local`` and the demo use; ``capture_invokes``
hands every invoke to a function instead (the benchmarks run the chain themselves).
"""

from __future__ import annotations

import itertools
import json
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from ci_callback.adapters import scf as notify

Handler = Callable[[Any, Any], Any]


def capture_invokes(sink: Callable[[dict[str, Any]], None]) -> None:
    """Send every async invoke's event to SINK (None: back to the SCF API)."""
    counter = itertools.count(1)

    def invoke(function: str, namespace: str, qualifier: str | None, context: str) -> str:
        sink(json.loads(context))
        return f"local-invoke-{next(counter)}"

    notify.set_local_invoke(invoke)


def release_invokes() -> None:
    notify.set_local_invoke(None)


class InProcessScf:
    """This process as SCF: invokes of FUNCTION run HANDLER on a background thread, in order."""

    def __init__(self, handler: Handler, function: str = "ci-callback", namespace: str = "default",
                 time_limit_ms: int = 20000, retries: int = 2, retry_pause: float = 1.0) -> None:
        self.handler, self.function, self.namespace = handler, function, namespace
        self.time_limit_ms, self.retries, self.retry_pause = time_limit_ms, retries, retry_pause
        self.runs: list[dict[str, Any]] = []  # one per invocation run: status, seconds, error
        self.others: list[tuple[str, dict[str, Any]]] = []  # invokes of other functions (notify), not run
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._busy = threading.Event()
        self._thread: threading.Thread | None = None
        self._ids = itertools.count(1)

    def context(self) -> dict[str, Any]:
        return {"request_id": f"local-continuation-{next(self._ids)}", "function_name": self.function,
                "namespace": self.namespace, "time_limit_in_ms": self.time_limit_ms, "memory_limit_in_mb": 128}

    def start(self) -> InProcessScf:
        notify.set_local_invoke(self._invoke)
        self._thread = threading.Thread(target=self._run, name="local-scf", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        notify.set_local_invoke(None)
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def drain(self, timeout: float = 300.0) -> bool:
        """Wait until every queued invocation (and those they queued) ran; False on timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._queue.empty() and not self._busy.is_set():
                time.sleep(0.05)  # an invocation may be about to queue its successor
                if self._queue.empty() and not self._busy.is_set():
                    return True
            time.sleep(0.02)
        return False

    def _invoke(self, function: str, namespace: str, qualifier: str | None, context: str) -> str:
        event = json.loads(context)
        if function != self.function:
            self.others.append((function, event))
        else:
            self._busy.set()
            self._queue.put(event)
        return f"local-invoke-{len(self.runs) + self._queue.qsize()}"

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            self._busy.set()
            try:
                for attempt in range(self.retries + 1):
                    started = time.monotonic()
                    try:
                        answer = self.handler(event, self.context())
                    except Exception as exc:  # as SCF: a failed run is retried
                        self.runs.append({"status": "error", "error": str(exc), "attempt": attempt + 1,
                                          "seconds": time.monotonic() - started})
                        time.sleep(self.retry_pause)
                        continue
                    self.runs.append({"status": answer.get("statusCode") if isinstance(answer, dict) else None,
                                      "attempt": attempt + 1, "seconds": time.monotonic() - started})
                    break
            finally:
                if self._queue.empty():
                    self._busy.clear()
