"""Opening hours: reading the many ways real files write them, and saying them to people.

HSDS 3.0 keeps weekly hours as RFC 5545-ish rows (``freq=WEEKLY``,
``byday="MO,TU"``, ``opens_at``/``closes_at``). Older exports write
"Monday - Friday" and "8:30AM"; :func:`parse_days` and :func:`parse_time` turn
those into the HSDS form, or None when they cannot be read (never a guess).

Example::

    >>> parse_days("Monday, Wed-Thur")
    ['MO', 'WE', 'TH']
    >>> parse_time("8:30PM")
    '20:30'
    >>> hours_text([{"byday": "MO,TU,WE,TH,FR", "opens_at": "09:00", "closes_at": "17:00"}])
    'Mon-Fri 9:00 AM-5:00 PM'
"""
from __future__ import annotations

import re

DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
DAY_NAMES = {"MO": "Mon", "TU": "Tue", "WE": "Wed", "TH": "Thu", "FR": "Fri", "SA": "Sat", "SU": "Sun"}
_DAY_WORDS = {
    "mo": "MO", "mon": "MO", "monday": "MO", "tu": "TU", "tue": "TU", "tues": "TU", "tuesday": "TU",
    "we": "WE", "wed": "WE", "weds": "WE", "wednesday": "WE", "th": "TH", "thu": "TH", "thur": "TH",
    "thurs": "TH", "thursday": "TH", "fr": "FR", "fri": "FR", "friday": "FR", "sa": "SA", "sat": "SA",
    "saturday": "SA", "su": "SU", "sun": "SU", "sunday": "SU",
}
_TIME = re.compile(r"^\s*(\d{1,2})(?::(\d{2}))?(?::\d{2})?\s*([ap])?\.?\s*m?\.?\s*$", re.I)


def parse_days(text: str | None) -> list[str] | None:
    """Day codes in week order from "Monday - Friday", "MO,TU", "Weekdays"...; None if unreadable."""
    if not text or not text.strip():
        return None
    raw = text.strip().lower()
    if raw in ("weekdays", "weekday"):
        return DAYS[:5]
    if raw in ("daily", "every day", "7 days", "weekends and weekdays"):
        return list(DAYS)
    if raw in ("weekends", "weekend"):
        return ["SA", "SU"]
    found: set[str] = set()
    for part in re.split(r"[,;/&]|\band\b", raw):
        part = part.strip()
        if not part:
            continue
        ends = [p.strip().rstrip(".") for p in re.split(r"\s*(?:-|–|—|\bto\b|\bthrough\b|\bthru\b)\s*", part) if p.strip()]
        codes = [_DAY_WORDS.get(e) for e in ends]
        if not codes or any(c is None for c in codes):
            return None
        if len(codes) == 1:
            found.add(codes[0])
        elif len(codes) == 2:
            a, b = DAYS.index(codes[0]), DAYS.index(codes[1])
            span = range(a, b + 1) if a <= b else list(range(a, 7)) + list(range(0, b + 1))
            found.update(DAYS[i] for i in span)
        else:
            return None
    return [d for d in DAYS if d in found] or None


def parse_time(text: str | None) -> str | None:
    """"HH:MM" (24 h) from "8:30AM", "17:00", "9 pm", "10:00:00"; None if unreadable."""
    if not text or not str(text).strip():
        return None
    m = _TIME.match(str(text))
    if not m:
        return None
    hour, minute, half = int(m.group(1)), int(m.group(2) or 0), (m.group(3) or "").lower()
    if half == "p" and hour < 12:
        hour += 12
    elif half == "a" and hour == 12:
        hour = 0
    if hour == 24 and minute == 0:
        return "23:59"
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


def _clock(hhmm: str) -> str:
    hour, minute = int(hhmm[:2]), int(hhmm[3:5])
    suffix = "AM" if hour < 12 else "PM"
    return f"{(hour % 12) or 12}:{minute:02d} {suffix}"


def _day_span(days: list[str]) -> str:
    idx = sorted(DAYS.index(d) for d in days)
    if len(idx) > 2 and idx == list(range(idx[0], idx[-1] + 1)):
        return f"{DAY_NAMES[DAYS[idx[0]]]}-{DAY_NAMES[DAYS[idx[-1]]]}"
    return ", ".join(DAY_NAMES[DAYS[i]] for i in idx)


def weekly_hours(schedules: list[dict]) -> list[tuple[str, str, str]]:
    """(day, opens, closes) for every weekly row with readable hours."""
    hours = []
    for s in schedules:
        if not s.get("opens_at") or not s.get("closes_at"):
            continue
        if s.get("freq") not in (None, "", "WEEKLY"):
            continue
        days = [d for d in (s.get("byday") or "").split(",") if d in DAYS] or []
        for day in days:
            hours.append((day, s["opens_at"][:5], s["closes_at"][:5]))
    return sorted(set(hours), key=lambda h: (DAYS.index(h[0]), h[1]))


def hours_text(schedules: list[dict]) -> str:
    """Opening hours in one line for people (SMS, print); "" when unknown."""
    by_time: dict[tuple[str, str], list[str]] = {}
    for day, opens, closes in weekly_hours(schedules):
        by_time.setdefault((opens, closes), []).append(day)
    parts = sorted(by_time.items(), key=lambda kv: DAYS.index(kv[1][0]))
    text = "; ".join(f"{_day_span(days)} {_clock(o)}-{_clock(c)}" for (o, c), days in parts)
    if not text:
        text = "; ".join(s["description"].strip() for s in schedules if (s.get("description") or "").strip())
    return text
