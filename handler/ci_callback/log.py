"""One JSON object per line on stdout: CLS parses single-line JSON into fields."""

from __future__ import annotations

import json
import sys
import time
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a cold start ~3 ms
    from typing import Any, Optional, TextIO

LEVELS = {"DEBUG": 10, "INFO": 20, "WARN": 30, "WARNING": 30, "ERROR": 40}
_threshold = 20
_stream: Optional[TextIO] = None  # None: whatever sys.stdout is at the time


def set_stream(stream: Optional[TextIO]) -> None:
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
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
    if not line.isascii():
        # Lone surrogates (a "\ud800" escape in an untrusted JSON body) cannot be written
        # as UTF-8; write them back as the JSON escapes they came from instead of raising.
        line = line.encode("utf-8", "backslashreplace").decode("utf-8")
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
