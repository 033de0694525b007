"""One JSON object per line on stdout: CLS parses single-line JSON into fields."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from . import jsonsafe

LEVELS = {"DEBUG": 10, "INFO": 20, "WARN": 30, "WARNING": 30, "ERROR": 40}
_threshold = 20
_stream: TextIO | None = None  # None: whatever sys.stdout is at the time


def set_stream(stream: TextIO | None) -> None:
    """Send log lines elsewhere (the CLI keeps stdout for its own JSON)."""
    global _stream
    _stream = stream


def set_level(name: str) -> None:
    global _threshold
    _threshold = LEVELS.get(name.upper(), 20)


def log(level: str, message: str, /, **fields: Any) -> None:
    if LEVELS.get(level, 20) < _threshold:
        return
    record = {"level": level, "msg": message, "ts": round(time.time(), 3)}
    record.update((k, v) for k, v in fields.items() if v is not None)
    line = jsonsafe.dumps(record)
    if not line.isascii():
        # One record, one line: characters that readers treat as line breaks stay escaped.
        line = line.replace("\x85", "\\u0085").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    (_stream or sys.stdout).write(line + "\n")


def debug(message: str, /, **fields: Any) -> None:
    log("DEBUG", message, **fields)


def info(message: str, /, **fields: Any) -> None:
    log("INFO", message, **fields)


def warn(message: str, /, **fields: Any) -> None:
    log("WARN", message, **fields)


def error(message: str, /, **fields: Any) -> None:
    log("ERROR", message, **fields)


def unhandled(exc: BaseException, /, **fields: Any) -> None:
    """An ERROR line for a bug, with its trace: the one way every entry reports one."""
    import traceback  # only bugs pay for it

    error("unhandled error", error_type=type(exc).__name__,
          trace="".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=8)), **fields)
