"""The one JSON encoder for what we send out (responses, log lines): always valid UTF-8."""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any) -> str:
    """Compact JSON, non-ASCII kept readable, unknown types as ``str()``.

    Lone surrogates (from an untrusted ``\\ud800`` escape) cannot be written as UTF-8:
    they go back to being the JSON escapes they came from, which read as the same string.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")
