"""Business hours per queue: "Mon-Fri 08:00-20:00; Sat 09:00-14:00" or "always", in the queue's time zone."""
from __future__ import annotations

import re
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_RULE = re.compile(r"^(\w{3})(?:-(\w{3}))?\s+(\d{2}):(\d{2})-(\d{2}):(\d{2})$")

Window = tuple[int, time, time]  # weekday, opens, closes


def parse_hours(spec: str) -> list[Window] | None:
    """Parse an hours spec; None means always open. Raises ValueError naming the bad part."""
    if spec.strip().lower() in ("always", "24/7"):
        return None
    windows: list[Window] = []
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        match = _RULE.match(part.lower())
        if not match or match[1] not in DAYS or (match[2] and match[2] not in DAYS):
            raise ValueError(f"cannot read hours {part!r}: expected like 'Mon-Fri 08:00-20:00' or 'always'")
        first = DAYS.index(match[1])
        last = DAYS.index(match[2]) if match[2] else first
        opens, closes = time(int(match[3]), int(match[4])), time(int(match[5]), int(match[6]))
        if closes <= opens:
            raise ValueError(f"hours {part!r} close before they open")
        windows.extend((day, opens, closes) for day in range(first, last + 1))
    return windows


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)") from None
    return name


def is_open(spec: str, timezone: str, now: float) -> bool:
    """Whether a queue with these hours takes calls at the Unix time `now`."""
    windows = parse_hours(spec)
    if windows is None:
        return True
    local = datetime.fromtimestamp(now, ZoneInfo(timezone))
    return any(day == local.weekday() and opens <= local.time() < closes for day, opens, closes in windows)
