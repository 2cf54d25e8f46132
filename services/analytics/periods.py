"""Report periods in a school's local days.

Counters are keyed by the school's local day (``occurred_on`` is computed by
referrals in the school's time zone), so periods are plain date ranges; only
"today" depends on the time zone, and it is the school's today, not the
server's.

School calendar: a school year runs 1 July to 30 June; its two semesters are
July–December and January–June.

Example::

    >>> resolve("month", anchor=date(2026, 11, 28))
    Period(kind='month', start=date(2026, 11, 1), end=date(2026, 11, 30))
    >>> _.previous()
    Period(kind='month', start=date(2026, 10, 1), end=date(2026, 10, 31))
"""
from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from weintervene.errors import BadRequest

PERIODS = ("week", "month", "semester", "school_year", "custom")
SCHOOL_YEAR_START_MONTH = 7
MAX_CUSTOM_DAYS = 3 * 366


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def local_today(tz_name: str | None, now: datetime | None = None) -> date:
    """Today in ``tz_name`` (UTC when unknown or unset)."""
    now = now or utcnow()
    try:
        zone = ZoneInfo(tz_name) if tz_name else timezone.utc
    except (ZoneInfoNotFoundError, ValueError):
        zone = timezone.utc
    return now.astimezone(zone).date()


def _month_start(day: date, months_back: int = 0) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def _month_end(start: date) -> date:
    return _month_start(start, -1) - timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class Period:
    kind: str
    start: date  # inclusive
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> "Period":
        """The period just before, of the same kind (same length for custom)."""
        if self.kind == "week":
            return Period("week", self.start - timedelta(days=7), self.start - timedelta(days=1))
        if self.kind == "month":
            start = _month_start(self.start, 1)
            return Period("month", start, _month_end(start))
        if self.kind in ("semester", "school_year"):
            months = 6 if self.kind == "semester" else 12
            start = _month_start(self.start, months)
            return Period(self.kind, start, _month_start(start, -months) - timedelta(days=1))
        return Period("custom", self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def bucket(self) -> str:
        """The trend granularity that keeps a chart readable: day, week or month."""
        if self.days <= 62:
            return "day"
        if self.days <= 200:
            return "week"
        return "month"

    def bucket_of(self, day: date) -> date:
        kind = self.bucket()
        if kind == "day":
            return day
        if kind == "week":
            return day - timedelta(days=day.weekday())
        return day.replace(day=1)

    def buckets(self) -> list[date]:
        """Every bucket start in the period, in order (empty buckets included)."""
        seen, day = [], self.start
        while day <= self.end:
            b = self.bucket_of(day)
            if not seen or seen[-1] != b:
                seen.append(b)
            day += timedelta(days=1)
        return seen

    def to_dict(self) -> dict:
        return {"kind": self.kind, "from": self.start.isoformat(), "to": self.end.isoformat()}


def resolve(kind: str, anchor: date, start: date | None = None, end: date | None = None) -> Period:
    """The period of ``kind`` containing ``anchor`` (custom: ``start``..``end``)."""
    if kind == "custom":
        if start is None or end is None:
            raise BadRequest("A custom period needs from and to.", code="invalid_period",
                             details={"from": ["Required for a custom period."]})
        if start > end:
            raise BadRequest("from is after to.", code="invalid_period", details={"from": ["After to."]})
        if (end - start).days + 1 > MAX_CUSTOM_DAYS:
            raise BadRequest("A custom period is at most three years.", code="invalid_period")
        return Period("custom", start, end)
    if kind == "week":
        first = anchor - timedelta(days=anchor.weekday())
        return Period("week", first, first + timedelta(days=6))
    if kind == "month":
        first = anchor.replace(day=1)
        return Period("month", first, _month_end(first))
    if kind == "semester":
        first = date(anchor.year, SCHOOL_YEAR_START_MONTH if anchor.month >= SCHOOL_YEAR_START_MONTH else 1, 1)
        return Period("semester", first, _month_start(first, -6) - timedelta(days=1))
    if kind == "school_year":
        year = anchor.year if anchor.month >= SCHOOL_YEAR_START_MONTH else anchor.year - 1
        first = date(year, SCHOOL_YEAR_START_MONTH, 1)
        return Period("school_year", first, date(year + 1, SCHOOL_YEAR_START_MONTH, 1) - timedelta(days=1))
    raise BadRequest(f"Unknown period {kind!r}.", code="invalid_period", details={"period": [f"One of {PERIODS}."]})
