"""Field readers for decoded CI documents, shared by the parser and the Tag results.

XML (via xmltodict) and JSON arrive in slightly different shapes: one element versus
a list, ``None`` versus ``""``, numbers as strings. These read both the same way and
never trust a field's type. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidCallback


def key(value: Any) -> str | None:
    """An object key, exactly as sent (leading and trailing spaces are part of a COS key)."""
    if isinstance(value, str):
        return value if value.strip() else None
    return text(value)


def text(value: Any) -> str | None:
    """A scalar as trimmed text; empty elements and empty strings become None."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):  # XML element with attributes: {"@a": .., "#text": ..}
        return text(value.get("#text"))
    if isinstance(value, list) and len(value) == 1:
        return text(value[0])
    return None


def integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value == value and abs(value) < 1e18 else None
    found = text(value)
    if found is None or len(found) > 40:
        return None
    try:
        return int(found)
    except ValueError:
        try:
            parsed = float(found)
        except ValueError:
            return None
        return int(parsed) if parsed == parsed and abs(parsed) < 1e18 else None


def number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value if value == value and abs(value) != float("inf") else None
    found = text(value)
    if found is None or len(found) > 40:
        return None
    try:
        return int(found)
    except ValueError:
        try:
            parsed = float(found)
        except ValueError:
            return None
        return parsed if parsed == parsed and abs(parsed) != float("inf") else None


def boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    found = text(value)
    if found is None:
        return None
    lowered = found.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    return None


def items(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def one(value: Any, what: str) -> Mapping[str, Any]:
    """A section that must be exactly one object (a one-element list is accepted)."""
    if isinstance(value, list):
        present = [v for v in value if v is not None]
        if len(present) != 1:
            raise InvalidCallback(f"{what} must hold exactly one entry, found {len(present)}")
        value = present[0]
    if not isinstance(value, dict):
        raise InvalidCallback(f"{what} is missing or not an object")
    return value


def etag(value: Any) -> str | None:
    found = text(value)
    return found.strip().strip('"') or None if found else None


def cos_headers(value: Any) -> dict[str, str]:
    """Key/Value lists (jobs, workflows) and plain maps (moderation) become one dict."""
    headers: dict[str, str] = {}
    if isinstance(value, dict) and "Key" not in value:
        for key, item in value.items():
            found = text(item)
            if isinstance(key, str) and found is not None:
                headers[key] = found
        return headers
    for item in items(value):
        if isinstance(item, dict):
            name = text(item.get("Key"))
            if name is not None:
                headers[name] = text(item.get("Value")) or ""
    return headers
