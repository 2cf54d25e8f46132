"""A school year of demo history for the leaders' dashboard (``make run`` only).

A new install has no shares, so the dashboard journey ("mental health and tutoring are this
semester's most requested categories, up 40% on last semester") could not be seen. The demo
loader hands analytics the demo schools and a few demo services per category; this module
makes de-identified share events for them — the very ``share_recorded`` contract referrals
publishes, no student, contact, user or message in it — from the start of the last school
year to today, and counts them through the same path as real events
(:func:`services.analytics.counting.receive_shares`), and for most of them the referral's
closing (``referral_closed``: connected or why not, days to connect). Event ids are derived from the plan, so
loading twice changes nothing (each id is counted once).

The shape, per school and school day: a base rate per category; mental health and tutoring
were requested less last school year, and this semester mental health rises month by month
(the mid-year rise) and tutoring stays high: both about +40% on last semester, the other
categories flat or down; July is quiet (school is out) and August half so. Demo mode only: outside it the
RPC refuses (a real tenant's figures must come from real shares).

Example::

    shares = history_events({"schools": [{"tenant_id": lincoln, "district_id": riverside,
        "size": 1.0}], "services": [{"service_id": s, "taxonomy_term_ids": [t],
        "category": "mental_health"}]}, date(2026, 12, 4))
    len(shares)  # a few thousand ShareRecorded payloads
"""
from __future__ import annotations

import random
import uuid
from datetime import date, timedelta

from marshmallow import Schema, fields, validate

from services.analytics.periods import SCHOOL_YEAR_START_MONTH

CATEGORIES = ("mental_health", "tutoring", "food", "housing", "dental", "english_classes", "mentoring")
# Shares per school day for a school of size 1.0, before the trends below.
BASE_RATE = {"mental_health": 1.6, "tutoring": 1.3, "food": 1.1, "housing": 0.5, "dental": 0.3,
             "english_classes": 0.4, "mentoring": 0.5}
CHANNEL_WEIGHTS = (("email", 4), ("sms", 4), ("print", 2), ("link", 1))
NAMESPACE = uuid.UUID("6f1d2a4e-3c9b-4f0e-9a57-1d3e5b7c9a01")


class DemoSchool(Schema):
    tenant_id = fields.UUID(required=True)
    district_id = fields.UUID(load_default=None, allow_none=True)
    size = fields.Float(load_default=1.0, validate=validate.Range(0.1, 5))


class DemoService(Schema):
    service_id = fields.UUID(required=True)
    taxonomy_term_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(max=50))
    category = fields.Str(required=True, validate=validate.OneOf(CATEGORIES))


class DemoHistoryPlan(Schema):
    schools = fields.List(fields.Nested(DemoSchool), required=True, validate=validate.Length(1, 20))
    services = fields.List(fields.Nested(DemoService), required=True, validate=validate.Length(1, 200))


def _school_year_start(today: date) -> date:
    year = today.year if today.month >= SCHOOL_YEAR_START_MONTH else today.year - 1
    return date(year, SCHOOL_YEAR_START_MONTH, 1)


# Last school year, before the rise: mental health and tutoring were requested less.
LAST_YEAR_LEVEL = {"mental_health": 0.7, "tutoring": 0.7}
SUMMER = {7: 0.3, 8: 0.7}  # July: school is out; August: it starts mid-month


def _trend(category: str, day: date, this_year_start: date) -> float:
    """How much busier than the base rate ``category`` is on ``day``."""
    seasonal = 1.0 if category == "food" else SUMMER.get(day.month, 1.0)
    if day < this_year_start:
        return seasonal * LAST_YEAR_LEVEL.get(category, 0.85)
    months_in = (day - this_year_start).days / 30.4
    if category == "mental_health":
        return seasonal * (1.2 + 0.08 * months_in)  # the mid-year rise
    if category == "tutoring":
        return seasonal * 1.4
    return seasonal


# How referrals of each category ended: tutoring programs are often full this year.
OUTCOME_WEIGHTS = {
    "tutoring": (("connected", 45), ("no_capacity", 25), ("could_not_contact", 12), ("not_eligible", 8),
                 ("no_longer_interested", 10)),
}
DEFAULT_OUTCOMES = (("connected", 60), ("could_not_contact", 15), ("no_capacity", 8), ("not_eligible", 7),
                    ("no_longer_interested", 10))
FOLLOWED_UP = 0.6  # shares to a student on the roster, followed until they close


def closing_events(shares: list[dict], plan: dict, today: date, seed: int = 2026) -> list[dict]:
    """``referral_closed`` events for some of ``shares``: closed 1-40 days later (if by
    ``today``), with outcomes weighted per category; ids derived from the share's, so
    loading twice changes nothing."""
    category_of = {str(s["service_id"]): s["category"] for s in plan["services"]}
    rng = random.Random(f"{seed}:closings")
    events = []
    for share in shares:
        if rng.random() >= FOLLOWED_UP:
            continue
        days = rng.randint(1, 40)
        closed_on = date.fromisoformat(share["occurred_on"]) + timedelta(days=days)
        if closed_on > today:
            continue
        weights = OUTCOME_WEIGHTS.get(category_of.get(share["service_id"]), DEFAULT_OUTCOMES)
        outcome = rng.choices([o for o, _ in weights], [w for _, w in weights])[0]
        events.append({
            "event_id": str(uuid.uuid5(NAMESPACE, f"closed:{share['event_id']}")),
            "tenant_id": share["tenant_id"], "district_id": share["district_id"],
            "service_id": share["service_id"], "taxonomy_term_ids": share["taxonomy_term_ids"],
            "outcome": outcome, "days_open": days, "occurred_on": closed_on.isoformat(),
        })
    return events


def history_events(plan: dict, today: date, seed: int = 2026) -> list[dict]:
    """Share events from the start of last school year to ``today`` (inclusive)."""
    this_year = _school_year_start(today)
    start = date(this_year.year - 1, this_year.month, 1)
    by_category: dict[str, list[dict]] = {}
    for service in plan["services"]:
        by_category.setdefault(service["category"], []).append(service)
    channels = [c for c, w in CHANNEL_WEIGHTS for _ in range(w)]
    events = []
    for school in plan["schools"]:
        rng = random.Random(f"{seed}:{school['tenant_id']}")
        day = start
        while day <= today:
            if day.weekday() < 5:
                for category, services in sorted(by_category.items()):
                    expected = BASE_RATE[category] * school["size"] * _trend(category, day, this_year)
                    count = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
                    for n in range(count):
                        service = services[rng.randrange(len(services))]
                        events.append({
                            "event_id": str(uuid.uuid5(NAMESPACE, f"{school['tenant_id']}:{day}:{category}:{n}")),
                            "tenant_id": str(school["tenant_id"]),
                            "district_id": str(school["district_id"]) if school.get("district_id") else None,
                            "service_id": str(service["service_id"]),
                            "taxonomy_term_ids": [str(t) for t in service["taxonomy_term_ids"]],
                            "channel": channels[rng.randrange(len(channels))],
                            "occurred_on": day.isoformat(),
                        })
            day += timedelta(days=1)
    return events
