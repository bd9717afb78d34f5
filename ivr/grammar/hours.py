"""Business hours per queue: "Mon-Fri 08:00-20:00; Sat 09:00-14:00" or "always", in the queue's time zone, closed
on the public holidays of a region ("US-NY", "DE-BY", via the holidays library) and on special closure days."""
from __future__ import annotations

import functools
import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

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


@functools.cache
def _calendar(region: str, language: str) -> holidays.HolidayBase:
    country, _, subdivision = region.partition("-")
    calendar = holidays.country_holidays(country, subdiv=subdivision or None)
    known = calendar.supported_languages
    chosen = next((code for code in known if code.split("_")[0] == language), None)
    return holidays.country_holidays(country, subdiv=subdivision or None, language=chosen) if chosen else calendar


def check_region(region: str | None) -> str | None:
    """A holiday region is a country code with an optional subdivision: "US", "US-NY", "DE-BY"."""
    if region is not None:
        try:
            _calendar(region, "en")
        except NotImplementedError as exc:
            raise ValueError(f"unknown holiday region {region!r}: {exc}") from None
    return region


def closed_all_day(region: str | None, closures: dict[date, str], timezone: str, now: float,
                   language: str) -> str | None:
    """Why a queue takes no calls today in its time zone: a special closure or a public holiday (its name in the
    hotline's language when the library knows it), or None on an ordinary day."""
    today = datetime.fromtimestamp(now, ZoneInfo(timezone)).date()
    if today in closures:
        return closures[today]
    return _calendar(region, language).get(today) if region else None


def is_open(spec: str, timezone: str, now: float) -> bool:
    """Whether a queue with these hours takes calls at the Unix time `now`."""
    windows = parse_hours(spec)
    if windows is None:
        return True
    local = datetime.fromtimestamp(now, ZoneInfo(timezone))
    return any(day == local.weekday() and opens <= local.time() < closes for day, opens, closes in windows)


def _clock(moment: time, language: str) -> str:
    """08:00 → "8 AM" / "8"; 20:30 → "8:30 PM" / "20:30" (German hours end with "Uhr" once per range)."""
    if language == "de":
        return f"{moment.hour}" if moment.minute == 0 else f"{moment.hour}:{moment.minute:02d}"
    hour = moment.hour % 12 or 12
    suffix = "AM" if moment.hour < 12 else "PM"
    return f"{hour} {suffix}" if moment.minute == 0 else f"{hour}:{moment.minute:02d} {suffix}"


def spoken_hours(spec: str, timezone: str, locale: str, days: tuple[str, ...]) -> str:
    """Opening hours the way a person says them: "Monday to Friday from 8 AM to 8 PM and Saturday from 9 AM to
    2 PM, New York time" / "Montag bis Freitag von 8 bis 20 Uhr und Samstag von 9 bis 14 Uhr, Zeitzone Berlin"."""
    windows = parse_hours(spec)
    language = locale[:2]
    if windows is None:
        return "rund um die Uhr" if language == "de" else "around the clock"
    groups: list[tuple[int, int, time, time]] = []  # first day, last day, opens, closes
    for day, opens, closes in windows:
        if groups and groups[-1][1] == day - 1 and groups[-1][2:] == (opens, closes):
            groups[-1] = (groups[-1][0], day, opens, closes)
        else:
            groups.append((day, day, opens, closes))
    parts = []
    for first, last, opens, closes in groups:
        span = days[first] if first == last else f"{days[first]} {'bis' if language == 'de' else 'to'} {days[last]}"
        if language == "de":
            parts.append(f"{span} von {_clock(opens, 'de')} bis {_clock(closes, 'de')} Uhr")
        else:
            parts.append(f"{span} from {_clock(opens, 'en')} to {_clock(closes, 'en')}")
    place = timezone.rsplit("/", 1)[-1].replace("_", " ")
    if language == "de":
        return f"{' und '.join(parts)}, Zeitzone {place}"
    return f"{' and '.join(parts)}, {place} time"
