"""Parse the three timestamp formats CI uses into timezone-aware datetimes."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

# 2022-06-30T15:29:42+0800, 2021-09-14 15:00:26+0800, 2022-08-03T18:45:50+08:00, …Z
_STAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"\s*(?:(Z)|([+-])(\d{2}):?(\d{2}))?"
)
# CI runs on Beijing time; a stamp without an offset is read as +08:00.
BEIJING = timezone(timedelta(hours=8))
_ZONES: dict[tuple[str, str, str], timezone] = {}


def _zone(sign: str, hours: str, minutes: str) -> timezone:
    key = (sign, hours, minutes)
    zone = _ZONES.get(key)
    if zone is None:
        delta = timedelta(hours=int(hours), minutes=int(minutes))
        zone = timezone(-delta if sign == "-" else delta)
        _ZONES[key] = zone
    return zone


def parse_time(value: object, naive: timezone = BEIJING) -> datetime | None:
    """Return an aware datetime, or None for empty, ``-`` or unreadable values.

    A stamp without an offset is read in NAIVE's zone: CI's are Beijing time.
    """
    if not isinstance(value, str):
        return None
    match = _STAMP.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, oh, om = match.groups()
    if zulu:
        tz = timezone.utc
    elif sign:
        if int(oh) > 23 or int(om) > 59:
            return None
        tz = _zone(sign, oh, om)
    else:
        tz = naive
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)
    except ValueError:
        return None


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
